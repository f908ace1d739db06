"""Rate-distortion curves of one photo, for the question a thumbnail store asks: at a given size,
how close to the photo does our thumbnail restore, against a plain JPEG thumbnail of the same size,
each restored by bicubic upscaling (what any viewer shows) and by a learned decoder?

The curves are computed on one region of the photo at native scale (all of it where it fits the
device's budget), and a result marked on them is computed on that same region, so it lies on them.
"""
from __future__ import annotations

from typing import Callable, Iterable, Optional, Sequence

from PIL import Image

from hyperthumb.evaluation.methods import MethodResult, measure, run_method
from hyperthumb.zoo import BASELINE, METHODS, REFERENCE_METHODS

CURVE_RATES = (0.1, 0.2, 0.3, 0.5)
PLAIN_SR = "bicubic-jpeg-sr"  # a plain JPEG thumbnail restored by a decoder trained for it
UPSCALED = " upscaled"  # suffix of a learned method's curve whose own thumbnail is only upscaled bicubically
# The side of the region the curves are computed on, per device: 7 methods x 4 rates take about 10 s on
# 512 x 512 on a 2-core CPU (the AVIF references half of it); on a GPU the learned methods are quick.
REGION_SIDE = {"cpu": 512, "cuda": 1024}


def chart_region(size: tuple[int, int], device: str = "cpu") -> tuple[int, int, int, int]:
    """The box (left, top, right, bottom) the curves are computed on: the whole photo when it fits
    the device's budget, otherwise a centre region of at most REGION_SIDE pixels a side, cut on the
    8-pixel grid so that its JPEG blocks are the photo's own."""
    side = REGION_SIDE.get(device, REGION_SIDE["cpu"])
    width, height = size
    if width <= side and height <= side:
        return 0, 0, width, height
    region_w, region_h = min(width, side), min(height, side)
    left, top = (width - region_w) // 2 // 8 * 8, (height - region_h) // 2 // 8 * 8
    return left, top, left + region_w, top + region_h


def upscaled(result: MethodResult) -> Image.Image:
    """A thumbnail as a viewer without the decoder shows it at full size: bicubic upscaling."""
    return result.thumbnail.resize(result.restored.size, Image.BICUBIC)


def store_methods(learned: Sequence[str]) -> list[str]:
    """The methods a thumbnail store compares: `learned` thumbnails, the plain JPEG thumbnail with and
    without a decoder, and the whole photo as JPEG, WebP and AVIF (a reference: another job)."""
    return [*learned, BASELINE, PLAIN_SR, *REFERENCE_METHODS]


def curve_points(region: Image.Image, methods: Sequence[str], rates: Iterable[float] = CURVE_RATES,
                 known: Optional[dict] = None, progress: Callable[[list], Iterable] = iter) -> dict:
    """{(curve, target bpp): {"bpp", "psnr_hr"}} on `region`: each of `methods` at each of `rates`, and
    for a HyperThumb model also its own thumbnail only upscaled bicubically (curve "<method> upscaled").
    Points already in `known` are not computed again; `progress` wraps the list of runs left."""
    points = dict(known or {})
    runs = [(method, rate) for method in methods for rate in rates if (method, rate) not in points]
    for method, rate in progress(runs):
        result = run_method(method, region, rate)
        points[method, rate] = {"bpp": result.bpp, **_psnr(region, result)}
        if METHODS[method].encoder not in (None, "bicubic"):  # a HyperThumb thumbnail, whichever decoder
            points[method + UPSCALED, rate] = {"bpp": result.bpp,
                                               **_psnr(region, result, restored=upscaled(result))}
    return points


def _psnr(region: Image.Image, result: MethodResult, restored: Optional[Image.Image] = None) -> dict:
    if restored is not None:
        result = MethodResult(result.method, result.target_bpp, result.jpeg, result.bpp, result.thumbnail,
                              restored, result.encode_s, result.decode_s)
    return {"psnr_hr": measure(region, result, with_lpips=False, figures=("psnr_hr",))["psnr_hr"]}


def curve_rows(points: dict) -> list[dict]:
    """The points as rows {"method" (the curve), "target_bpp", "bpp", "psnr_hr"}, for the charts."""
    return [{"method": curve, "target_bpp": rate, **figures} for (curve, rate), figures in points.items()]
