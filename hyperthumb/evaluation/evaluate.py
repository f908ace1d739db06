"""Rate-distortion evaluation: every method on every photo of every set at every target bpp.

A set is one source of photos (`val`, `kodak24`, ...): a method that helps one source and hurts
another must show it, so every figure is per set. Writes into the output folder:
- `<set>/results.csv`: one row per photo x method x target (RESULT_COLUMNS), appended as it goes;
- `<set>/summary.csv`, `<set>/summary.txt`: per method and target the means over the set's photos,
  and per method the Bjontegaard deltas against `bicubic-jpeg`;
- `summary.csv`, `summary.txt` and `summary.md` (Markdown tables): the same for all sets, one after
  the other;
- `per_photo_bd.csv`: every photo's BD-PSNR per method;
- `rd.html`: rate-distortion charts per set (the full-resolution references dashed), then the
  per-photo BD-PSNR of each method, one point per photo, grouped by set.

Two Bjontegaard figures per method: on the mean curve (each target's mean bpp and mean HR PSNR, the
points the summary lists and the charts draw) and the mean over photos of each photo's own delta,
which shows a method that hurts some photos while the mean curve hides it. The full-resolution
references (`jpeg-full`, ...) are not thumbnails; they stay out of both.
"""
from __future__ import annotations

import csv
import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence, Union

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from tqdm import tqdm

from hyperthumb.codec.image_io import list_images, load_image
from hyperthumb.evaluation.bjontegaard import NO_OVERLAP, bd_psnr, bd_rate
from hyperthumb.evaluation.charts import METRIC_LABELS, per_photo_figure, rate_distortion_figure
from hyperthumb.evaluation.dists import dists_available, dists_distances, dists_window
from hyperthumb.evaluation.methods import FIGURES, METHODS, measure, run_method
from hyperthumb.evaluation.metrics import lpips_available
from hyperthumb.zoo import BASELINE, REFERENCE_METHODS

RESULT_COLUMNS = ["image", "method", "target_bpp", "bpp", "psnr_hr", "psnr_hr_y", "psnr_lr", "ssim_hr",
                  "lpips_rgb", "lpips_y", "dists", "encode_s", "decode_s"]
MEAN_COLUMNS = RESULT_COLUMNS[3:]
DELTA_COLUMNS = ["bd_psnr_db", "bd_psnr_photo_db", "photos_below_baseline", "bd_rate_pct"]
SUMMARY_COLUMNS = ["set", "method", "target_bpp", "images", *MEAN_COLUMNS, *DELTA_COLUMNS]
PER_PHOTO_COLUMNS = ["set", "image", "method", "bd_psnr_db"]
CHART_METRICS = ["psnr_hr", "psnr_hr_y", "psnr_lr", "ssim_hr", "lpips_rgb", "lpips_y", "dists"]
_TABLE_COLUMNS = [("bpp", "bpp", 4), ("psnr_hr", "PSNR", 2), ("psnr_hr_y", "PSNR-Y", 2), ("psnr_lr", "thumb", 2),
                  ("ssim_hr", "SSIM", 4), ("lpips_rgb", "LPIPS", 4), ("lpips_y", "LPIPS-Y", 4), ("dists", "DISTS", 4),
                  ("encode_s", "enc s", 2), ("decode_s", "dec s", 2)]  # (key, title, decimals)
LPIPS_NOTE = ("LPIPS and DISTS not measured: LPIPS's AlexNet weights are not provisioned "
              "(run `python -m hyperthumb lpips-weights`); the LPIPS and DISTS columns are empty.")
DISTS_NOTE = ("DISTS not measured: its VGG16 weights are not provisioned "
              "(run `python -m hyperthumb lpips-weights`); the DISTS column is empty.")
_NUMBER_COLUMNS = set(RESULT_COLUMNS[2:])

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


def read_results(path: PathLike) -> list[dict]:
    """A results.csv back as rows of numbers (None where a figure was not measured, or where the file
    predates its column, as DISTS does in older evaluations)."""
    with Path(path).open(newline="") as f:
        return [{**dict.fromkeys(RESULT_COLUMNS),
                 **{k: (None if v == "" else float(v)) if k in _NUMBER_COLUMNS else v for k, v in row.items()}}
                for row in csv.DictReader(f)]


def _curve(rows: Iterable[dict]) -> tuple[list[float], list[float]]:
    """(bpp, HR PSNR) sorted by rate, one point per distinct rate: a model that saturates returns the
    same file for several targets, and a repeated point would only weigh that end of the fit."""
    points = sorted({row["bpp"]: row["psnr_hr"] for row in rows}.items())
    return [p[0] for p in points], [p[1] for p in points]


def _deltas(reference: Optional[tuple[list, list]], test: tuple[list, list]) -> tuple[Optional[float], ...]:
    """(BD-PSNR dB, BD-rate %) of `test` against `reference`; None where they cannot be computed."""
    if reference is None or min(len(reference[0]), len(test[0])) < 2:
        return None, None
    return tuple(None if math.isnan(v) else v for v in (bd_psnr(*reference, *test), bd_rate(*reference, *test)))


def per_photo_deltas(results: Sequence[dict], baseline: str = BASELINE) -> list[dict]:
    """Each photo's BD-PSNR against `baseline` on that photo, per compared (non-reference) method."""
    curves: dict[tuple[str, str], list[dict]] = {}
    for row in results:
        curves.setdefault((row["image"], row["method"]), []).append(row)
    rows = []
    for (image, method), points in curves.items():
        if method in REFERENCE_METHODS or (image, baseline) not in curves:
            continue
        delta = _deltas(_curve(curves[(image, baseline)]), _curve(points))[0]
        rows.append({"image": image, "method": method, "bd_psnr_db": delta})
    return rows


def summarize(results: Sequence[dict], baseline: str = BASELINE) -> list[dict]:
    """Mean figures per method and target, with each method's Bjontegaard deltas against `baseline`
    (None where the baseline was not run, the curves do not overlap, or the method is a reference)."""
    groups: dict[tuple[str, float], list[dict]] = {}
    for row in results:
        groups.setdefault((row["method"], row["target_bpp"]), []).append(row)
    summary = []
    for (method, target), rows in groups.items():
        means = {k: (None if any(r[k] is None for r in rows) else float(np.mean([r[k] for r in rows])))
                 for k in MEAN_COLUMNS}
        summary.append({"method": method, "target_bpp": target, "images": len(rows), **means})
    curves = {method: _curve(row for row in summary if row["method"] == method)
              for method in {row["method"] for row in summary}}
    photo_deltas: dict[str, list[float]] = {}
    for row in per_photo_deltas(results, baseline):
        if row["bd_psnr_db"] is not None:
            photo_deltas.setdefault(row["method"], []).append(row["bd_psnr_db"])
    for row in summary:
        method = row["method"]
        compared = method not in REFERENCE_METHODS
        row["bd_psnr_db"], row["bd_rate_pct"] = _deltas(curves.get(baseline), curves[method]) if compared else (None, None)
        deltas = photo_deltas.get(method)
        row["bd_psnr_photo_db"] = float(np.mean(deltas)) if deltas else None
        row["photos_below_baseline"] = sum(d < 0 for d in deltas) if deltas else None
    return summary


def format_summary(summary: Sequence[dict], notes: Sequence[str] = (), baseline: str = BASELINE,
                   title: Optional[str] = None) -> str:
    """The summary as a fixed-width text table, then the deltas per method, then the notes."""
    def cell(value, digits: int) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    header = f"{'method':<16}{'target':>7}" + "".join(f"{title_:>9}" for _, title_, _ in _TABLE_COLUMNS)
    lines = ([title, ""] if title else []) + [header, "-" * len(header)]
    for row in summary:
        lines.append(f"{row['method']:<16}{row['target_bpp']:>7.3f}"
                     + "".join(f"{cell(row[key], digits):>9}" for key, _, digits in _TABLE_COLUMNS))
    lines.append("")
    lines.append(f"Bjontegaard deltas against {baseline} (HR PSNR): on the mean curve over photos, and the mean "
                 "of each photo's own delta:")
    per_method = {row["method"]: row for row in summary if row["method"] not in REFERENCE_METHODS}
    for method, row in per_method.items():
        below = "" if row["photos_below_baseline"] is None else f"   photos below {baseline}: {row['photos_below_baseline']}"
        lines.append(f"  {method:<16} BD-PSNR {cell(row['bd_psnr_db'], 3):>7} dB   per photo "
                     f"{cell(row['bd_psnr_photo_db'], 3):>7} dB   BD-rate {cell(row['bd_rate_pct'], 1):>6} %{below}")
    if any(row["bd_rate_pct"] is None for row in per_method.values()):
        lines.append(f"  BD-rate '-': {NO_OVERLAP}.")
    if any(row["method"] in REFERENCE_METHODS for row in summary):
        lines.append(f"  {', '.join(REFERENCE_METHODS)}: the full-resolution photo in that format, a reference "
                     "outside the deltas.")
    lines.extend(["", *notes] if notes else [])
    return "\n".join(lines) + "\n"


def markdown_summary(summary: Sequence[dict], baseline: str = BASELINE) -> str:
    """One set's summary as Markdown: the figures per method and target, then the deltas per method."""
    def cell(value, digits: int) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    columns = [("bpp", "bpp", 3), ("psnr_hr", "HR PSNR", 2), ("psnr_lr", "thumb PSNR", 2), ("ssim_hr", "SSIM", 4),
               ("lpips_rgb", "LPIPS-RGB", 3), ("lpips_y", "LPIPS-Y", 3), ("dists", "DISTS", 3)]
    lines = ["| method | target | " + " | ".join(title for _, title, _ in columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    lines += [f"| {row['method']} | {row['target_bpp']:g} | "
              + " | ".join(cell(row[key], digits) for key, _, digits in columns) + " |" for row in summary]
    lines += ["", f"| method | BD-PSNR vs {baseline}, mean curve | mean of per-photo BD-PSNR | photos below "
                  f"{baseline} | BD-rate |", "|---|---|---|---|---|"]
    for method, row in {row["method"]: row for row in summary if row["method"] not in REFERENCE_METHODS}.items():
        lines.append(f"| {method} | {cell(row['bd_psnr_db'], 2)} dB | {cell(row['bd_psnr_photo_db'], 2)} dB | "
                     f"{'-' if row['photos_below_baseline'] is None else row['photos_below_baseline']} of "
                     f"{row['images']} | {cell(row['bd_rate_pct'], 1)} % |")
    return "\n".join(lines) + "\n"


def write_charts(summaries: Mapping[str, Sequence[dict]], photo_deltas: Sequence[dict], path: Path) -> None:
    """Per set one rate-distortion chart per metric, then the per-photo deltas, on one self-contained
    page (plotly.js inlined once)."""
    figures: list[go.Figure] = []
    for name, summary in summaries.items():
        figures += [rate_distortion_figure(summary, metric, title=f"{name}: {METRIC_LABELS[metric]} against bpp, "
                                                                  f"mean over {summary[0]['images']} photos")
                    for metric in CHART_METRICS if any(row[metric] is not None for row in summary)]
    if photo_deltas:
        figures.append(per_photo_figure(photo_deltas, BASELINE))
    parts = [figure.to_html(full_html=False, include_plotlyjs=index == 0) for index, figure in enumerate(figures)]
    path.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'><title>HyperThumb rate-distortion"
                    "</title></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def _evaluate_photo(path: Path, targets: Sequence[float], methods: Sequence[str], max_side: Optional[int],
                    device: Optional[str], with_lpips: bool, weights: Optional[str],
                    threads: Optional[int] = None, with_dists: bool = True) -> list[dict]:
    """Every method at every target on one photo: the unit of work of a job. DISTS comes last, for all
    the restorations at once against the photo's features computed once (see `dists_distances`)."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    photo = _shrink(load_image(path), max_side)
    rows, windows = [], []
    for method in methods:
        for target in targets:
            result = run_method(method, photo, target, device, weights)
            rows.append({"image": path.name, "method": method, "target_bpp": target,
                         **measure(photo, result, with_lpips, figures=[f for f in FIGURES if f != "dists"])})
            windows.append(dists_window(result.restored))  # the part DISTS reads, not the whole photo
    distances = dists_distances(dists_window(photo), windows, max_pixels=None) if with_lpips and with_dists else None
    for row, distance in zip(rows, distances or []):
        row["dists"] = distance
    return rows


def _reused_rows(reuse: Sequence[PathLike], name: str, images: set[str], targets: Sequence[float],
                 methods: Sequence[str]) -> list[dict]:
    """Rows of earlier evaluations of this set for the methods not run now (same photos and targets);
    where several folders hold the same row, the first one's."""
    rows: dict[tuple, dict] = {}
    for folder in reuse:
        path = Path(folder) / name / "results.csv"
        if not path.is_file():
            continue
        for row in read_results(path):
            if row["method"] not in methods and row["image"] in images and row["target_bpp"] in targets:
                rows.setdefault((row["image"], row["method"], row["target_bpp"]), row)
    return list(rows.values())


def evaluate(sets: Mapping[str, Sequence[PathLike]], targets: Sequence[float], out: PathLike,
             methods: Sequence[str] = METHODS, max_side: Optional[int] = None, device: Optional[str] = None,
             jobs: int = 1, weights: Optional[PathLike] = None, reuse: Sequence[PathLike] = (),
             with_dists: bool = True) -> str:
    """Runs the evaluation of each named set (photos or folders), writes the output folder and returns
    the summary text.

    `weights` is a folder of checkpoint folders to evaluate instead of the default ones. `reuse` lists
    earlier evaluations' output folders whose rows, for the methods not run now, join this one: the
    baselines and references do not depend on the checkpoints, so comparing new checkpoints need not
    redo them, and evaluations run apart (even with no method run now) summarise as one. `jobs` > 1
    evaluates that many photos at once in separate processes (one torch thread each), which uses a
    multi-core CPU better than one process's threads on these small models. `with_dists` False leaves
    DISTS out, the slowest figure (about 10 s per megapixel per method and target on one CPU thread).
    """
    targets = [float(t) for t in targets]
    paths = {name: photo_paths(inputs) for name, inputs in sets.items()}
    out = Path(out)
    with_lpips = lpips_available()
    if not with_lpips:
        notes = [LPIPS_NOTE]
    else:
        notes = [] if not with_dists or dists_available() else [DISTS_NOTE]
    for note in notes:
        tqdm.write(note)
    results: dict[str, list[dict]] = {}
    files, writers = {}, {}
    for name, set_paths in paths.items():
        (out / name).mkdir(parents=True, exist_ok=True)
        files[name] = (out / name / "results.csv").open("w", newline="")
        writers[name] = csv.DictWriter(files[name], fieldnames=RESULT_COLUMNS)
        writers[name].writeheader()
        results[name] = []
        reused = _reused_rows(reuse, name, {p.name for p in set_paths}, targets, methods)
        results[name].extend(reused)
        writers[name].writerows(_csv_row(row, RESULT_COLUMNS) for row in reused)
    work = [(name, path) for name, set_paths in paths.items() for path in set_paths]
    weights = None if weights is None else str(weights)
    try:
        with tqdm(total=len(work) * len(methods) * len(targets), unit="run", dynamic_ncols=True) as bar:
            def record(name: str, rows: list[dict]) -> None:
                results[name].extend(rows)
                writers[name].writerows(_csv_row(row, RESULT_COLUMNS) for row in rows)
                files[name].flush()
                bar.update(len(rows))

            if jobs > 1:
                context = multiprocessing.get_context("spawn")  # fork after torch started threads can hang
                with ProcessPoolExecutor(jobs, mp_context=context) as pool:
                    pending = [(name, pool.submit(_evaluate_photo, path, targets, methods, max_side, device,
                                                  with_lpips, weights, 1, with_dists)) for name, path in work]
                    for name, future in pending:
                        record(name, future.result())
            else:
                for name, path in work:
                    bar.set_description(f"{name}/{path.name}")
                    record(name, _evaluate_photo(path, targets, methods, max_side, device, with_lpips, weights,
                                                  with_dists=with_dists))
    finally:
        for f in files.values():
            f.close()
    summaries, photo_deltas, texts, markdown = {}, [], [], []
    for name, rows in results.items():
        summary = [{"set": name, **row} for row in summarize(rows)]
        summaries[name] = summary
        photo_deltas += [{"set": name, **row} for row in per_photo_deltas(rows)]
        _write_csv(out / name / "summary.csv", SUMMARY_COLUMNS, summary)
        text = format_summary(summary, notes, title=f"Set {name}: {len(paths[name])} photos")
        (out / name / "summary.txt").write_text(text)
        texts.append(text)
        markdown += [f"### {name} ({len(paths[name])} photos)", "", markdown_summary(summary)]
    _write_csv(out / "summary.csv", SUMMARY_COLUMNS, [row for summary in summaries.values() for row in summary])
    _write_csv(out / "per_photo_bd.csv", PER_PHOTO_COLUMNS, photo_deltas)
    text = "\n".join(texts)
    (out / "summary.txt").write_text(text)
    (out / "summary.md").write_text("\n".join(markdown))
    write_charts(summaries, photo_deltas, out / "rd.html")
    return text
