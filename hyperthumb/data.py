"""Training data: random HR patches, flipped and rotated, from any folder of photos."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .errors import InvalidImageError
from .image_io import load_image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


def list_images(folder: str | Path) -> list[Path]:
    paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise InvalidImageError(f"no images found in {folder}")
    return paths


class PatchSampler:
    """Holds every photo in memory as uint8 and draws patches, photos weighted by pixel count."""

    def __init__(self, folder: str | Path, patch: int, seed: int = 0):
        self.patch = patch
        self.images = [np.asarray(load_image(p)) for p in list_images(folder)]
        self.images = [im for im in self.images if min(im.shape[:2]) >= patch]
        if not self.images:
            raise InvalidImageError(f"no image in {folder} is at least {patch}x{patch}")
        sizes = np.array([im.shape[0] * im.shape[1] for im in self.images], dtype=np.float64)
        self.weights = sizes / sizes.sum()
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int) -> torch.Tensor:
        patches = []
        for index in self.rng.choice(len(self.images), size=size, p=self.weights):
            image = self.images[index]
            y = self.rng.integers(0, image.shape[0] - self.patch + 1)
            x = self.rng.integers(0, image.shape[1] - self.patch + 1)
            patch = image[y:y + self.patch, x:x + self.patch]
            if self.rng.random() < 0.5:
                patch = patch[:, ::-1]
            patch = np.rot90(patch, k=int(self.rng.integers(4)))
            patches.append(np.ascontiguousarray(patch))
        return torch.from_numpy(np.stack(patches)).permute(0, 3, 1, 2).float().div(255.0)


def center_crops(folder: str | Path, size: int) -> list:
    """Fixed validation crops (PIL images), so every validation sees the same pixels."""
    crops = []
    for path in list_images(folder):
        image = load_image(path)
        w, h = image.size
        side_w, side_h = min(size, w), min(size, h)
        left, top = (w - side_w) // 2, (h - side_h) // 2
        crops.append(image.crop((left, top, left + side_w, top + side_h)))
    return crops
