"""The generated sharp decoders table reads the summary's figures into the right cells, and marks a
sharp decoder below the full-size WebP's LPIPS, and only that."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from hyperthumb.evaluation.tables import sharp_table

COLUMNS = ["set", "method", "target_bpp", "images", "bpp", "psnr_hr", "ssim_hr", "lpips_rgb", "dists"]


def _summary(path: Path, rows: list[tuple]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return path


def test_sharp_table_cells_and_bold(tmp_path):
    rows = [("s", "rdbunet", 0.1, 3, 0.1, 25.0, 0.70, 0.40, 0.20),
            ("s", "rdbunet-sharp", 0.1, 3, 0.1, 24.5, 0.69, 0.30, 0.15),  # below WebP's 0.35: bold
            ("s", "transformer", 0.1, 3, 0.1, 25.1, 0.71, 0.41, 0.21),
            ("s", "transformer-sharp", 0.1, 3, 0.1, 24.6, 0.70, 0.36, 0.16),  # above it: plain
            ("s", "webp-full", 0.1, 3, 0.09, 26.0, 0.75, 0.35, ""),  # DISTS not measured: "-"
            ("s", "avif-full", 0.1, 3, 0.09, 27.0, 0.78, 0.33, 0.12),
            ("s", "jpeg-full", 0.1, 3, 0.09, 22.0, 0.60, 0.50, 0.30)]
    table = sharp_table(_summary(tmp_path / "summary.csv", rows), sets=["s"], targets=[0.1])
    header, rule, line = table.splitlines()
    assert header.count("|") == rule.count("|") == line.count("|") == 13
    assert line == ("| s | 0.1 | 0.400 / **0.300** | 0.410 / 0.360 | 0.350 / 0.330 / 0.500 | 0.200 / 0.150 | "
                    "0.210 / 0.160 | - / 0.120 / 0.300 | 25.00 / 24.50 | 25.10 / 24.60 | 0.700 / 0.690 | "
                    "0.710 / 0.700 |")
    with pytest.raises(ValueError, match="no row for transformer-sharp"):
        sharp_table(_summary(tmp_path / "short.csv", [row for row in rows if row[1] != "transformer-sharp"]),
                    sets=["s"], targets=[0.1])
