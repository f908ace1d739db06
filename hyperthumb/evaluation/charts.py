"""Plotly figures shared by the app, `evaluate` and `curves`: one colour per method, always."""
from __future__ import annotations

from typing import Iterable

import plotly.graph_objects as go

from hyperthumb.zoo import METHODS

METHOD_COLOURS = {name: method.colour for name, method in METHODS.items()}
# Full-resolution references: drawn dashed, a different kind of result.
DASHED_METHODS = {name for name, method in METHODS.items() if method.dashed}
METRIC_LABELS = {
    "psnr_hr": "HR PSNR (dB)", "psnr_hr_y": "HR PSNR, Y (dB)", "psnr_lr": "thumbnail PSNR (dB)",
    "ssim_hr": "HR SSIM", "lpips_rgb": "LPIPS-RGB", "lpips_y": "LPIPS-Y", "dists": "DISTS (lower is better)",
    "bpp": "bpp",
}


def rate_distortion_figure(rows: Iterable[dict], metric: str = "psnr_hr",
                           title: str = "Rate-distortion") -> go.Figure:
    """rows: dicts with `method`, `bpp` and `metric`; one line per method, sorted by bpp. Stars for
    the results a user is looking at come from `add_result_marks`."""
    by_method: dict[str, list[dict]] = {}
    for row in rows:
        if row.get(metric) is not None:
            by_method.setdefault(row["method"], []).append(row)
    figure = go.Figure()
    for method, points in by_method.items():
        points = sorted(points, key=lambda r: r["bpp"])
        figure.add_trace(go.Scatter(
            x=[p["bpp"] for p in points], y=[p[metric] for p in points], mode="lines+markers", name=method,
            line={"color": METHOD_COLOURS.get(method), "dash": "dash" if method in DASHED_METHODS else "solid"},
            hovertemplate=f"{method}<br>%{{x:.3f}} bpp<br>%{{y:.3f}}<extra></extra>"))
    figure.update_layout(title=title, xaxis_title="bits per HR pixel (bpp)",
                         yaxis_title=METRIC_LABELS.get(metric, metric), template="plotly_white",
                         legend={"orientation": "h", "y": -0.2})
    return figure


def add_result_marks(figure: go.Figure, marks: Iterable[dict], metric: str = "psnr_hr",
                     label: str = "this result") -> go.Figure:
    """marks: dicts with `method`, `bpp` and `metric`; one star each, named `<method>: <label>`, so
    several shown results (one per method) each get their own mark in their method's colour."""
    for mark in marks:
        figure.add_trace(go.Scatter(
            x=[mark["bpp"]], y=[mark[metric]], mode="markers", name=f"{mark['method']}: {label}",
            marker={"symbol": "star", "size": 16, "color": METHOD_COLOURS.get(mark["method"], "black"),
                    "line": {"width": 1, "color": "black"}},
            hovertemplate=f"{mark['method']}: {label}<br>%{{x:.4f}} bpp<br>%{{y:.2f}}<extra></extra>"))
    return figure


def per_photo_figure(rows: Iterable[dict], baseline: str) -> go.Figure:
    """rows: dicts with `set`, `image`, `method`, `bd_psnr_db`; one point per photo, grouped by set
    along x and offset per method, so one photo that a method makes worse stands out below zero."""
    rows = [row for row in rows if row["bd_psnr_db"] is not None]
    sets = list(dict.fromkeys(row["set"] for row in rows))
    methods = list(dict.fromkeys(row["method"] for row in rows))
    figure = go.Figure()
    for index, method in enumerate(methods):
        points = [row for row in rows if row["method"] == method]
        offset = (index - (len(methods) - 1) / 2) * 0.8 / max(len(methods), 1)
        figure.add_trace(go.Scatter(
            x=[sets.index(p["set"]) + offset for p in points], y=[p["bd_psnr_db"] for p in points],
            mode="markers", name=method, marker={"color": METHOD_COLOURS.get(method), "size": 6, "opacity": 0.7},
            text=[f"{p['set']}/{p['image']}" for p in points],
            hovertemplate=f"{method}<br>%{{text}}<br>BD-PSNR %{{y:.2f}} dB<extra></extra>"))
    figure.add_hline(y=0, line={"color": METHOD_COLOURS.get(baseline, "black"), "dash": "dot"})
    figure.update_layout(title=f"BD-PSNR against {baseline} per photo (above 0: better than {baseline})",
                         xaxis={"tickvals": list(range(len(sets))), "ticktext": sets, "title": "set"},
                         yaxis_title="BD-PSNR (dB)", template="plotly_white", legend={"orientation": "h", "y": -0.2})
    return figure

