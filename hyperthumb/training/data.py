"""Training data: random HR patches from several sources of photos, rescaled, flipped and rotated.

Every source (a folder) supplies the same share of patches and every photo within it the same share,
whatever their pixel counts: weighting by pixels let a few 6-24 MP wallpapers supply almost every
patch. A random downscale before cropping lets a large photo also give patches at the detail of an
ordinary photo, while half of the patches keep the photo's native detail.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from hyperthumb.codec.image_io import list_images, load_image
from hyperthumb.errors import InvalidImageError

PathLike = Union[str, Path]


def _uint8_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> uint8 (3, H, W): a quarter of the memory of floats, for photos kept resident."""
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).contiguous()


class PatchSampler:
    """Holds every photo as uint8 on `device` and draws patches, each source and photo equally often.

    `native_share` of the patches are cropped at the photo's own resolution; the rest are cropped
    from the photo downscaled by a factor drawn log-uniformly from [`min_scale`, 1] (never so far
    that the photo's shorter side falls below the patch). On a GPU the photos are uploaded once and
    patches are cut and resized there, so the sampler keeps up with large batches.
    """

    def __init__(self, folders: Union[PathLike, Sequence[PathLike]], patch: int, seed: int = 0,
                 native_share: float = 0.5, min_scale: float = 0.125, device: Union[str, torch.device] = "cpu"):
        self.patch = patch
        self.native_share = native_share
        self.min_scale = min_scale
        self.device = torch.device(device)
        folders = [folders] if isinstance(folders, (str, Path)) else list(folders)
        self.images: list[torch.Tensor] = []
        sources: list[int] = []
        for source, folder in enumerate(folders):
            usable = [_uint8_tensor(image).to(self.device) for image in map(load_image, list_images(folder))
                      if min(image.size) >= patch]
            if not usable:
                raise InvalidImageError(f"no image in {folder} is at least {patch}x{patch}")
            self.images.extend(usable)
            sources.extend([source] * len(usable))
        per_source = np.bincount(sources).astype(np.float64)
        self.weights = 1.0 / (len(per_source) * per_source[sources])
        self.rng = np.random.default_rng(seed)

    def _scale(self, image: torch.Tensor) -> float:
        if self.rng.random() < self.native_share:
            return 1.0
        low = max(self.min_scale, self.patch / min(image.shape[1:]))
        return float(math.exp(self.rng.uniform(math.log(low), 0.0))) if low < 1 else 1.0

    def _patch(self, image: torch.Tensor) -> torch.Tensor:
        """(3, patch, patch) float in [0, 1]."""
        side = min(math.ceil(self.patch / self._scale(image)), *image.shape[1:])
        y = int(self.rng.integers(0, image.shape[1] - side + 1))
        x = int(self.rng.integers(0, image.shape[2] - side + 1))
        patch = image[:, y:y + side, x:x + side].float().div(255.0)
        if side != self.patch:
            patch = F.interpolate(patch[None], size=(self.patch, self.patch), mode="bicubic", antialias=True,
                                  align_corners=False)[0].clamp(0.0, 1.0)
        if self.rng.random() < 0.5:
            patch = patch.flip(-1)
        return patch.rot90(int(self.rng.integers(4)), dims=(1, 2))

    def batch(self, size: int) -> torch.Tensor:
        """(size, 3, patch, patch) on the sampler's device."""
        indices = self.rng.choice(len(self.images), size=size, p=self.weights)
        return torch.stack([self._patch(self.images[index]) for index in indices])


def center_crops(folder: PathLike, size: int) -> list:
    """Fixed validation crops (PIL images), so every validation sees the same pixels."""
    crops = []
    for path in list_images(folder):
        image = load_image(path)
        w, h = image.size
        side_w, side_h = min(size, w), min(size, h)
        left, top = (w - side_w) // 2, (h - side_h) // 2
        crops.append(image.crop((left, top, left + side_w, top + side_h)))
    return crops
