"""A user's own photo, added to a deployment's study pool.

The pool is prepared ahead (`study prepare`) so that a vote never waits for a model; a photo a user
adds goes the same way, once, when added: `study.encode_photo` encodes it with each of the pool's
methods at each of its bpps, and cuts the crop centred where the user clicked on the photo (or, with
no click, the photo's most detailed regions). Its files go to the pool's uploads folder, a pool
folder of its own, so the prepared pool (the app ships one in the repository) is never written to.
From then on its crops are drawn like the prepared ones, least-voted first, so they soon get votes.
"""
from __future__ import annotations

import hashlib
import random
import threading
from typing import Callable, Optional

from PIL import Image

from hyperthumb.errors import InvalidImageError, StudyUploadError
from hyperthumb.study.pool import (
    MANIFEST,
    StudyPool,
    box_around,
    detailed_boxes,
    encode_photo,
    new_manifest,
    read_manifest,
    write_manifest,
)

UPLOADS_DIR_ENV = "HYPERTHUMB_STUDY_UPLOADS_DIR"
# Every method at every bpp of the whole photo: 3.8 MP took 45 s on a busy 2-core CPU, models loaded.
MAX_PIXELS = 4_000_000
# Each photo adds (methods x bpps + 1) PNG crops and methods x bpps thumbnails, a few MB in all.
MAX_PHOTOS = 200
_manifest_lock = threading.Lock()  # uploads encode concurrently; their manifest is written one at a time


def add_photo(pool: StudyPool, photo: Image.Image, name: str, centre: Optional[tuple[float, float]] = None,
              progress: Optional[Callable[..., object]] = None, max_pixels: int = MAX_PIXELS,
              max_photos: int = MAX_PHOTOS) -> list[str]:
    """Adds `photo` (the user's file `name`) to `pool`'s uploads and returns its new crop ids. The
    crop is centred on `centre` (a point on the photo) where given. Raises InvalidImageError for a
    photo the study cannot use, StudyUploadError where the pool will not take it."""
    if pool.uploads is None:
        raise StudyUploadError("this study pool takes no uploads")
    width, height = photo.size
    side = pool.crop_side
    if width * height > max_pixels:
        raise InvalidImageError(f"the photo is {width}x{height} ({width * height / 1e6:.1f} MP); the study takes "
                                f"photos up to {max_pixels / 1e6:g} MP, since each is encoded with every method at "
                                f"every bpp")
    if min(width, height) < side:
        raise InvalidImageError(f"the photo is {width}x{height}; the study's crops are {side}x{side} pixels, so each "
                                f"side must be at least {side}")
    stem = "upload-" + hashlib.sha256(photo.tobytes()).hexdigest()[:16]
    with _manifest_lock:
        manifest = _uploads_manifest(pool)
        _check_room(manifest, stem, max_photos)
    boxes = ([box_around(centre, photo.size, side)] if centre is not None else
             detailed_boxes(photo, side, pool.crops_per_photo, random.Random(stem)))
    crops = encode_photo(manifest, pool.uploads, photo, name, stem, boxes, progress=progress)
    with _manifest_lock:  # checked again: another upload may have come first while this one encoded
        manifest = _uploads_manifest(pool)
        _check_room(manifest, stem, max_photos)
        manifest["photos"].append({"name": name, "size": [width, height]})
        manifest["crops"] += crops
        write_manifest(manifest, pool.uploads)
        pool.add_crops(pool.uploads, crops)
    return [crop["id"] for crop in crops]


def _uploads_manifest(pool: StudyPool) -> dict:
    if (pool.uploads / MANIFEST).is_file():
        return read_manifest(pool.uploads)
    return new_manifest(pool.methods, pool.bpps, pool.crop_side, pool.crops_per_photo)


def _check_room(manifest: dict, stem: str, max_photos: int) -> None:
    if any(crop["id"].startswith(f"{stem}-") for crop in manifest["crops"]):
        raise StudyUploadError("this photo is in the study pool already")
    if len(manifest["photos"]) >= max_photos:
        raise StudyUploadError(f"the study pool holds its limit of {max_photos} added photos")
