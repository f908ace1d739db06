"""The study's results: which method people prefer, and how sure that is.

Bradley-Terry scores (a tie counts half a win to each side; fitted by choix) with bootstrap
confidence intervals (scipy.stats.bootstrap over the votes), the win-rate matrix, votes per pair,
agreement between annotators, and how often people agree with PSNR and LPIPS.
"""
from __future__ import annotations

import itertools
import math
from typing import Iterable, Optional, Sequence

import choix
import numpy as np
import plotly.graph_objects as go
from scipy.stats import bootstrap

from hyperthumb.evaluation.charts import METHOD_COLOURS


def _outcomes(votes: Sequence[dict], methods: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(left method index, right method index, the left side's share of the win: 1, 0.5 or 0) per vote."""
    index = {m: i for i, m in enumerate(methods)}
    left = np.array([index[v["method_left"]] for v in votes], int)
    right = np.array([index[v["method_right"]] for v in votes], int)
    share = np.array([0.5 if v["winner"] is None else float(v["winner"] == v["method_left"]) for v in votes])
    return left, right, share


def _win_matrix(outcomes: tuple[np.ndarray, np.ndarray, np.ndarray], size: int,
                rows: Optional[np.ndarray] = None) -> np.ndarray:
    """wins[i, j]: votes preferring method i over method j, a tie half to each (`rows`: a resampling)."""
    left, right, share = (part if rows is None else part[rows] for part in outcomes)
    wins = np.zeros((size, size))
    np.add.at(wins, (left, right), share)
    np.add.at(wins, (right, left), 1 - share)
    return wins


def bradley_terry(wins: np.ndarray, prior: float = 0.5) -> np.ndarray:
    """Log-strengths (mean 0) maximising the Bradley-Terry likelihood of `wins`.

    choix's iterative Luce spectral ranking reaches the maximum-likelihood estimate from a dense
    matrix of wins, so half wins (ties) enter as they are. `prior` adds that many wins each way to
    every pair, which keeps a method that never lost (common in a bootstrap sample) at a finite
    score; without it such a method has no maximum and choix raises.
    """
    scores = choix.ilsr_pairwise_dense(wins + prior * (1 - np.eye(len(wins))))
    return scores - scores.mean()


def bootstrap_scores(votes: Sequence[dict], methods: Sequence[str], samples: int = 1000, seed: int = 0,
                     prior: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores, 2.5 % and 97.5 % percentiles of the scores over `samples` resamplings of the votes)."""
    outcomes, size = _outcomes(votes, methods), len(methods)
    scores = bradley_terry(_win_matrix(outcomes, size), prior)
    if len(votes) < 2:  # scipy resamples two votes or more; a single vote only ever resamples to itself
        return scores, scores, scores

    def resampled_scores(rows: np.ndarray) -> np.ndarray:
        return bradley_terry(_win_matrix(outcomes, size, rows), prior)

    interval = bootstrap((np.arange(len(votes)),), resampled_scores, vectorized=False, n_resamples=samples,
                         method="percentile", confidence_level=0.95, rng=seed).confidence_interval
    return scores, interval.low, interval.high


def _percent(part: float, whole: float) -> Optional[int]:
    return round(100 * part / whole) if whole else None


def _metric_agreement(votes: Sequence[dict], metric: str, higher_is_better: bool) -> dict:
    """How often people preferred the side the metric calls better, and the correlation of the
    vote (+1 left, 0 same, -1 right) with the metric's advantage of the left side."""
    pairs = [(v, v[f"{metric}_left"] - v[f"{metric}_right"]) for v in votes
             if v[f"{metric}_left"] is not None and v[f"{metric}_right"] is not None]
    if not pairs:
        return {"votes": 0, "agree_pct": None, "correlation": None}
    sign = 1 if higher_is_better else -1
    decided = [(v, d) for v, d in pairs if v["choice"] != "same" and d != 0]
    agree = sum((v["choice"] == "left") == (sign * d > 0) for v, d in decided)
    preference = np.array([{"left": 1, "same": 0, "right": -1}[v["choice"]] for v, _ in pairs], float)
    advantage = np.array([sign * d for _, d in pairs])
    varied = preference.std() > 0 and advantage.std() > 0
    return {"votes": len(pairs), "agree_pct": _percent(agree, len(decided)),
            "correlation": round(float(np.corrcoef(preference, advantage)[0, 1]), 2) if varied else None}


def _agreement(votes: Sequence[dict]) -> dict:
    """Among conditions (crop, pair, bpp) judged by several annotators, the share of annotator pairs
    that gave the same verdict (the same method, or both 'same')."""
    verdicts: dict[tuple, dict[str, Optional[str]]] = {}
    for vote in votes:
        key = (vote["crop"], *sorted((vote["method_left"], vote["method_right"])), vote["bpp"])
        verdicts.setdefault(key, {})[vote["annotator"]] = vote["winner"]
    shared = [list(v.values()) for v in verdicts.values() if len(v) > 1]
    pairs = [(a, b) for judged in shared for a, b in itertools.combinations(judged, 2)]
    return {"conditions": len(shared), "annotator_pairs": len(pairs),
            "agree_pct": _percent(sum(a == b for a, b in pairs), len(pairs))}


def results(votes: Sequence[dict], methods: Sequence[str], flagged: Iterable[str] = (), samples: int = 1000,
            seed: int = 0) -> dict:
    """The study's aggregate over `votes` (VoteStore rows): practice votes and the votes of
    `flagged` annotators are left out and counted. Percentages are whole numbers, scores log-odds
    (a difference of 1: e to 1 odds of being preferred)."""
    flagged = set(flagged)
    counted = [v for v in votes if not v["practice"] and v["annotator"] not in flagged]
    summary: dict = {"votes": len(counted), "annotators": len({v["annotator"] for v in counted}),
                     "flagged_annotators": sorted(flagged),
                     "excluded_votes": sum(1 for v in votes if not v["practice"]) - len(counted),
                     "median_seconds": round(float(np.median([v["seconds"] for v in counted])), 1) if counted else None,
                     "scores": [], "win_rates": {"methods": list(methods), "percent": []}, "pairs": []}
    if not counted:
        return summary
    bpps = sorted({v["bpp"] for v in counted})
    for bpp in [None, *bpps]:
        subset = [v for v in counted if bpp is None or v["bpp"] == bpp]
        scores, low, high = bootstrap_scores(subset, methods, samples, seed)
        summary["scores"] += [{"method": m, "bpp": bpp, "score": round(float(s), 2), "low": round(float(lo), 2),
                               "high": round(float(hi), 2), "votes": sum(m in (v["method_left"], v["method_right"])
                                                                         for v in subset)}
                              for m, s, lo, hi in zip(methods, scores, low, high)]
    wins = _win_matrix(_outcomes(counted, methods), len(methods))
    games = wins + wins.T
    summary["win_rates"]["percent"] = [[_percent(wins[i, j], games[i, j]) for j in range(len(methods))]
                                       for i in range(len(methods))]
    for (a, b), bpp in itertools.product(itertools.combinations(methods, 2), bpps):
        subset = [v for v in counted if v["bpp"] == bpp and {v["method_left"], v["method_right"]} == {a, b}]
        summary["pairs"].append({"method_a": a, "method_b": b, "bpp": bpp, "votes": len(subset),
                                 "a_preferred": sum(v["winner"] == a for v in subset),
                                 "b_preferred": sum(v["winner"] == b for v in subset),
                                 "same": sum(v["winner"] is None for v in subset)})
    summary["agreement"] = _agreement(counted)
    summary["metrics"] = {"psnr": _metric_agreement(counted, "psnr", True),
                          "lpips": _metric_agreement(counted, "lpips", False)}
    return summary


def preference_percent(score: float) -> float:
    """A score as the chance, in %, that people prefer the method to one of score 0 (the methods' mean)."""
    return 100 / (1 + math.exp(-score))


def scores_figure(summary: dict) -> go.Figure:
    """How often people preferred each method, as its Bradley-Terry score's chance of being preferred to
    an average method, with its 95 % interval: all bpp together, then per bpp."""
    figure = go.Figure()
    groups = list(dict.fromkeys("all sizes" if s["bpp"] is None else f"{s['bpp']:g} bpp" for s in summary["scores"]))
    for method in summary["win_rates"]["methods"]:
        rows = [s for s in summary["scores"] if s["method"] == method]
        shown, low, high = ([preference_percent(s[key]) for s in rows] for key in ("score", "low", "high"))
        figure.add_trace(go.Scatter(
            x=["all sizes" if s["bpp"] is None else f"{s['bpp']:g} bpp" for s in rows], y=shown,
            error_y={"type": "data", "symmetric": False, "array": [h - p for h, p in zip(high, shown)],
                     "arrayminus": [p - lo for p, lo in zip(shown, low)]},
            mode="markers", name=method, marker={"color": METHOD_COLOURS.get(method), "size": 10},
            hovertemplate=f"{method}<br>%{{x}}: preferred %{{y:.0f}} % of the time<extra></extra>"))
    figure.add_hline(y=50, line={"color": "#888", "dash": "dot"})
    figure.update_layout(title=f"How often people preferred each method, with its uncertainty ({summary['votes']} "
                               "votes)", xaxis={"categoryorder": "array", "categoryarray": groups},
                         yaxis={"title": "preferred to an average method (%)", "range": [0, 100]},
                         scattermode="group", template="plotly_white", legend={"orientation": "h", "y": -0.2})
    return figure


def win_rate_figure(summary: dict) -> go.Figure:
    """The win-rate matrix: how often the row's method was preferred to the column's (a tie half)."""
    methods, percent = summary["win_rates"]["methods"], summary["win_rates"]["percent"]
    figure = go.Figure(go.Heatmap(
        z=percent, x=methods, y=methods, zmin=0, zmax=100, colorscale="RdBu",
        text=[["" if p is None else f"{p} %" for p in row] for row in percent], texttemplate="%{text}",
        hovertemplate="%{y} preferred to %{x}: %{z} %<extra></extra>"))
    figure.update_layout(title="How often the row's method was preferred to the column's", template="plotly_white",
                         yaxis={"autorange": "reversed"})
    return figure
