"""Tiles: the blend is exact for local networks, seams stay invisible, memory stays a band."""
from __future__ import annotations

import tracemalloc
from fractions import Fraction
from itertools import pairwise

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hyperthumb.codec.runtime import Runtime
from hyperthumb.codec.thumbnail_codec import DEFAULT_DECODE_TILE, HyperThumbCodec
from hyperthumb.codec.tiling import halo_spans, run_tiled
from hyperthumb.evaluation.metrics import psnr
from tests.conftest import photo_like, small_model


def _pointwise(x: torch.Tensor, factor: Fraction):
    """A network with no context at all: tiling it must give exactly the whole-image result."""
    def apply(t: torch.Tensor) -> torch.Tensor:
        return F.interpolate(t, scale_factor=int(factor)) if factor >= 1 else F.avg_pool2d(t, int(1 / factor))

    return apply(x), lambda windows: torch.cat([apply(x[(..., *w.slices())]) for w in windows])


@pytest.mark.parametrize("size, factor, tile, halo, grid", [
    ((256, 392), Fraction(4), 64, 16, 8),  # decoder-like: thumbnail space, 4x up
    ((512, 768), Fraction(1, 4), 256, 64, 32),  # encoder-like: HR space, 4x down
])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_blend_weights_sum_to_one(size, factor, tile, halo, grid, dtype):
    x = torch.rand(1, 3, *size)
    whole, fn = _pointwise(x, factor)
    out = np.zeros((int(size[0] * factor) - 3, int(size[1] * factor) - 5, 3), dtype)  # cropped output
    run_tiled(fn, size, out, factor, tile, halo, grid, batch=3)
    expected = whole[0].permute(1, 2, 0).numpy()[:out.shape[0], :out.shape[1]]
    if dtype == np.uint8:  # float rounding of the blend may tip a value sitting on .5
        expected = np.rint(expected * 255)
    np.testing.assert_allclose(out, expected, atol=1 if dtype == np.uint8 else 1e-6)


def test_only_a_band_is_held_in_float():
    size, out = (4096, 4096), np.zeros((4096, 4096, 3), np.uint8)
    tracemalloc.start()
    run_tiled(lambda ws: torch.zeros(len(ws), 3, ws[0].bottom - ws[0].top, ws[0].right - ws[0].left),
              size, out, Fraction(1), 512, 64, 32)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < out.size  # a float image would take 4 * out.size bytes; one band is ~1/9 of it


def _lively_model(encoder: str):
    """The small test model with its zero-initialised heads randomised: not a plain bicubic."""
    model = small_model(encoder, seed=1)
    with torch.no_grad():
        model.encoder.head.weight.normal_(0, 0.02)
        model.decoder.upsample[0].weight.normal_(0, 0.02)
    return model


@pytest.mark.parametrize("encoder", ["rdbunet", "transformer"])
def test_tiled_matches_untiled(encoder):
    model, photo = _lively_model(encoder), photo_like(1000, 744, seed=5)
    whole = HyperThumbCodec(model, name=encoder, tile=None)
    tiled = HyperThumbCodec(model, name=encoder, tile=512, decode_tile=512)
    assert tiled._tile_for(768, 1024, tiled.tile) == 512  # 2 x 2 tiles at least
    thumb = whole.encode(photo, rate_t=0.0)
    tiled_thumb = tiled.encode(photo, rate_t=0.0)
    assert psnr(tiled_thumb.image, thumb.image) > 45
    assert psnr(tiled.decode(thumb.jpeg), whole.decode(thumb.jpeg)) > 45


def test_small_photos_run_whole(small_codec):
    assert small_codec._tile_for(2048, 2048, small_codec.tile) is None
    assert small_codec._tile_for(2048, 2080, small_codec.tile) == 2048
    assert HyperThumbCodec._tile_for(4096, 6144, DEFAULT_DECODE_TILE) is None  # PyTorch decodes 6K whole


def test_tile_settings_are_checked():
    with pytest.raises(ValueError):
        HyperThumbCodec(small_model(), tile=1000)
    with pytest.raises(ValueError):
        HyperThumbCodec(small_model(), tile=256, halo=128)
    with pytest.raises(ValueError):
        HyperThumbCodec(small_model(), decode_tile=1000)


def test_fast_cpu_path_keeps_quality():
    """The CPU's fast path (bf16 autocast, channels-last; forced here even without native bf16)
    loses at most 0.05 dB HR PSNR against fp32 with the shipped checkpoint."""
    import hyperthumb

    model = hyperthumb.load_model("rdbunet", device="cpu").model
    photo = photo_like(640, 448, seed=8)
    reference = HyperThumbCodec(model, "rdbunet", runtime=Runtime())
    fast = HyperThumbCodec(model, "rdbunet", runtime=Runtime(torch.bfloat16, channels_last=True, batch=2))
    jpeg = reference.encode(photo, target_bpp=0.3).jpeg
    assert abs(psnr(fast.decode(jpeg), photo) - psnr(reference.decode(jpeg), photo)) <= 0.05


@pytest.mark.parametrize("length, core, halo, grid", [(900, 512, 96, 16), (4096, 1024, 96, 16), (37, 8, 3, 1),
                                                      (100, 1000, 3, 1)])
def test_halo_spans_cover_the_axis_once_from_the_grid(length, core, halo, grid):
    spans = halo_spans(length, core, halo, grid)
    assert spans[0].core_start == 0 and spans[-1].core_end == length
    for span, following in pairwise(spans):
        assert span.core_end == following.core_start
    for span in spans:
        assert span.core_start % grid == 0 and span.core_start < span.core_end <= span.core_start + core + grid
        assert span.start == max(span.core_start - halo, 0) and span.end == min(span.core_end + halo, length)
