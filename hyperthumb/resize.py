"""Bicubic resampling of the reference thumbnail, and the edge padding of HR inputs."""
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
