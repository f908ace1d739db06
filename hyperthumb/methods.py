"""The compared methods under one interface, and the figures every comparison reports.

- `rdbunet`, `transformer`: HyperThumb with the learned encoder and QPM tables.
- `bicubic-jpeg-sr`: bicubic thumbnail, standard IJG tables, our decoder trained on such files.
- `bicubic-jpeg`: bicubic thumbnail, Pillow JPEG (standard tables, 4:4:4) at the quality that
  meets the bpp, bicubic upscale. No learning at all.
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Optional

from PIL import Image

from . import load_model
from .codec import BPP_TOLERANCE
from .metrics import lpips_distance, psnr, psnr_y, ssim, thumbnail_psnr

METHODS = ("rdbunet", "transformer", "bicubic-jpeg-sr", "bicubic-jpeg")
BASELINE = "bicubic-jpeg"
CHECKPOINT_OF_METHOD = {"rdbunet": "rdbunet", "transformer": "transformer", "bicubic-jpeg-sr": "bicubic-sr"}


@dataclass
class MethodResult:
    method: str
    target_bpp: float
    jpeg: bytes  # the thumbnail file
    bpp: float  # file bits / HR pixels
    thumbnail: Image.Image
    restored: Image.Image
    encode_s: float
    decode_s: float

    @property
    def reached_target(self) -> bool:
        return abs(self.bpp - self.target_bpp) <= BPP_TOLERANCE * self.target_bpp


def _pillow_jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, subsampling=0, optimize=True)
    return buffer.getvalue()


def bicubic_jpeg(photo: Image.Image, target_bpp: float) -> MethodResult:
    """The plain baseline: integer quality by bisection, closest file to the target kept."""
    started = time.perf_counter()
    width, height = photo.size
    thumbnail = photo.resize((max(1, round(width / 4)), max(1, round(height / 4))), Image.BICUBIC)
    lo, hi, best = 1, 100, None
    while lo <= hi:
        quality = (lo + hi) // 2
        jpeg = _pillow_jpeg(thumbnail, quality)
        bpp = len(jpeg) * 8 / (width * height)
        if best is None or abs(bpp - target_bpp) < abs(best[1] - target_bpp):
            best = (jpeg, bpp)
        if bpp > target_bpp:
            hi = quality - 1
        else:
            lo = quality + 1
    encoded = time.perf_counter()
    decoded_thumbnail = Image.open(io.BytesIO(best[0])).convert("RGB")
    restored = decoded_thumbnail.resize((width, height), Image.BICUBIC)
    return MethodResult(BASELINE, target_bpp, best[0], best[1], decoded_thumbnail, restored,
                        encoded - started, time.perf_counter() - encoded)


def run_method(method: str, photo: Image.Image, target_bpp: float, device: Optional[str] = None) -> MethodResult:
    """Encodes `photo` (upright 8-bit RGB, see image_io.load_image) at `target_bpp` and restores it."""
    if method == BASELINE:
        return bicubic_jpeg(photo, target_bpp)
    if method not in CHECKPOINT_OF_METHOD:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    codec = load_model(CHECKPOINT_OF_METHOD[method], device=device)
    started = time.perf_counter()
    thumb = codec.encode(photo, target_bpp=target_bpp)
    encoded = time.perf_counter()
    restored = codec.decode(thumb.jpeg)
    return MethodResult(method, target_bpp, thumb.jpeg, thumb.bpp, thumb.image, restored,
                        encoded - started, time.perf_counter() - encoded)


def measure(photo: Image.Image, result: MethodResult, with_lpips: bool = True) -> dict:
    """The comparison's figures for one result (LPIPS is None where its weights are missing)."""
    return {
        "bpp": result.bpp,
        "psnr_hr": psnr(result.restored, photo),
        "psnr_hr_y": psnr_y(result.restored, photo),
        "psnr_lr": thumbnail_psnr(photo, result.thumbnail),
        "ssim_hr": ssim(result.restored, photo),
        "lpips_rgb": lpips_distance(result.restored, photo) if with_lpips else None,
        "lpips_y": lpips_distance(result.restored, photo, y_only=True) if with_lpips else None,
        "encode_s": result.encode_s,
        "decode_s": result.decode_s,
    }
