"""Rate-distortion evaluation: every method on every photo at every target bpp, against the baseline.

Writes into the output folder:
- `results.csv`: one row per image x method x target (RESULT_COLUMNS), appended as it goes;
- `summary.csv` and `summary.txt`: per method and target the means over images, and per method the
  Bjontegaard deltas against `bicubic-jpeg`;
- `rd.html`: interactive rate-distortion charts of those means, one per metric.

The Bjontegaard deltas are computed on the mean curve (each target's mean bpp and mean HR PSNR over
the images), the same points the summary lists and the charts draw, so every delta can be checked
against them. Per-image curves would share no rate axis where a model misses a target on some
photos, and four points per photo make each fit noisy.
"""
from __future__ import annotations

import csv
import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np
from PIL import Image
from tqdm import tqdm

from .bjontegaard import NO_OVERLAP, bd_psnr, bd_rate
from .charts import METRIC_LABELS, rate_distortion_figure
from .data import list_images
from .image_io import load_image
from .methods import BASELINE, METHODS, measure, run_method
from .metrics import lpips_available

RESULT_COLUMNS = ["image", "method", "target_bpp", "bpp", "psnr_hr", "psnr_hr_y", "psnr_lr", "ssim_hr",
                  "lpips_rgb", "lpips_y", "encode_s", "decode_s"]
MEAN_COLUMNS = RESULT_COLUMNS[3:]
SUMMARY_COLUMNS = ["method", "target_bpp", "images", *MEAN_COLUMNS, "bd_psnr_db", "bd_rate_pct"]
CHART_METRICS = ["psnr_hr", "psnr_hr_y", "psnr_lr", "ssim_hr", "lpips_rgb", "lpips_y"]
_TABLE_COLUMNS = [("bpp", "bpp", 4), ("psnr_hr", "PSNR", 2), ("psnr_hr_y", "PSNR-Y", 2), ("psnr_lr", "thumb", 2),
                  ("ssim_hr", "SSIM", 4), ("lpips_rgb", "LPIPS", 4), ("lpips_y", "LPIPS-Y", 4),
                  ("encode_s", "enc s", 2), ("decode_s", "dec s", 2)]  # (key, title, decimals)
LPIPS_NOTE = ("LPIPS not measured: its AlexNet weights are not provisioned "
              "(run `python -m hyperthumb lpips-weights`); the LPIPS columns are empty.")

PathLike = Union[str, os.PathLike]


def photo_paths(inputs: Iterable[PathLike]) -> list[Path]:
    """Files as given, folders expanded to the images inside them."""
    paths: list[Path] = []
    for item in map(Path, inputs):
        paths.extend(list_images(item) if item.is_dir() else [item])
    return paths


def _shrink(photo: Image.Image, max_side: Optional[int]) -> Image.Image:
    """Shrinks a photo so its longer side is at most `max_side`: keeps CPU evaluations affordable."""
    if max_side is None or max(photo.size) <= max_side:
        return photo
    factor = max_side / max(photo.size)
    return photo.resize((round(photo.width * factor), round(photo.height * factor)), Image.LANCZOS)


def _csv_row(row: dict, columns: Sequence[str]) -> dict:
    return {k: ("" if row.get(k) is None else row[k]) for k in columns}


def _write_csv(path: Path, columns: Sequence[str], rows: Iterable[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(_csv_row(row, columns) for row in rows)


def _deltas(reference: Optional[tuple[list, list]], test: tuple[list, list]) -> tuple[Optional[float], ...]:
    """(BD-PSNR dB, BD-rate %) of `test` against `reference`; None where they cannot be computed."""
    if reference is None or min(len(reference[0]), len(test[0])) < 2:
        return None, None
    return tuple(None if math.isnan(v) else v for v in (bd_psnr(*reference, *test), bd_rate(*reference, *test)))


def summarize(results: Sequence[dict], baseline: str = BASELINE) -> list[dict]:
    """Mean figures per method and target, with each method's BD-PSNR / BD-rate against `baseline`
    (None where the baseline was not run or the curves do not overlap)."""
    groups: dict[tuple[str, float], list[dict]] = {}
    for row in results:
        groups.setdefault((row["method"], row["target_bpp"]), []).append(row)
    summary = []
    for (method, target), rows in groups.items():
        means = {k: (None if any(r[k] is None for r in rows) else float(np.mean([r[k] for r in rows])))
                 for k in MEAN_COLUMNS}
        summary.append({"method": method, "target_bpp": target, "images": len(rows), **means})
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for row in summary:
        rates, psnrs = curves.setdefault(row["method"], ([], []))
        rates.append(row["bpp"])
        psnrs.append(row["psnr_hr"])
    deltas = {method: _deltas(curves.get(baseline), curve) for method, curve in curves.items()}
    for row in summary:
        row["bd_psnr_db"], row["bd_rate_pct"] = deltas[row["method"]]
    return summary


def format_summary(summary: Sequence[dict], notes: Sequence[str] = (), baseline: str = BASELINE) -> str:
    """The summary as a fixed-width text table, then the deltas per method, then the notes."""
    def cell(value, digits: int) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    header = f"{'method':<16}{'target':>7}" + "".join(f"{title:>9}" for _, title, _ in _TABLE_COLUMNS)
    lines = [header, "-" * len(header)]
    for row in summary:
        lines.append(f"{row['method']:<16}{row['target_bpp']:>7.3f}"
                     + "".join(f"{cell(row[key], digits):>9}" for key, _, digits in _TABLE_COLUMNS))
    lines.append("")
    lines.append(f"Bjontegaard deltas against {baseline} (HR PSNR, mean curve over images):")
    for method, row in {row["method"]: row for row in summary}.items():  # the deltas are per method
        lines.append(f"  {method:<16} BD-PSNR {cell(row['bd_psnr_db'], 3):>7} dB   "
                     f"BD-rate {cell(row['bd_rate_pct'], 1):>6} %")
    if any(row["bd_rate_pct"] is None for row in summary):
        lines.append(f"  BD-rate '-': {NO_OVERLAP}.")
    lines.extend(["", *notes] if notes else [])
    return "\n".join(lines) + "\n"


def write_charts(summary: Sequence[dict], path: Path) -> None:
    """One rate-distortion chart per metric on one self-contained page (plotly.js inlined once)."""
    figures = [rate_distortion_figure(summary, metric, title=f"{METRIC_LABELS[metric]} against bpp, mean over images")
               for metric in CHART_METRICS if any(row[metric] is not None for row in summary)]
    parts = [figure.to_html(full_html=False, include_plotlyjs=index == 0) for index, figure in enumerate(figures)]
    path.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'><title>HyperThumb rate-distortion"
                    "</title></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def _evaluate_photo(path: Path, targets: Sequence[float], methods: Sequence[str], max_side: Optional[int],
                    device: Optional[str], with_lpips: bool, threads: Optional[int] = None) -> list[dict]:
    """Every method at every target on one photo: the unit of work of a job."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    photo = _shrink(load_image(path), max_side)
    return [{"image": path.name, "method": method, "target_bpp": target,
             **measure(photo, run_method(method, photo, target, device), with_lpips)}
            for method in methods for target in targets]


def evaluate(inputs: Sequence[PathLike], targets: Sequence[float], out: PathLike,
             methods: Sequence[str] = METHODS, max_side: Optional[int] = None,
             device: Optional[str] = None, jobs: int = 1) -> str:
    """Runs the evaluation, writes the output folder and returns the summary text.

    `jobs` > 1 evaluates that many photos at once in separate processes (one torch thread each),
    which uses a multi-core CPU better than one process's intra-op threads on these small models.
    """
    paths = photo_paths(inputs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with_lpips = lpips_available()
    notes = [] if with_lpips else [LPIPS_NOTE]
    if not with_lpips:
        tqdm.write(LPIPS_NOTE)
    results = []
    with (out / "results.csv").open("w", newline="") as f, \
            tqdm(total=len(paths) * len(methods) * len(targets), unit="run", dynamic_ncols=True) as bar:
        writer = csv.DictWriter(f, fieldnames=RESULT_COLUMNS)
        writer.writeheader()

        def record(rows: list[dict]) -> None:
            results.extend(rows)
            writer.writerows(_csv_row(row, RESULT_COLUMNS) for row in rows)
            f.flush()
            bar.update(len(rows))

        if jobs > 1:
            context = multiprocessing.get_context("spawn")  # fork after torch started threads can hang
            with ProcessPoolExecutor(jobs, mp_context=context) as pool:
                pending = [pool.submit(_evaluate_photo, path, targets, methods, max_side, device, with_lpips, 1)
                           for path in paths]
                for future in pending:
                    record(future.result())
        else:
            for path in paths:
                bar.set_description(path.name)
                record(_evaluate_photo(path, targets, methods, max_side, device, with_lpips))
    summary = summarize(results)
    _write_csv(out / "summary.csv", SUMMARY_COLUMNS, summary)
    text = format_summary(summary, notes)
    (out / "summary.txt").write_text(text)
    write_charts(summary, out / "rd.html")
    return text
