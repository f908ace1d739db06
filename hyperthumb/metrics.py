"""Image quality: PSNR (RGB and Y), SSIM (scikit-image), LPIPS-RGB and LPIPS-Y (lpips, AlexNet)."""
from __future__ import annotations

import math
import warnings
from functools import lru_cache
from typing import Optional

import numpy as np
import torch
from skimage.metrics import structural_similarity

from .image_io import to_tensor
from .lpips_weights import load_state_dict, weights_path
from .resize import bicubic_downscale, pad_to_multiple

Y_BORDER = 2  # the paper reports Y PSNR with a 2-pixel border crop


def _as_array(image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64)


def luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of 0..255 RGB (the Y channel of JPEG's YCbCr)."""
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def psnr(a, b) -> float:
    mse = float(np.mean((_as_array(a) - _as_array(b)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def psnr_y(a, b, border: int = Y_BORDER) -> float:
    ya, yb = luma(_as_array(a)), luma(_as_array(b))
    if border:
        ya, yb = ya[border:-border, border:-border], yb[border:-border, border:-border]
    return psnr(ya, yb)


def thumbnail_psnr(photo, thumbnail, scale: int = 4) -> float:
    """The 'degrade' PSNR: the thumbnail against the bicubic downscale of the photo, over the
    thumbnail pixels that cover the photo (padding excluded)."""
    hr = pad_to_multiple(to_tensor(photo), scale * 8)
    reference = bicubic_downscale(hr, scale)[0].permute(1, 2, 0).numpy() * 255.0
    h, w = photo.size[1] // scale, photo.size[0] // scale
    return psnr(np.round(reference[:h, :w]), _as_array(thumbnail)[:h, :w])


def ssim(a, b) -> float:
    """Mean SSIM over the RGB channels, one channel at a time in float32 (what `channel_axis` computes):
    all channels at once in float64 held several GB of filtered copies for a 6K photo."""
    a, b = np.asarray(a), np.asarray(b)
    return float(np.mean([structural_similarity(a[..., c].astype(np.float32), b[..., c].astype(np.float32),
                                                data_range=255.0) for c in range(a.shape[2])]))


@lru_cache(maxsize=1)
def _lpips_model():
    state = load_state_dict()
    if state is None:
        return None
    import lpips

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = lpips.LPIPS(net="alex", pretrained=False, pnet_rand=True, verbose=False)
    # Not strict only because the model lists each linear layer twice (`linN` and `lins.N`, one module)
    # and keeps its input scaling as constant buffers; any other gap would silently measure with
    # random weights, so it is an error.
    missing, unexpected = model.load_state_dict(state, strict=False)
    gaps = [k for k in missing if not k.startswith(("lins.", "scaling_layer."))] + list(unexpected)
    if gaps:
        raise RuntimeError(f"LPIPS weights at {weights_path()} do not match the model ({gaps}); delete the file "
                           "and run `python -m hyperthumb lpips-weights` again")
    return model.eval()


def lpips_available() -> bool:
    return _lpips_model() is not None


def _to_lpips_tensor(array: np.ndarray) -> torch.Tensor:
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    return torch.from_numpy(array / 127.5 - 1.0).float().permute(2, 0, 1).unsqueeze(0)


@torch.inference_mode()
def lpips_distance(a, b, y_only: bool = False) -> Optional[float]:
    """LPIPS (AlexNet, v0.1); on the luma channel alone when `y_only`. None without weights."""
    model = _lpips_model()
    if model is None:
        return None
    a, b = _as_array(a), _as_array(b)
    if y_only:
        a, b = luma(a), luma(b)
    return float(model(_to_lpips_tensor(a), _to_lpips_tensor(b)).item())
