"""Training: patches of photos (`data.py`), the options (`options.py`) and the loop (`train.py`)."""
