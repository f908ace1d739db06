"""The metrics in bands and tiles equal their whole-photo values: SSIM against scikit-image's
all-channel float64 result, PSNR against the plain float64 mean, LPIPS against `lpips.LPIPS` on the
whole image."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from hyperthumb.codec.image_io import to_tensor
from hyperthumb.codec.tiling import halo_spans
from hyperthumb.evaluation import metrics
from hyperthumb.evaluation.metrics import lpips_distance, psnr, psnr_y, ssim, thumbnail_psnr
from hyperthumb.models.pixels import bicubic_downscale, pad_to_multiple
from tests.conftest import photo_like


@pytest.fixture
def narrow_bands(monkeypatch):
    """Bands of a few dozen rows, so that a small photo is cut into many."""
    monkeypatch.setattr(metrics, "BAND_PIXELS", 300 * 40)


def _whole_psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * math.log10(255.0 ** 2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def test_ssim_per_channel_float32_equals_the_all_channel_result(narrow_bands):
    a, b = np.asarray(photo_like(300, 200, seed=1)), np.asarray(photo_like(300, 200, seed=2))
    reference = structural_similarity(a.astype(np.float64), b.astype(np.float64), channel_axis=2, data_range=255.0)
    assert ssim(a, b) == pytest.approx(reference, abs=1e-6)
    assert ssim(a, a) == pytest.approx(1.0)


def test_psnr_in_bands_equals_the_whole_photo_mean(narrow_bands):
    a, b = np.asarray(photo_like(300, 200, seed=1)), np.asarray(photo_like(300, 200, seed=2))
    assert psnr(a, b) == _whole_psnr(a, b)  # integer squares: float64 sums them exactly in any order
    assert psnr_y(a, b) == pytest.approx(_whole_psnr(metrics.luma(a[2:-2, 2:-2].astype(np.float64)),
                                                     metrics.luma(b[2:-2, 2:-2].astype(np.float64))), abs=1e-9)
    assert psnr(a, a) == float("inf")


def test_thumbnail_psnr_in_bands_equals_the_whole_downscale(monkeypatch):
    monkeypatch.setattr(metrics, "BAND_PIXELS", 517 * 64)
    photo, thumbnail = np.asarray(photo_like(517, 389, seed=1)), np.asarray(photo_like(129, 97, seed=2))
    reference = bicubic_downscale(pad_to_multiple(to_tensor(photo), 32), 4)[0].permute(1, 2, 0).numpy() * 255.0
    assert thumbnail_psnr(photo, thumbnail) == _whole_psnr(np.round(reference[:97, :129]), thumbnail)


def test_lpips_in_tiles_equals_the_whole_image(monkeypatch):
    """About 1 MP in 3 x 2 tiles; the halo covers conv5's reach, so only float rounding differs
    (measured: 1e-9 on 1.5 MP)."""
    model = metrics._lpips_model()
    if model is None:
        pytest.skip("LPIPS weights are not provisioned")
    a, b = np.asarray(photo_like(1200, 900, seed=1)), np.asarray(photo_like(1200, 900, seed=2))
    with torch.inference_mode():
        whole = float(model(*(torch.from_numpy(x / 127.5 - 1.0).float().permute(2, 0, 1)[None] for x in (a, b))))
    monkeypatch.setattr(metrics, "LPIPS_TILE", 512)
    assert len(halo_spans(900, 512, metrics.LPIPS_HALO)) == 2 and len(halo_spans(1200, 512, metrics.LPIPS_HALO)) == 3
    assert lpips_distance(a, b) == pytest.approx(whole, abs=1e-6)
