"""The benchmark runs end to end at a tiny size and reports every figure (timings never asserted)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from hyperthumb.evaluation.bench import bench_codec, format_table, fp32_reference, synthetic_photo


def test_synthetic_photo_is_photo_like():
    photo = synthetic_photo(300, 200)
    array = np.asarray(photo, np.float32)
    assert photo.size == (300, 200) and photo.mode == "RGB"
    assert array.std() > 20 and np.abs(np.diff(array, axis=1)).mean() > 2  # structure and grain


def test_bench_codec_reports_every_field(small_codec):
    result = bench_codec(small_codec, synthetic_photo(128, 96), repeats=2)
    assert (result.width, result.height) == (128, 96)
    assert min(result.encode_s, result.decode_s, result.bicubic_s, result.pillow_s) > 0
    assert result.encode_peak_mb >= 0 and result.decode_peak_mb >= 0
    assert min(result.parses_per_s) > 0
    table = format_table([result])
    for field in ("encode s", "decode s", "MP/s", "peak MB", "decode / bicubic", "decode / Pillow", "128x96",
                  "| - / - |", "parses/s"):
        assert field in table


def test_bench_compares_with_torch_fp32_on_the_same_thumbnail(small_codec):
    photo = synthetic_photo(128, 96)
    reference = fp32_reference(small_codec.model, "rdbunet", "cpu", photo, 0.3)
    result = bench_codec(small_codec, photo, repeats=1, reference=reference)
    assert result.engine.startswith("torch")
    assert abs(result.decode_db) < 0.05 and abs(result.round_trip_db) < 0.05


@pytest.mark.cli
def test_bench_command(tmp_path):
    done = subprocess.run([sys.executable, "-m", "hyperthumb", "bench", "--size", "128x96", "--repeats", "1",
                           "--encoders", "rdbunet", "--device", "cpu", "--engine", "torch"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "| rdbunet | torch " in done.stdout and "| 128x96 |" in done.stdout
    assert "torch threads" in done.stdout and "native bf16: " in done.stdout
    bad = subprocess.run([sys.executable, "-m", "hyperthumb", "bench", "--size", "big"], capture_output=True, text=True)
    assert bad.returncode != 0 and "6144x4096" in bad.stderr
