"""Where HyperThumb keeps what it makes or fetches once per machine: exported networks, LPIPS weights."""
from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "HYPERTHUMB_CACHE"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "hyperthumb"))
