"""The example photos, encoded ahead: their results at the page's default settings are made as the
app starts and kept, so that a click on an example shows a result at once."""
from __future__ import annotations

import functools
import hashlib
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Optional

from PIL import Image

from hyperthumb import zoo
from hyperthumb.codec.image_io import load_image
from hyperthumb.evaluation.methods import MethodResult, StageCallback, run_method
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


def run_kept(method: str, photo: Image.Image, digest: str, target_bpp: float,
             stage: Optional[StageCallback]) -> MethodResult:
    """run_method, its results kept for the example photos: a click on an example shows at once."""
    key = (digest, method, target_bpp)
    with _lock:
        if key in _RESULTS:
            _RESULTS.move_to_end(key)
            return _RESULTS[key]
    result = run_method(method, photo, target_bpp, stage=stage)
    if digest in _example_digests().values():
        with _lock:
            _RESULTS[key] = result
            while len(_RESULTS) > _RESULTS_KEPT:
                _RESULTS.popitem(last=False)
    return result


def prepare_examples(method: str = zoo.ENCODER_METHODS[0], target_bpp: float = DEFAULT_BPP) -> None:
    """Encodes every example at the page's default settings ahead of the first click."""
    for path, digest in _example_digests().items():
        run_kept(method, load_image(path), digest, target_bpp, None)


