"""What the page says when something goes wrong: one sentence in the tab's status line, styled as an
error, naming the file as the user named it; never a traceback, never libjpeg's words."""
from __future__ import annotations

import functools
import html
import inspect
import logging
from pathlib import Path
from typing import Callable

from hyperthumb.errors import HyperThumbError, ImageSizeError, InvalidImageError, InvalidThumbnailError
from hyperthumb.limits import MIN_SIDE
from webapp.config import MAX_PIXELS, PHOTO_FORMATS

log = logging.getLogger("hyperthumb.app")
UNEXPECTED = "Something went wrong on the server while handling this request; please try again or use another photo."


class UserError(Exception):
    """A plain sentence for the page: what went wrong with the user's input and what to do."""


def file_error(exc: HyperThumbError, path: Path, name: str) -> UserError:
    """The library's message about a file, with the server's copy of it called by the user's name."""
    message = str(exc).replace(str(path), name).replace(path.name, name).rstrip(".")
    advice = (f"photos from {MIN_SIDE}x{MIN_SIDE} pixels up to {MAX_PIXELS / 1e6:g} MP are accepted"
              if isinstance(exc, ImageSizeError) else
              f"please upload a {PHOTO_FORMATS} photo" if isinstance(exc, InvalidImageError) else
              "please upload a thumbnail saved by HyperThumb (its Encode tab or command line)"
              if isinstance(exc, InvalidThumbnailError) else "please try again")
    return UserError(f"Could not use {name}: {message}; {advice}.")


def status_html(message: str, kind: str = "info") -> str:
    """The status line's HTML; `kind` "error" styles it as one (and screen readers announce it)."""
    role = ' role="alert"' if kind == "error" else ""
    return f'<div class="ht-status ht-{kind}"{role}>{message}</div>'


def guarded(on_error: Callable[[str], dict]) -> Callable[[Callable], Callable]:
    """Runs a handler that returns (or, a generator, yields) {component: value}; on an error gives
    `on_error(status html)` instead, which says so and clears what the error concerns. A user error
    logs one line; an unexpected one its traceback, and the page a short apology without details."""
    def wrap(handler: Callable) -> Callable:
        def refused(exc: Exception) -> dict:
            if isinstance(exc, UserError):
                log.info("refused in %s: %s", handler.__name__, exc)
                return on_error(status_html(html.escape(str(exc)), "error"))
            log.error("%s failed", handler.__name__, exc_info=exc)
            return on_error(status_html(UNEXPECTED, "error"))

        if inspect.isgeneratorfunction(handler):
            @functools.wraps(handler)
            def run_steps(*args, **kwargs):
                try:
                    yield from handler(*args, **kwargs)
                except Exception as exc:
                    yield refused(exc)
            return run_steps

        @functools.wraps(handler)
        def run(*args, **kwargs):
            try:
                return handler(*args, **kwargs)
            except Exception as exc:
                return refused(exc)
        return run
    return wrap
