"""Image quality: PSNR (RGB and Y), SSIM (scikit-image), LPIPS-RGB and LPIPS-Y (lpips, AlexNet).

Every figure is computed over bands of rows (LPIPS: tiles), each read with the context its
neighbourhood needs, so that a 6K photo costs a few hundred MB at most rather than GB and the
figure is still the whole photo's: float64 copies of a 25 MP photo are 600 MB each, and LPIPS held
7.6 GB of AlexNet activations for two of them.
"""
from __future__ import annotations

import math
import warnings
from functools import lru_cache
from typing import Callable, Iterator, Optional

import numpy as np
import torch
from skimage.metrics import structural_similarity

from hyperthumb.codec.image_io import to_tensor
from hyperthumb.codec.tiling import Span, halo_spans
from hyperthumb.evaluation.lpips_weights import load_state_dict, weights_path
from hyperthumb.models.pixels import bicubic_downscale, pad_to_multiple

Y_BORDER = 2  # the paper reports Y PSNR with a 2-pixel border crop
BAND_PIXELS = 1 << 20  # pixels per band of rows: about 24 MB per float64 RGB copy
SSIM_HALO = 3  # half of scikit-image's 7x7 window, which is also the border its mean leaves out
# AlexNet's feature grids in pixels, one per LPIPS layer. Tiles start on the coarsest, so their
# features fall on the whole photo's grid, and a halo beyond conv5's reach (66 pixels before a
# feature, 80 after) gives the tile's core exactly the whole photo's features.
LPIPS_STRIDES = (4, 8, 16, 16, 16)
LPIPS_TILE = 1024
LPIPS_HALO = 96


def _as_array(image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64)


def luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of 0..255 RGB (the Y channel of JPEG's YCbCr)."""
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def _row_bands(image: np.ndarray, halo: int = 0) -> list[Span]:
    """Bands of about BAND_PIXELS, and of at least 16 rows: room for SSIM's 7-row window at any width."""
    return halo_spans(image.shape[0], max(BAND_PIXELS // image.shape[1], 16), halo)


def _psnr(squared_error: float, count: int) -> float:
    return float("inf") if squared_error == 0 else 10 * math.log10(255.0 ** 2 * count / squared_error)


def _band_psnr(a: np.ndarray, b: np.ndarray, values: Callable[[np.ndarray], np.ndarray]) -> float:
    """PSNR of `values` (of a float64 band of rows) between a and b, in float64 a band at a time."""
    squared_error, count = 0.0, 0
    for band in _row_bands(a):
        difference = values(_as_array(a[band.start:band.end])) - values(_as_array(b[band.start:band.end]))
        squared_error += float(np.square(difference).sum())
        count += difference.size
    return _psnr(squared_error, count)


def psnr(a, b) -> float:
    return _band_psnr(np.asarray(a), np.asarray(b), lambda band: band)


def psnr_y(a, b, border: int = Y_BORDER) -> float:
    a, b = np.asarray(a), np.asarray(b)
    if border:
        a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    return _band_psnr(a, b, luma)


def thumbnail_psnr(photo, thumbnail, scale: int = 4) -> float:
    """The 'degrade' PSNR: the thumbnail against the bicubic downscale of the photo, over the
    thumbnail pixels that cover the photo (padding excluded). The downscale runs in bands of rows
    on the padding grid, with context beyond the antialiased kernel's reach (2 * scale pixels)."""
    photo, thumbnail = np.asarray(photo), np.asarray(thumbnail)
    grid = scale * 8
    h, w = photo.shape[0] // scale, photo.shape[1] // scale
    squared_error, count = 0.0, 0
    for band in halo_spans(photo.shape[0], max(BAND_PIXELS // photo.shape[1] // grid, 2) * grid, grid, grid):
        hr = pad_to_multiple(to_tensor(photo[band.start:band.end]), grid)
        reference = bicubic_downscale(hr, scale)[0].permute(1, 2, 0).numpy() * 255.0
        top, bottom = band.core_start // scale, min(band.core_end // scale, h)
        offset = band.start // scale
        difference = np.round(reference[top - offset:bottom - offset, :w]) - _as_array(thumbnail[top:bottom, :w])
        squared_error += float(np.square(difference).sum())
        count += difference.size
    return _psnr(squared_error, count)


def ssim(a, b) -> float:
    """Mean SSIM over the RGB channels, what `channel_axis` computes, one channel of one band of rows
    at a time in float32: all channels of a 6K photo at once in float64 held several GB of filtered
    copies."""
    a, b = np.asarray(a), np.asarray(b)
    height, width = a.shape[:2]
    total = 0.0
    for band in _row_bands(a, SSIM_HALO):
        top, bottom = max(band.core_start, SSIM_HALO), min(band.core_end, height - SSIM_HALO)
        for c in range(a.shape[2]):
            _, local = structural_similarity(a[band.start:band.end, :, c].astype(np.float32),
                                             b[band.start:band.end, :, c].astype(np.float32),
                                             data_range=255.0, full=True)
            core = local[top - band.start:bottom - band.start, SSIM_HALO:width - SSIM_HALO]
            total += float(core.sum(dtype=np.float64))
    return total / (a.shape[2] * (height - 2 * SSIM_HALO) * (width - 2 * SSIM_HALO))


@lru_cache(maxsize=2)
def _lpips_model(net: str = "alex"):
    state = load_state_dict(net)
    if state is None:
        return None
    import lpips

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = lpips.LPIPS(net=net, pretrained=False, pnet_rand=True, verbose=False)
    # Not strict only because the model lists each linear layer twice (`linN` and `lins.N`, one module)
    # and keeps its input scaling as constant buffers; any other gap would silently measure with
    # random weights, so it is an error.
    missing, unexpected = model.load_state_dict(state, strict=False)
    gaps = [k for k in missing if not k.startswith(("lins.", "scaling_layer."))] + list(unexpected)
    if gaps:
        raise RuntimeError(f"LPIPS weights at {weights_path(net)} do not match the model ({gaps}); delete the "
                           "file and run `python -m hyperthumb lpips-weights` again")
    return model.eval()


def lpips_network(net: str = "alex") -> Optional[torch.nn.Module]:
    """The LPIPS network itself (inputs in -1..1, differentiable), for a training loss; a fresh copy,
    so its caller may move it or set its gradients. None without its weights."""
    model = _lpips_model.__wrapped__(net)
    if model is not None:
        model.requires_grad_(False)
    return model


def lpips_available() -> bool:
    return _lpips_model() is not None


def _to_lpips_tensor(pixels: np.ndarray, y_only: bool) -> torch.Tensor:
    """0..255 pixels -> LPIPS's -1..1 input (1,3,H,W), via float64 as the whole-photo version did."""
    array = _as_array(pixels)
    if y_only:
        array = np.repeat(luma(array)[..., None], 3, axis=2)
    return torch.from_numpy(array / 127.5 - 1.0).float().permute(2, 0, 1).unsqueeze(0)


def _lpips_layer_maps(model, a: torch.Tensor, b: torch.Tensor) -> Iterator[torch.Tensor]:
    """LPIPS.forward's per-layer distance maps (1,1,h,w), before its spatial means, one AlexNet stage
    at a time, so that only one stage's features of the two images are alive at once."""
    import lpips

    a, b = model.scaling_layer(a), model.scaling_layer(b)
    for index, lin in enumerate(model.lins, start=1):
        stage = getattr(model.net, f"slice{index}")
        a, b = stage(a), stage(b)
        yield lin((lpips.normalize_tensor(a) - lpips.normalize_tensor(b)) ** 2)


def _core(span: Span, stride: int) -> slice:
    """The span's core on a feature grid of `stride` pixels of its window; the last core takes the rest."""
    return slice((span.core_start - span.start) // stride,
                 None if span.core_end == span.end else (span.core_end - span.start) // stride)


def _tiles(height: int, width: int) -> Iterator[tuple[Span, Span]]:
    for rows in halo_spans(height, LPIPS_TILE, LPIPS_HALO, LPIPS_STRIDES[-1]):
        for cols in halo_spans(width, LPIPS_TILE, LPIPS_HALO, LPIPS_STRIDES[-1]):
            yield rows, cols


@torch.inference_mode()
def lpips_distance(a, b, y_only: bool = False) -> Optional[float]:
    """LPIPS (AlexNet, v0.1); on the luma channel alone when `y_only`. None without weights.

    The mean over each layer's distance map, summed over the layers, as `lpips.LPIPS` computes it,
    gathered from tiles whose cores hold exactly the whole photo's features."""
    model = _lpips_model()
    if model is None:
        return None
    a, b = np.asarray(a), np.asarray(b)
    sums, counts = [0.0] * len(LPIPS_STRIDES), [0] * len(LPIPS_STRIDES)
    for rows, cols in _tiles(*a.shape[:2]):
        window = (slice(rows.start, rows.end), slice(cols.start, cols.end))
        maps = _lpips_layer_maps(model, _to_lpips_tensor(a[window], y_only), _to_lpips_tensor(b[window], y_only))
        for layer, (stride, distances) in enumerate(zip(LPIPS_STRIDES, maps)):
            core = distances[0, 0, _core(rows, stride), _core(cols, stride)]
            sums[layer] += float(core.sum(dtype=torch.float64))
            counts[layer] += core.numel()
    return float(sum(total / count for total, count in zip(sums, counts)))
