"""Bjontegaard deltas: the average gap between two rate-distortion curves.

G. Bjontegaard, "Calculation of average PSNR differences between RD-curves", VCEG-M33 (2001):
fit each curve with a cubic polynomial (PSNR as a function of log rate for the PSNR delta, log rate
as a function of PSNR for the rate delta), integrate both fits over the interval where the curves
overlap, and divide the difference of the integrals by the interval's length.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

_DEGREE = 3  # a cubic, as in VCEG-M33; curves of fewer than 4 points get the highest degree they allow

NO_OVERLAP = ("undefined: the two curves share no PSNR range (one method's worst quality beats the "
              "other's best), so there is no interval to average the rate gap over")


def _mean_gap(x_ref: np.ndarray, y_ref: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> float:
    """Mean of fit_test(x) - fit_ref(x) over the overlap of the two x ranges (NaN if they do not overlap)."""
    low, high = max(x_ref.min(), x_test.min()), min(x_ref.max(), x_test.max())
    if not high > low:
        return float("nan")
    areas = []
    for x, y in ((x_ref, y_ref), (x_test, y_test)):
        integral = np.polyint(np.polyfit(x, y, min(_DEGREE, len(x) - 1)))
        areas.append(np.polyval(integral, high) - np.polyval(integral, low))
    return float((areas[1] - areas[0]) / (high - low))


def _curves(rate_ref: Sequence[float], psnr_ref: Sequence[float], rate_test: Sequence[float],
            psnr_test: Sequence[float]) -> tuple[np.ndarray, ...]:
    arrays = [np.asarray(values, dtype=np.float64) for values in (rate_ref, psnr_ref, rate_test, psnr_test)]
    if len(arrays[0]) != len(arrays[1]) or len(arrays[2]) != len(arrays[3]):
        raise ValueError("each curve needs as many rates as PSNR values")
    if min(len(arrays[0]), len(arrays[2])) < 2:
        raise ValueError("each curve needs at least two points")
    if (arrays[0] <= 0).any() or (arrays[2] <= 0).any():
        raise ValueError("rates must be positive")
    return np.log10(arrays[0]), arrays[1], np.log10(arrays[2]), arrays[3]


def bd_psnr(rate_ref: Sequence[float], psnr_ref: Sequence[float], rate_test: Sequence[float],
            psnr_test: Sequence[float]) -> float:
    """Average PSNR gain (dB) of the test curve over the reference at equal rate; positive is better."""
    log_ref, psnr_r, log_test, psnr_t = _curves(rate_ref, psnr_ref, rate_test, psnr_test)
    return _mean_gap(log_ref, psnr_r, log_test, psnr_t)


def bd_rate(rate_ref: Sequence[float], psnr_ref: Sequence[float], rate_test: Sequence[float],
            psnr_test: Sequence[float]) -> float:
    """Average rate change (percent) of the test curve against the reference at equal PSNR; negative
    is better (-20 means 20% fewer bits for the same quality)."""
    log_ref, psnr_r, log_test, psnr_t = _curves(rate_ref, psnr_ref, rate_test, psnr_test)
    return float((10 ** _mean_gap(psnr_r, log_ref, psnr_t, log_test) - 1) * 100)
