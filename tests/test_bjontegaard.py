"""Bjontegaard deltas against curves whose answer is known exactly."""
from __future__ import annotations

import math

import pytest

from hyperthumb.evaluation.bjontegaard import bd_psnr, bd_rate

RATES = [0.1, 0.2, 0.3, 0.5]
PSNRS = [27.0, 29.1, 30.2, 31.6]


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


def test_two_point_curves_and_disjoint_curves():
    assert bd_psnr([0.1, 0.3], [27.0, 30.0], [0.1, 0.3], [28.0, 31.0]) == pytest.approx(1.0)
    assert math.isnan(bd_psnr([0.1, 0.2], [27.0, 29.0], [0.4, 0.5], [31.0, 32.0]))


def test_bad_curves_are_refused():
    with pytest.raises(ValueError):
        bd_psnr([0.1], [27.0], [0.1], [27.0])
    with pytest.raises(ValueError):
        bd_rate([0.0, 0.1], [20.0, 27.0], RATES, PSNRS)
