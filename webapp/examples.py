"""The example photos, encoded ahead: their results at the page's default settings are made as the
app starts and kept, so that a click on an example shows a result at once."""
from __future__ import annotations

import functools
import hashlib
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Optional

from hyperthumb import zoo
from hyperthumb.codec.image_io import load_image
from hyperthumb.evaluation.methods import MethodResult, run_method
from webapp.config import DEFAULT_BPP, EXAMPLES

_RESULTS: OrderedDict = OrderedDict()  # (digest, method, bpp) -> MethodResult, the example photos' only
_RESULTS_KEPT = 32
_lock = threading.Lock()  # the handlers' threads and the one preparing the examples


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@functools.cache
def _example_digests() -> dict[str, str]:
    """{example path: content digest}; an upload of the same photo shares its results."""
    return {path: file_digest(Path(path)) for path in EXAMPLES}


def kept(digest: str, method: str, target_bpp: float) -> Optional[MethodResult]:
    """An example photo's result made before, or None."""
    with _lock:
        result = _RESULTS.get((digest, method, target_bpp))
        if result is not None:
            _RESULTS.move_to_end((digest, method, target_bpp))
        return result


def keep(digest: str, method: str, result: MethodResult) -> None:
    """Keeps `result` where the photo is an example (the oldest go beyond _RESULTS_KEPT)."""
    if digest in _example_digests().values():
        with _lock:
            _RESULTS[digest, method, result.target_bpp] = result
            while len(_RESULTS) > _RESULTS_KEPT:
                _RESULTS.popitem(last=False)


def prepare_examples(method: str = zoo.ENCODER_METHODS[0], target_bpp: float = DEFAULT_BPP) -> None:
    """Encodes every example at the page's default settings ahead of the first click."""
    for path, digest in _example_digests().items():
        if kept(digest, method, target_bpp) is None:
            keep(digest, method, run_method(method, load_image(path), target_bpp))


