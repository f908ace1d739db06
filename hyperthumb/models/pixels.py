"""Pixel-grid helpers: bicubic resampling of the reference thumbnail, edge padding of HR inputs,
and rounding to 8-bit values."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def bicubic_downscale(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """Antialiased bicubic downscale (what Pillow's BICUBIC resize does): the 'ordinary' thumbnail."""
    h, w = hr.shape[-2:]
    return F.interpolate(hr, size=(h // scale, w // scale), mode="bicubic", antialias=True,
                         align_corners=False).clamp(0, 1)


def pad_to_multiple(hr: torch.Tensor, multiple: int) -> torch.Tensor:
    """Edge-replicate padding on the bottom and right; the decoder crops it away. Sides already
    multiples of `multiple` give `hr` itself."""
    h, w = hr.shape[-2:]
    if not (h % multiple or w % multiple):
        return hr
    return F.pad(hr, (0, (-w) % multiple, 0, (-h) % multiple), mode="replicate")


def round_to_pixel_values_(image: torch.Tensor) -> torch.Tensor:
    """Float tensor in [0, 1] -> the 8-bit values it rounds to, in place (still floats: copying
    them into a uint8 tensor casts them exactly). The inverse of `codec.image_io.to_tensor`."""
    return image.clamp_(0.0, 1.0).mul_(255.0).round_()
