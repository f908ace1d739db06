"""The compared methods under one interface, and the figures every comparison reports.

The methods themselves (names, checkpoints, labels) are listed in `zoo.py`.

- `rdbunet`, `transformer`: HyperThumb with the learned encoder and QPM tables.
- `bicubic-jpeg-sr`: bicubic thumbnail, standard IJG tables, our decoder trained on such files.
- `bicubic-jpeg`: bicubic thumbnail, Pillow JPEG (standard tables, 4:4:4) at the quality that
  meets the bpp, bicubic upscale. No learning at all.
- `jpeg-full`, `webp-full`, `avif-full` (references): the full-resolution photo in that format,
  Pillow's encoder at its defaults, at the highest quality whose file fits the target. What a user
  could store instead when no thumbnail is needed; they have no thumbnail, so no thumbnail figures,
  and they stay out of the Bjontegaard summary against `bicubic-jpeg`.
"""
from __future__ import annotations

import io
import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection, Optional, Union

import numpy as np
from PIL import Image

from hyperthumb import zoo
from hyperthumb.codec.thumbnail_codec import BPP_TOLERANCE, Thumbnail
from hyperthumb.evaluation.dists import dists_distance
from hyperthumb.evaluation.metrics import lpips_distance, psnr, psnr_y, ssim, thumbnail_psnr
from hyperthumb.zoo import BASELINE, CHECKPOINT_OF_METHOD, load_model

# Pillow format name and quality range of each full-resolution reference.
REFERENCE_FORMATS = {"jpeg-full": ("JPEG", 1, 100), "webp-full": ("WEBP", 0, 100), "avif-full": ("AVIF", 0, 100)}
METHODS = tuple(zoo.METHODS)
# What `measure` can compute. LPIPS-VGG stays out: the sharp decoders train on it, so it cannot judge them.
FIGURES = ("psnr_hr", "psnr_hr_y", "psnr_lr", "ssim_hr", "lpips_rgb", "lpips_y", "dists")


StageCallback = Callable[[str], None]  # told the name of each stage a method starts


@dataclass
class MethodResult:
    method: str
    target_bpp: float
    jpeg: bytes  # the stored file: the thumbnail, or the whole photo for a reference
    bpp: float  # file bits / HR pixels
    thumbnail: Optional[Image.Image]  # None for the full-resolution references
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


def _pillow_file(image: Image.Image, format_name: str, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format_name, quality=quality, **({"optimize": True} if format_name == "JPEG" else {}))
    return buffer.getvalue()


def _quality_search(encode: Callable[[int], bytes], pixels: int, target_bpp: float, qualities: tuple[int, int],
                    closest: bool) -> tuple[bytes, float]:
    """Bisection over an integer quality (file size grows with it). `closest` keeps the file nearest
    the target; otherwise the highest quality within it (the lowest quality where none fits)."""
    lo, hi = qualities
    best: Optional[tuple[bytes, float]] = None
    fallback: Optional[tuple[bytes, float]] = None
    while lo <= hi:
        quality = (lo + hi) // 2
        data = encode(quality)
        bpp = len(data) * 8 / pixels
        if closest:
            if best is None or abs(bpp - target_bpp) < abs(best[1] - target_bpp):
                best = (data, bpp)
        elif bpp <= target_bpp:
            best = (data, bpp)  # quality only rises while files fit, so the last fit is the highest
        elif fallback is None or bpp < fallback[1]:
            fallback = (data, bpp)
        if bpp > target_bpp:
            hi = quality - 1
        else:
            lo = quality + 1
    return best or fallback


class MethodCodec(ABC):
    """One compared method: a photo in, at a target bpp, the stored file and what it restores to."""

    name: str

    @abstractmethod
    def run(self, photo: Image.Image, target_bpp: float, stage: Optional[StageCallback] = None) -> MethodResult:
        """Encodes `photo` (upright 8-bit RGB, see codec.image_io.load_image) at `target_bpp` and restores
        it, telling `stage` where it is where the method has stages worth a user's wait. The stored file
        holds pixels only, whatever metadata the photo carries: methods are compared on what their
        pixels cost."""


class FullSizeReference(MethodCodec):
    """The whole photo as JPEG / WebP / AVIF at the highest quality within the target."""

    def __init__(self, name: str):
        self.name = name
        self.format_name, *self.qualities = REFERENCE_FORMATS[name]

    def run(self, photo: Image.Image, target_bpp: float, stage: Optional[StageCallback] = None) -> MethodResult:
        started = time.perf_counter()
        data, bpp = _quality_search(lambda q: _pillow_file(photo, self.format_name, q), photo.width * photo.height,
                                    target_bpp, tuple(self.qualities), closest=False)
        encoded = time.perf_counter()
        restored = Image.open(io.BytesIO(data)).convert("RGB")
        return MethodResult(self.name, target_bpp, data, bpp, None, restored, encoded - started,
                            time.perf_counter() - encoded)


class BicubicJPEG(MethodCodec):
    """The plain baseline: a bicubic thumbnail as a Pillow JPEG at the integer quality whose file
    comes closest to the target, upscaled bicubically."""

    name = BASELINE

    def run(self, photo: Image.Image, target_bpp: float, stage: Optional[StageCallback] = None) -> MethodResult:
        started = time.perf_counter()
        width, height = photo.size
        thumbnail = photo.resize((max(1, round(width / 4)), max(1, round(height / 4))), Image.BICUBIC)
        data, bpp = _quality_search(lambda q: _pillow_jpeg(thumbnail, q), width * height, target_bpp, (1, 100),
                                    closest=True)
        encoded = time.perf_counter()
        decoded_thumbnail = Image.open(io.BytesIO(data)).convert("RGB")
        restored = decoded_thumbnail.resize((width, height), Image.BICUBIC)
        return MethodResult(self.name, target_bpp, data, bpp, decoded_thumbnail, restored,
                            encoded - started, time.perf_counter() - encoded)


class LearnedMethod(MethodCodec):
    """A method with a checkpoint (HyperThumb's encoders and decoders, and `bicubic-jpeg-sr`):
    the real thumbnail file, restored by its decoder. `weights` is a folder of checkpoint folders
    to use instead of the default ones (a training run's output, to compare against the shipped)."""

    def __init__(self, name: str, device: Optional[str] = None, weights: Optional[Union[str, os.PathLike]] = None):
        self.name, self.device = name, device
        checkpoint = CHECKPOINT_OF_METHOD[name]
        self.checkpoint, self.source = checkpoint, None if weights is None else Path(weights) / checkpoint

    def run(self, photo: Image.Image, target_bpp: float, stage: Optional[StageCallback] = None) -> MethodResult:
        # Without the photo's EXIF and ICC profile, which the full-size files and bicubic-jpeg do not
        # carry either: a photo's 50 KB of EXIF would otherwise be charged to the thumbnail alone.
        return self.restore(*self.encode(photo, target_bpp, stage, keep_metadata=False), stage)

    def encode(self, photo: Image.Image, target_bpp: float, stage: Optional[StageCallback] = None,
               keep_metadata: bool = True) -> tuple[Thumbnail, float]:
        """The thumbnail alone, which a page can show before the photo is restored, and its seconds;
        it keeps the photo's metadata (counted in its size) unless `keep_metadata` is False."""
        stage = stage or (lambda name: None)
        stage("loading the model")
        codec = load_model(self.checkpoint, source=self.source, device=self.device)
        started = time.perf_counter()
        stage("encoding")
        # The codec reports half-way once the encoder has run: then the bpp search sizes the file.
        thumb = codec.encode(photo, target_bpp=target_bpp, keep_metadata=keep_metadata,
                             progress=lambda done: stage("sizing the file") if done < 1 else None)
        return thumb, time.perf_counter() - started

    def restore(self, thumb: Thumbnail, encode_s: float, stage: Optional[StageCallback] = None) -> MethodResult:
        """The result of `encode`'s thumbnail: the photo restored by this method's decoder."""
        (stage or (lambda name: None))("restoring")
        started = time.perf_counter()
        restored = load_model(self.checkpoint, source=self.source, device=self.device).decode(thumb.jpeg)
        return MethodResult(self.name, thumb.target_bpp, thumb.jpeg, thumb.bpp, thumb.image, restored,
                            encode_s, time.perf_counter() - started)


def method_codec(method: str, device: Optional[str] = None,
                 weights: Optional[Union[str, os.PathLike]] = None) -> MethodCodec:
    """The codec of `method` (a name in `zoo.METHODS`)."""
    if method == BASELINE:
        return BicubicJPEG()
    if method in REFERENCE_FORMATS:
        return FullSizeReference(method)
    if method not in CHECKPOINT_OF_METHOD:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    return LearnedMethod(method, device, weights)


def run_method(method: str, photo: Image.Image, target_bpp: float, device: Optional[str] = None,
               weights: Optional[Union[str, os.PathLike]] = None,
               stage: Optional[StageCallback] = None) -> MethodResult:
    """Encodes `photo` (upright 8-bit RGB) with `method` at `target_bpp` and restores it; a learned
    method tells `stage` each step it starts ("encoding", "sizing the file", "restoring")."""
    return method_codec(method, device, weights).run(photo, target_bpp, stage)


def measure(photo: Image.Image, result: MethodResult, with_lpips: bool = True,
            figures: Collection[str] = FIGURES) -> dict:
    """The comparison's figures for one result; those not in `figures` read None, and so do LPIPS and
    DISTS where their weights are missing. `with_lpips` also gates DISTS: both are slow on a CPU (a
    full-resolution LPIPS pass of a 6K photo takes a minute, DISTS of its centred 4 MP two)."""
    reference, restored = np.asarray(photo), np.asarray(result.restored)  # one uint8 copy each, for all figures
    compute = {
        "psnr_hr": lambda: psnr(restored, reference),
        "psnr_hr_y": lambda: psnr_y(restored, reference),
        "psnr_lr": lambda: None if result.thumbnail is None else thumbnail_psnr(reference, result.thumbnail),
        "ssim_hr": lambda: ssim(restored, reference),
        "lpips_rgb": lambda: lpips_distance(restored, reference) if with_lpips else None,
        "lpips_y": lambda: lpips_distance(restored, reference, y_only=True) if with_lpips else None,
        "dists": lambda: dists_distance(restored, reference) if with_lpips else None,
    }
    return {"bpp": result.bpp, **{name: compute[name]() if name in figures else None for name in FIGURES},
            "encode_s": result.encode_s, "decode_s": result.decode_s}
