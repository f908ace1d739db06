"""HyperThumb: learned 4x image rescaling into a standard JPEG thumbnail (HyperThumbnail, CVPR 2023).

    import hyperthumb
    codec = hyperthumb.load_model("rdbunet")
    thumb = codec.encode("photo.jpg", target_bpp=0.3)   # thumb.jpeg is an ordinary JPEG file
    photo = hyperthumb.decode(thumb.jpeg)                 # the model is named in the file
"""
from __future__ import annotations

import os
from functools import lru_cache
from typing import Optional, Union

import torch
from PIL import Image

from .checkpoint import load_checkpoint
from .codec import HyperThumbCodec, Thumbnail
from .errors import (CheckpointNotFoundError, HyperThumbError, InvalidImageError, InvalidSettingError,
                     InvalidThumbnailError)
from .jpeg_file import find_marker
from .registry import ENCODER_METHODS, FAST_DECODER_OF, LITE_METHODS, MARKER_OF_CHECKPOINT
from .runtime import checked_device

ENCODER_NAMES = ENCODER_METHODS

__all__ = ["load_model", "decode", "HyperThumbCodec", "Thumbnail", "ENCODER_NAMES", "HyperThumbError",
           "InvalidImageError", "InvalidThumbnailError", "InvalidSettingError", "CheckpointNotFoundError",
           "default_device"]


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


@lru_cache(maxsize=8)
def _cached_model(encoder: str, source: Optional[str], device: str) -> HyperThumbCodec:
    return HyperThumbCodec(load_checkpoint(encoder, source, device), name=encoder, device=device,
                           marker=MARKER_OF_CHECKPOINT.get(encoder))


def load_model(encoder: str, source: Optional[Union[str, os.PathLike]] = None,
               device: Optional[str] = None) -> HyperThumbCodec:
    """The codec for checkpoint `encoder` ("rdbunet", "transformer", "bicubic-sr", the fast decoders
    "rdbunet-fast", "transformer-fast", or the lite models "rdbunet-lite", "transformer-lite"), loaded
    once per process."""
    device = str(checked_device(device or default_device()))
    return _cached_model(encoder, None if source is None else str(source), device)


def decode(source: Union[bytes, str, os.PathLike], device: Optional[str] = None,
           weights: Optional[Union[str, os.PathLike]] = None, fast: bool = False) -> Image.Image:
    """Restores the HR photo from a HyperThumb JPEG, using the model its marker names (found as
    `load_model` finds it, or in the checkpoint folder `weights`), or with `fast` that model's fast
    decoder (a lite model's own decoder is one)."""
    from .codec import read_thumbnail_bytes

    jpeg = read_thumbnail_bytes(source)
    if not jpeg:
        raise InvalidThumbnailError("the thumbnail file is empty")
    name = find_marker(jpeg).encoder
    if fast and name not in LITE_METHODS:  # a lite model's own decoder is a fast one
        if name not in FAST_DECODER_OF:
            raise InvalidThumbnailError(f"the {name!r} model has no fast decoder")
        name = FAST_DECODER_OF[name]
    return load_model(name, source=weights, device=device).decode(jpeg)
