"""Training curves of several runs on one page, as the encoder study drew them: each validation
figure against steps (left column) and against wall time (right column), one colour per run."""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Optional, Sequence, Union

import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hyperthumb.evaluation.charts import METHOD_COLOURS, METRIC_LABELS
from hyperthumb.training.train import LOG_NAME

CURVE_METRICS = ["bpp", "psnr_hr", "psnr_lr", "lpips_rgb", "lpips_y"]
# (log column, axis label, divisor)
X_AXES = [("step", "training steps", 1.0), ("seconds", "training wall time (minutes)", 60.0)]


def read_log(folder: Union[str, os.PathLike]) -> list[dict[str, Optional[float]]]:
    """The rows of a run's train_log.csv as numbers (None where a figure was not measured)."""
    path = Path(folder) / LOG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: is {folder} a training folder?")
    with path.open(newline="") as f:
        return [{k: (float(v) if v else None) for k, v in row.items()} for row in csv.DictReader(f)]


def curves_figure(runs: dict[str, list[dict]]) -> go.Figure:
    """runs: name -> log rows. One row of panels per metric; steps left, minutes right."""
    figure = make_subplots(rows=len(CURVE_METRICS), cols=len(X_AXES), shared_xaxes="columns",
                           vertical_spacing=0.04, horizontal_spacing=0.08,
                           column_titles=[f"against {label}" for _, label, _ in X_AXES])
    fallback = iter(px.colors.qualitative.Plotly)
    for name, rows in runs.items():
        colour = METHOD_COLOURS.get(name) or next(fallback)
        for row_index, metric in enumerate(CURVE_METRICS, start=1):
            points = [r for r in rows if r.get(metric) is not None]
            for col_index, (x_key, _, divisor) in enumerate(X_AXES, start=1):
                figure.add_trace(go.Scatter(
                    x=[p[x_key] / divisor for p in points], y=[p[metric] for p in points], mode="lines+markers",
                    name=name, legendgroup=name, showlegend=row_index == col_index == 1,
                    line={"color": colour}, hovertemplate=f"{name}<br>%{{x}}<br>%{{y:.4f}}<extra></extra>"),
                    row=row_index, col=col_index)
            figure.update_yaxes(title_text=METRIC_LABELS[metric], row=row_index, col=1)
    for col_index, (_, label, _) in enumerate(X_AXES, start=1):
        figure.update_xaxes(title_text=label, row=len(CURVE_METRICS), col=col_index)
    figure.update_layout(title="Validation during training", template="plotly_white",
                         height=260 * len(CURVE_METRICS), legend={"orientation": "h", "y": 1.04})
    return figure


def write_curves(folders: Sequence[Union[str, os.PathLike]], output: Union[str, os.PathLike]) -> Path:
    """Draws the logs of the training folders (named by folder) into a self-contained HTML page."""
    runs = {Path(folder).name: read_log(folder) for folder in folders}
    output = Path(output)
    curves_figure(runs).write_html(output, include_plotlyjs=True)
    return output
