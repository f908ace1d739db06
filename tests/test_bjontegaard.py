"""Bjontegaard deltas against curves whose answer is known exactly, and against the figures the
hand-written VCEG-M33 fit recorded in results/eval before the `bjontegaard` package replaced it."""
from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path

import pytest

from hyperthumb.evaluation.bjontegaard import bd_psnr, bd_rate
from hyperthumb.evaluation.evaluate import per_photo_deltas, read_results, summarize

RATES = [0.1, 0.2, 0.3, 0.5]
PSNRS = [27.0, 29.1, 30.2, 31.6]
RECORDED = Path(__file__).resolve().parent.parent / "results" / "eval"
SETS = ["val", "kodak24", "set14", "b100"]


def _recorded_rows(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_identical_curves_give_zero():
    assert bd_psnr(RATES, PSNRS, RATES, PSNRS) == pytest.approx(0.0, abs=1e-9)
    assert bd_rate(RATES, PSNRS, RATES, PSNRS) == pytest.approx(0.0, abs=1e-9)


def test_curve_one_db_higher_gives_bd_psnr_one():
    assert bd_psnr(RATES, PSNRS, RATES, [p + 1.0 for p in PSNRS]) == pytest.approx(1.0, abs=1e-9)
    assert bd_psnr(RATES, [p + 1.0 for p in PSNRS], RATES, PSNRS) == pytest.approx(-1.0, abs=1e-9)


def test_same_quality_at_eighty_percent_of_the_rate_gives_bd_rate_minus_twenty():
    cheaper = [r * 0.8 for r in RATES]
    assert bd_rate(RATES, PSNRS, cheaper, PSNRS) == pytest.approx(-20.0, abs=1e-6)
    assert bd_psnr(RATES, PSNRS, cheaper, PSNRS) > 0  # same PSNR for fewer bits is a gain at equal rate


def test_points_in_any_order_give_the_same_deltas():
    shuffled = [2, 0, 3, 1]
    rates, psnrs = [RATES[i] for i in shuffled], [PSNRS[i] + 0.5 for i in shuffled]
    for delta in (bd_psnr, bd_rate):
        assert delta(RATES[::-1], PSNRS[::-1], rates, psnrs) == pytest.approx(
            delta(RATES, PSNRS, sorted(rates), sorted(psnrs)), abs=1e-9)


def test_curves_too_short_for_a_cubic_are_interpolated_through_their_points():
    assert bd_psnr([0.1, 0.3], [27.0, 30.0], [0.1, 0.3], [28.0, 31.0]) == pytest.approx(1.0)
    three = ([0.1, 0.2, 0.4], [27.0, 29.5, 31.0])
    assert bd_psnr(*three, three[0], [p + 0.7 for p in three[1]]) == pytest.approx(0.7, abs=1e-9)
    assert bd_rate(*three, [r * 0.9 for r in three[0]], three[1]) == pytest.approx(-10.0, abs=1e-6)
    assert bd_psnr(*three, RATES, PSNRS) == pytest.approx(-bd_psnr(RATES, PSNRS, *three), abs=1e-9)


def test_disjoint_curves_give_nan_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(bd_psnr([0.1, 0.2], [27.0, 29.0], [0.4, 0.5], [31.0, 32.0]))
        assert math.isnan(bd_rate(RATES, PSNRS, RATES, [p + 10 for p in PSNRS]))
        assert not math.isnan(bd_psnr(RATES, PSNRS, [0.45, 0.6, 0.8, 1.0], PSNRS))  # 0.45-0.5: a sliver


def test_bad_curves_are_refused():
    with pytest.raises(ValueError):
        bd_psnr([0.1], [27.0], [0.1], [27.0])
    with pytest.raises(ValueError):
        bd_rate([0.0, 0.1], [20.0, 27.0], RATES, PSNRS)
    with pytest.raises(ValueError):
        bd_psnr(RATES, PSNRS[:3], RATES, PSNRS)


def test_every_recorded_per_photo_bd_psnr_is_reproduced():
    recorded = {(row["set"], row["image"], row["method"]): float(row["bd_psnr_db"])
                for row in _recorded_rows(RECORDED / "per_photo_bd.csv")}
    results = {name: read_results(RECORDED / name / "results.csv") for name in SETS}
    computed = {(name, row["image"], row["method"]): row["bd_psnr_db"] for name in SETS
                for row in per_photo_deltas(results[name])}
    photos = {(name, row["image"]) for name in SETS for row in results[name]}
    with_thumbnails = {row["method"] for rows in results.values() for row in rows
                       if row["psnr_lr"] is not None}  # the baseline too
    assert computed.keys() == recorded.keys() and len(recorded) == len(photos) * len(with_thumbnails) > 1000
    assert max(abs(computed[key] - value) for key, value in recorded.items()) < 1e-6


@pytest.mark.parametrize("name", SETS)
def test_the_recorded_mean_curve_deltas_are_reproduced(name):
    """BD-PSNR and BD-rate on each method's mean curve, and the BD-rates left undefined (no overlap)."""
    recorded = {(row["method"], float(row["target_bpp"])): row
                for row in _recorded_rows(RECORDED / name / "summary.csv")}
    for row in summarize(read_results(RECORDED / name / "results.csv")):
        expected = recorded[(row["method"], row["target_bpp"])]
        for column in ("bd_psnr_db", "bd_rate_pct"):
            if expected[column] == "":
                assert row[column] is None
            else:
                assert row[column] == pytest.approx(float(expected[column]), rel=0, abs=1e-6)
