from hyperthumb.cli import main

raise SystemExit(main())
