"""Bjontegaard deltas: the average gap between two rate-distortion curves.

The arithmetic is the `bjontegaard` package's; this module keeps the project's input checks, its NaN
(explained by NO_OVERLAP) for curves that share no range, and its answer for curves too short for a cubic.
"""
# G. Bjontegaard, "Calculation of average PSNR differences between RD-curves", VCEG-M33 (2001): fit each
# curve with a cubic polynomial (PSNR as a function of log rate for the PSNR delta, log rate as a function
# of PSNR for the rate delta), integrate both fits over the interval where the curves overlap, and divide
# the difference of the integrals by the interval's length. The package's method "cubic" is that fit.
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

CUBIC_POINTS = 4  # VCEG-M33's cubic needs four points per curve

NO_OVERLAP = ("undefined: the two curves share no PSNR range (one method's worst quality beats the "
              "other's best), so there is no interval to average the rate gap over")


def _delta(measure: str, rate_ref: Sequence[float], psnr_ref: Sequence[float], rate_test: Sequence[float],
           psnr_test: Sequence[float]) -> float:
    """`bjontegaard.<measure>` on checked curves, each sorted along the axis the delta integrates over.

    Curves of fewer than CUBIC_POINTS points cannot determine the cubic (numpy would warn and pick one
    of the infinitely many through them). Refusing them would leave evaluations at two or three targets
    without deltas, so both curves are then interpolated piecewise (the package's "pchip": through
    every point without overshooting between them, a straight line through two points).
    """
    import bjontegaard  # imports matplotlib.pyplot: paid only when a delta is computed, not at start

    arrays = [np.asarray(values, dtype=np.float64) for values in (rate_ref, psnr_ref, rate_test, psnr_test)]
    if len(arrays[0]) != len(arrays[1]) or len(arrays[2]) != len(arrays[3]):
        raise ValueError("each curve needs as many rates as PSNR values")
    if min(len(arrays[0]), len(arrays[2])) < 2:
        raise ValueError("each curve needs at least two points")
    if (arrays[0] <= 0).any() or (arrays[2] <= 0).any():
        raise ValueError("rates must be positive")
    axis = 0 if measure == "bd_psnr" else 1  # the package asserts its integration axis increases
    curves = []
    for rate, psnr in (arrays[:2], arrays[2:]):
        order = np.argsort((rate, psnr)[axis], kind="stable")
        curves += [rate[order], psnr[order]]
    method = "cubic" if min(len(arrays[0]), len(arrays[2])) >= CUBIC_POINTS else "pchip"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Curves do not overlap", UserWarning)  # the NaN says it: NO_OVERLAP
        # min_overlap=0: a partial overlap is averaged over as it is, without the package's warning
        return float(getattr(bjontegaard, measure)(*curves, method=method, require_matching_points=False,
                                                   min_overlap=0))


def bd_psnr(rate_ref: Sequence[float], psnr_ref: Sequence[float], rate_test: Sequence[float],
            psnr_test: Sequence[float]) -> float:
    """Average PSNR gain (dB) of the test curve over the reference at equal rate; positive is better
    (NaN where the rate ranges do not overlap)."""
    return _delta("bd_psnr", rate_ref, psnr_ref, rate_test, psnr_test)


def bd_rate(rate_ref: Sequence[float], psnr_ref: Sequence[float], rate_test: Sequence[float],
            psnr_test: Sequence[float]) -> float:
    """Average rate change (percent) of the test curve against the reference at equal PSNR; negative
    is better (-20 means 20% fewer bits for the same quality; NaN where the PSNR ranges do not overlap)."""
    return _delta("bd_rate", rate_ref, psnr_ref, rate_test, psnr_test)
