"""The shipped checkpoints against golden data (`tools/golden.py`, which says how it is made).

- The committed thumbnail decodes to the very pixels it decoded to when it was made: converting or
  reloading a checkpoint must not change one weight.
- Each shipped checkpoint, on a crop of an example photo, meets the target bpp within the codec's 5 %
  and the recorded HR PSNR within 0.1 dB (quality tier).

After a legitimate retraining, rewrite the data with `OMP_NUM_THREADS=1 python -m tools.golden` and
commit it with the checkpoints.
"""
from __future__ import annotations

import json

import pytest

from hyperthumb.codec.thumbnail_codec import BPP_TOLERANCE
from hyperthumb.zoo import CHECKPOINTS
from tools.golden import GOLDEN_FIGURES, GOLDEN_THUMBNAIL, TARGET_BPP, fp32_codec, pixel_digest, quality

FIGURES = json.loads(GOLDEN_FIGURES.read_text())


def test_golden_thumbnail_decodes_to_the_recorded_pixels():
    restored = fp32_codec("rdbunet").decode(GOLDEN_THUMBNAIL)
    assert pixel_digest(restored) == FIGURES["golden_rdbunet_sha256"]


@pytest.mark.quality
@pytest.mark.parametrize("checkpoint", CHECKPOINTS)
def test_shipped_checkpoint_meets_bpp_and_recorded_psnr(checkpoint):
    recorded, measured = FIGURES["quality"][checkpoint], quality(fp32_codec(checkpoint))
    assert abs(measured["bpp"] - TARGET_BPP) <= BPP_TOLERANCE * TARGET_BPP
    assert measured["psnr_hr"] == pytest.approx(recorded["psnr_hr"], abs=0.1)
