"""Training patches: every source supplies its share whatever its photos' sizes, and the random
downscale shows a large photo's content at coarser scales."""
from __future__ import annotations

import numpy as np
from PIL import Image

from hyperthumb.training.data import PatchSampler


def solid(width: int, height: int, value: int) -> Image.Image:
    return Image.new("RGB", (width, height), (value, value, value))


def test_each_source_supplies_the_same_share_whatever_its_pixel_count(tmp_path):
    sources = {"large": (1200, 900, 200), "small": (96, 80, 40), "medium": (300, 200, 120)}
    folders = []
    for name, (width, height, value) in sources.items():
        folder = tmp_path / name
        folder.mkdir()
        solid(width, height, value).save(folder / "a.png")
        if name == "small":  # a source with more photos gets no larger share
            solid(width, height, value).save(folder / "b.png")
        folders.append(folder)
    sampler = PatchSampler(folders, patch=64, seed=0)
    values = sampler.batch(3000)[:, 0, 0, 0].mul(255).round().numpy()
    shares = {name: np.mean(values == value) for name, (_, _, value) in sources.items()}
    assert all(abs(share - 1 / 3) < 0.04 for share in shares.values()), shares


def test_downscale_brings_a_large_photos_coarse_structure_into_the_patch(tmp_path):
    # Vertical stripes 64 pixels wide: a native 32-pixel patch is almost always one flat stripe, a patch
    # of the photo downscaled by 1/4 or more crosses at least one stripe edge.
    stripes = (np.arange(1024) // 64 % 2 * 255).astype(np.uint8)
    Image.fromarray(np.tile(stripes, (1024, 1))).convert("RGB").save(tmp_path / "stripes.png")
    native = PatchSampler([tmp_path], patch=32, seed=1, native_share=1.0).batch(400)
    rescaled = PatchSampler([tmp_path], patch=32, seed=1, native_share=0.0, min_scale=0.125).batch(400)

    def with_edge(patches):
        return float(np.mean([(p.amax() - p.amin()).item() > 0.5 for p in patches]))

    assert with_edge(native) < 0.6 < with_edge(rescaled)
    assert native.shape == rescaled.shape == (400, 3, 32, 32)
