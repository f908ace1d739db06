"""SSIM computed a channel at a time in float32 equals scikit-image's all-channel float64 result."""
from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from hyperthumb.metrics import ssim
from tests.conftest import photo_like


def test_ssim_per_channel_float32_equals_the_all_channel_result():
    a, b = np.asarray(photo_like(300, 200, seed=1)), np.asarray(photo_like(300, 200, seed=2))
    reference = structural_similarity(a.astype(np.float64), b.astype(np.float64), channel_axis=2, data_range=255.0)
    assert ssim(a, b) == pytest.approx(reference, abs=1e-6)
    assert ssim(a, a) == pytest.approx(1.0)
