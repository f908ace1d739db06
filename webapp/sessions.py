"""The browser sessions' files: each request's outputs in a folder of its session, Gradio's copies of
the uploads in a folder of this app's own, both bounded while the app runs and removed when a
session ends and when the app stops."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator, Optional, Union
from urllib.parse import quote

import gradio as gr
import psutil
from PIL import Image

from hyperthumb.codec.image_io import save_options
from webapp.config import OUTPUT_MAX_AGE_S, OUTPUT_MAX_BYTES, OUTPUT_ROOT

APP_ROOT = OUTPUT_ROOT / f"app-{os.getpid()}"  # this server's files, removed when it stops
SESSIONS = APP_ROOT / "sessions"
UPLOADS = APP_ROOT / "uploads"  # Gradio's upload cache
_uploads: dict[str, set[Path]] = {}  # session -> the uploads its requests used
_kept: set[Path] = set()  # the page's own files in the upload cache (the examples), which no session owns
_lock = threading.Lock()


def use_own_upload_folder() -> Path:
    """Points Gradio's upload cache (GRADIO_TEMP_DIR, read as each component is made) at this
    process's own folder, so that stopping the app can remove it whole; a folder the server's
    operator set is kept."""
    _remove_stopped_servers_files()
    os.environ.setdefault("GRADIO_TEMP_DIR", str(UPLOADS))
    return Path(os.environ["GRADIO_TEMP_DIR"])


def _remove_stopped_servers_files() -> None:
    """The folders of app processes that ended without stopping (killed), found as the app starts."""
    for folder in OUTPUT_ROOT.glob("app-*") if OUTPUT_ROOT.is_dir() else ():
        pid = folder.name.removeprefix("app-")
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def keep_page_files() -> None:
    """Marks what the upload cache holds once the page is built (Gradio's copies of the examples,
    in folders named by content) as the page's own, never removed with a session that used them."""
    folder = Path(os.environ.get("GRADIO_TEMP_DIR", UPLOADS))
    if folder.is_dir():
        _kept.update(folder.iterdir())


def upload(payload: Union[None, str, dict], request: Optional[gr.Request] = None) -> Optional[tuple[Path, str]]:
    """(server path, the user's own file name) of an upload, raw (`preprocess=False`) or a path; the
    file is removed with its session."""
    if not payload:
        return None
    if isinstance(payload, dict):
        path, name = Path(payload["path"]), Path(payload.get("orig_name") or payload["path"]).name
    else:
        path, name = Path(payload), Path(payload).name
    if request is not None and path.parent.parent == use_own_upload_folder():
        with _lock:
            _uploads.setdefault(session_name(request), set()).add(path.parent)
    return path, name


def session_name(request: Optional[gr.Request]) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "", getattr(request, "session_hash", None) or "") or "anonymous"


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _sweep() -> None:
    """Removes session folders older than OUTPUT_MAX_AGE_S, then the oldest ones while all of them
    together hold more than OUTPUT_MAX_BYTES."""
    folders = []
    for folder in SESSIONS.iterdir():
        try:
            age = time.time() - folder.stat().st_mtime
            if age > OUTPUT_MAX_AGE_S:
                shutil.rmtree(folder, ignore_errors=True)
            else:
                folders.append((age, _folder_bytes(folder), folder))
        except FileNotFoundError:  # another request removed it first
            pass
    total = sum(size for _, size, _ in folders)
    for _, size, folder in sorted(folders, reverse=True):  # oldest first
        if total <= OUTPUT_MAX_BYTES:
            break
        shutil.rmtree(folder, ignore_errors=True)
        total -= size


def request_folder(request: Optional[gr.Request]) -> Path:
    """A new folder for one request's files, inside its browser session's folder."""
    SESSIONS.mkdir(parents=True, exist_ok=True)
    _sweep()
    session = SESSIONS / session_name(request)
    session.mkdir(exist_ok=True)
    os.utime(session)  # an active session's folder stays young
    return Path(tempfile.mkdtemp(dir=session))


def end_session(request: gr.Request) -> None:
    """Removes a closed browser session's files: its outputs and its uploads."""
    name = session_name(request)
    shutil.rmtree(SESSIONS / name, ignore_errors=True)
    with _lock:
        uploads = _uploads.pop(name, set())
    for path in uploads - _kept:
        shutil.rmtree(path, ignore_errors=True)  # Gradio keeps each upload in a folder of its own


@asynccontextmanager
async def remove_files_at_shutdown(_app) -> AsyncIterator[None]:
    """A server lifespan: when the app stops, every session's files and the upload cache go (and,
    where the operator put the cache elsewhere, the uploads the sessions used)."""
    yield
    with _lock:
        uploads = set().union(*_uploads.values())
        _uploads.clear()
    for path in uploads:
        shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(APP_ROOT, ignore_errors=True)


def save_png(image: Image.Image, path: Path) -> str:
    """Lossless, so the page compares the real pixels (Gradio would re-encode a PIL image as lossy
    WebP); light compression, because on a CPU a 4 MP PNG at the default level costs about a second."""
    image.save(path, compress_level=1, **save_options(image))  # the photo's EXIF and ICC profile, where kept
    return str(path)


def file_url(path: Union[str, Path]) -> str:
    """The URL under which the page loads one of the sessions' files (`gr.set_static_paths`)."""
    return f"/gradio_api/file={quote(str(path))}"
