"""Plotly figures shared by the app, `evaluate` and `curves`: one colour per method, always."""
from __future__ import annotations

from typing import Iterable, Sequence

import plotly.graph_objects as go

from hyperthumb.evaluation.photo_curves import PLAIN_SR, UPSCALED
from hyperthumb.zoo import BASELINE, METHODS

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
    """rows: dicts with `method`, `bpp` and `metric`; one line per method, sorted by bpp."""
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



# The photo-curves charts (evaluation.photo_curves): words a photographer knows, one line per way
# of keeping the photo, each learned encoder with its own marker so that coinciding lines are told apart.
_ENCODER_SYMBOLS = ("circle", "diamond", "square", "triangle-up")
CLOSENESS = "PSNR in dB (higher is closer)"


def curve_label(curve: str) -> str:
    """What a curve of `photo_curves` stands for, in plain words."""
    if curve.endswith(UPSCALED):
        method = METHODS[curve[:-len(UPSCALED)]]
        return f"{METHODS[method.decoder_for or method.name].label} thumbnail, only upscaled"
    if curve == BASELINE:
        return "plain JPEG thumbnail, only upscaled"
    if curve == PLAIN_SR:
        return "plain JPEG thumbnail, restored by a decoder"
    if METHODS[curve].dashed:
        return "the whole photo as " + METHODS[curve].label.replace("full-size ", "")
    method = METHODS[curve]
    if method.decoder_for:
        return f"{METHODS[method.decoder_for].label} thumbnail, restored by its {method.decoder} decoder"
    return f"{method.label} thumbnail, restored"


def _kilobytes(bpp: float, pixels: int) -> float:
    return bpp * pixels / 8 / 1000


def photo_curves_figure(rows: Iterable[dict], curves: Sequence[str], learned: Sequence[str], pixels: int,
                        title: str, marks: Iterable[dict] = ()) -> go.Figure:
    """`curves` of `rows` (photo_curves.curve_rows) against the file size they would give the whole
    photo (`pixels`), with `marks` ({"method", "bpp", "psnr_hr"}) as stars on their encoder's line."""
    rows = [row for row in rows if row["method"] in curves and row.get("psnr_hr") is not None]
    figure = go.Figure()
    for curve in curves:
        points = sorted((row for row in rows if row["method"] == curve), key=lambda r: r["bpp"])
        if not points:
            continue
        base = curve[:-len(UPSCALED)] if curve.endswith(UPSCALED) else curve
        symbol = _ENCODER_SYMBOLS[learned.index(base) % len(_ENCODER_SYMBOLS)] if base in learned else "circle"
        dash = "dash" if METHODS[base].dashed else "dot" if curve.endswith(UPSCALED) or curve == BASELINE else "solid"
        label = curve_label(curve)
        figure.add_trace(go.Scatter(
            x=[_kilobytes(p["bpp"], pixels) for p in points], y=[p["psnr_hr"] for p in points],
            customdata=[p["bpp"] for p in points], mode="lines+markers", name=label,
            line={"color": METHOD_COLOURS.get(base), "dash": dash}, marker={"symbol": symbol, "size": 9},
            hovertemplate=f"{label}<br>%{{x:.1f}} KB (%{{customdata:.3f}} bpp)<br>%{{y:.2f}} dB<extra></extra>"))
    for index, mark in enumerate(marks):  # the later stars smaller, so that one never hides another
        figure.add_trace(go.Scatter(
            x=[_kilobytes(mark["bpp"], pixels)], y=[mark["psnr_hr"]], mode="markers",
            name=f"{METHODS[mark['method']].label}: your setting",
            marker={"symbol": "star", "size": 20 - 6 * index, "color": METHOD_COLOURS.get(mark["method"], "black"),
                    "line": {"width": 1, "color": "black"}},
            hovertemplate="your setting<br>%{x:.1f} KB<br>%{y:.2f} dB<extra></extra>"))
    figure.update_layout(title={"text": title, "font": {"size": 13}}, template="plotly_white", height=520,
                         xaxis_title="file size for your whole photo (KB)", yaxis_title=CLOSENESS,
                         legend={"orientation": "h", "y": -0.2, "x": 0, "font": {"size": 11}},
                         margin={"l": 50, "r": 10, "t": 70})
    return figure
