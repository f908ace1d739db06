"""The real app, served on a free local port for the app and browser tests.

Small random-weight models stand in for the trained checkpoints: these tests check the app (its
events, files, errors and label store), not the training, and must not depend on which checkpoint
is on disk. Everything else is the real code path, from the upload to the SQLite file.
"""
from __future__ import annotations

import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from hyperthumb.zoo import ModelZoo, use_zoo
from tests.conftest import small_checkpoint_loader


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
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        try:
            yield f"http://127.0.0.1:{port}/"
        finally:
            demo.close()
