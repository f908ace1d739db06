"""The shipped checkpoints against golden data (`tools/golden.py`, which says how it is made).

- The committed thumbnail decodes to the committed pixels, within the spread measured across CPU
  instruction sets (`PIXEL_TOLERANCE`), with this machine's kernels and with AVX2's: converting or
  reloading a checkpoint must not change a weight, and a laptop without AVX-512 must pass too.
- Each shipped checkpoint, on a crop of an example photo, meets the target bpp within the codec's 5 %
  and the recorded HR PSNR within 0.1 dB (quality tier).

After a legitimate retraining, rewrite the data with `OMP_NUM_THREADS=1 python -m tools.golden` and
commit it with the checkpoints.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from hyperthumb.codec import BPP_TOLERANCE
from hyperthumb.zoo import CHECKPOINTS
from tools.golden import (
    GOLDEN_FIGURES,
    GOLDEN_RESTORED,
    GOLDEN_THUMBNAIL,
    PIXEL_TOLERANCE,
    TARGET_BPP,
    fp32_codec,
    pixel_difference,
    quality,
)

FIGURES = json.loads(GOLDEN_FIGURES.read_text())
ROOT = Path(__file__).resolve().parent.parent
# What makes an AVX-512 machine take the AVX2 kernels (oneDNN's convolutions, ATen's vectorised ops).
AVX2_ONLY = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}


def _has_avx2() -> bool:
    try:
        return platform.machine() in ("x86_64", "AMD64") and " avx2 " in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def _decoded_with(kernels: str, tmp_path: Path) -> Image.Image:
    """The golden thumbnail restored by this process, or by a fresh one limited to AVX2 (the
    kernels are chosen when torch loads, so that takes a new interpreter)."""
    if kernels == "native":
        return fp32_codec("rdbunet").decode(GOLDEN_THUMBNAIL)
    out = tmp_path / "restored.png"
    script = ("import sys, torch; torch.set_num_threads(1); from tools.golden import GOLDEN_THUMBNAIL, fp32_codec; "
              "fp32_codec('rdbunet').decode(GOLDEN_THUMBNAIL).save(sys.argv[1])")
    subprocess.run([sys.executable, "-c", script, str(out)], cwd=ROOT, check=True, timeout=300,
                   env={**os.environ, **AVX2_ONLY, "PYTHONPATH": str(ROOT)})
    return Image.open(out)


@pytest.mark.parametrize("kernels", ["native", "avx2"])
def test_golden_thumbnail_decodes_to_the_recorded_pixels(kernels, tmp_path):
    if kernels == "avx2" and not _has_avx2():
        pytest.skip("this CPU has no AVX2")
    largest, share = pixel_difference(_decoded_with(kernels, tmp_path), Image.open(GOLDEN_RESTORED))
    assert largest <= PIXEL_TOLERANCE[0] and share <= PIXEL_TOLERANCE[1], (largest, share)


def test_the_pixel_tolerance_catches_a_changed_weight():
    """A tolerance that passes everything proves nothing: a decoder whose last layer is scaled by
    1 + 1e-4 must fail it."""
    import torch

    codec = fp32_codec("rdbunet")
    with torch.no_grad():
        codec.model.decoder.upsample[0].weight.mul_(1 + 1e-4)
    largest, share = pixel_difference(codec.decode(GOLDEN_THUMBNAIL), Image.open(GOLDEN_RESTORED))
    assert not (largest <= PIXEL_TOLERANCE[0] and share <= PIXEL_TOLERANCE[1]), (largest, share)


@pytest.mark.quality
@pytest.mark.parametrize("checkpoint", CHECKPOINTS)
def test_shipped_checkpoint_meets_bpp_and_recorded_psnr(checkpoint):
    recorded, measured = FIGURES["quality"][checkpoint], quality(fp32_codec(checkpoint))
    assert abs(measured["bpp"] - TARGET_BPP) <= BPP_TOLERANCE * TARGET_BPP
    assert measured["psnr_hr"] == pytest.approx(recorded["psnr_hr"], abs=0.1)
