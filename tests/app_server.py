"""The real app, served on a free local port for the app and browser tests.

Small random-weight models stand in for the trained checkpoints: these tests check the app (its
events, files, errors and label store), not the training, and must not depend on which checkpoint
is on disk. Everything else is the real code path, from the upload to the SQLite file.
"""
from __future__ import annotations

import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from hyperthumb.zoo import ModelZoo, use_zoo
from tests.conftest import small_checkpoint_loader

CHROMIUM = "/usr/bin/chromium"  # Debian's; tests never download a browser
_served: dict = {}  # URL -> the Blocks serving it, while it runs


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_app(labels_db: Path) -> Iterator[str]:
    """Yields the URL of the app, its labels going to `labels_db`."""
    import app

    with use_zoo(ModelZoo(loader=small_checkpoint_loader)):
        demo = app.build_demo(str(labels_db))
        port = free_port()
        app.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        url = f"http://127.0.0.1:{port}/"
        _served[url] = demo
        try:
            yield url
        finally:
            _served.pop(url, None)
            demo.close()


def wait_until_idle(url: str, quiet_s: float = 1.0, timeout_s: float = 180.0) -> None:
    """Waits until the app at `url` has had no event queued or running for `quiet_s` seconds: the
    events a page chains one after another (`.then`) have all run, and none is cut off when the
    server stops (a thread stopped inside torch can abort the process)."""
    queue = _served[url]._queue
    deadline, idle_since = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        if len(queue) or queue.get_active_worker_count():
            idle_since = None
        elif idle_since is None:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since >= quiet_s:
            return
        time.sleep(0.05)
    raise TimeoutError(f"the app at {url} still had events running after {timeout_s:.0f} s")


@contextmanager
def chromium() -> Iterator:
    """Debian's Chromium, headless, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()
