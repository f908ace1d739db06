"""The browser restore (the repository's web/ folder) served at /viewer/, cross-origin isolated so
that onnxruntime-web may use threads, and made (graphs, runtime, gallery) as the app starts."""
from __future__ import annotations

import logging

from starlette.datastructures import MutableHeaders
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from hyperthumb.release.web_site import SOURCE, build_site

PATH = "/viewer"
# What a page needs to be cross-origin isolated (SharedArrayBuffer, so WebAssembly threads).
ISOLATION_HEADERS = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}
_log = logging.getLogger(__name__)


class IsolatedFiles(StaticFiles):
    """Static files sent with the isolation headers, and never cached stale (the graphs change
    when a checkpoint does)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.update(ISOLATION_HEADERS)
                headers["Cache-Control"] = "no-cache"
            await send(message)

        await super().__call__(scope, receive, with_headers)


def routes() -> list[Mount]:
    return [Mount(PATH, app=IsolatedFiles(directory=SOURCE, html=True), name="viewer")]


def prepare_site() -> None:
    """Makes what the pages load (`build_site`); a failure is logged and leaves the app serving,
    the viewer then saying that its models are missing."""
    try:
        build_site(progress=lambda message: _log.info("viewer: %s", message))
    except Exception:  # noqa: BLE001 - the app must start whatever this hits (no network, a bad file)
        _log.exception("the browser restore could not be prepared; /viewer/ will say its models are missing")
