"""The blind pairwise study: which method do people prefer at the same bpp?

    python -m hyperthumb study prepare PHOTOS... --bpp 0.1 0.2 0.3 --out DIR
    python -m hyperthumb study publish --repo OWNER/NAME

`prepare` encodes each photo with every study method at each bpp once, so a vote never waits for
a model: it keeps each thumbnail file (the reconstruction, in its stored form) and, per photo, a few
crops of its most detailed regions (where 4x reconstructions differ) as lossless PNGs, original and
each method's reconstruction at 100 % zoom, with their PSNR and LPIPS on that crop, in
`manifest.json`. A practice crop, a good reconstruction against a heavily blurred one, gives every
annotator a first trial with a known answer.

Trials are drawn least-voted first over (method pair, bpp), then crop, with a random left/right
order; votes live in `labels.VoteStore`. The results are Bradley-Terry scores (a tie counts half a
win to each side) with bootstrap confidence intervals, the win-rate matrix, votes per pair,
agreement between annotators, and how often people agree with PSNR and LPIPS.
"""
from __future__ import annotations

import itertools
import json
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence, Union

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageFilter

from .charts import METHOD_COLOURS
from .image_io import load_image
from .errors import HyperThumbError
from .labels import COLUMNS, IssuedTrial, VoteStore
from .methods import run_method
from .metrics import lpips_available, lpips_distance, psnr
from .registry import BASELINE, ENCODER_METHODS

STUDY_METHODS = (*ENCODER_METHODS, "bicubic-jpeg-sr", BASELINE)
STUDY_DIR_ENV = "HYPERTHUMB_STUDY_DIR"
MANIFEST = "manifest.json"
CROP_SIDE = 448  # within 384-512: a detailed region a person can inspect at 1:1 without scrolling
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"}
PRACTICE_GOOD, PRACTICE_BAD = "practice-good", "practice-degraded"


def _photo_paths(inputs: Iterable[Union[str, os.PathLike]]) -> list[Path]:
    paths: list[Path] = []
    for item in map(Path, inputs):
        paths += sorted(p for p in item.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES) if item.is_dir() else [item]
    if not paths:
        raise ValueError("no photos given")
    return paths


def detailed_boxes(photo: Image.Image, side: int, count: int, rng: random.Random) -> list[tuple[int, int, int, int]]:
    """`count` boxes of `side` pixels (less on a smaller photo), drawn at random among the most
    detailed quarter of candidate windows (sum of absolute neighbour differences), not overlapping
    where the photo has room."""
    side = min(side, photo.width, photo.height) // 4 * 4
    grey = np.asarray(photo.convert("L"), np.float64)
    detail = np.zeros_like(grey)
    detail[:, 1:] += np.abs(np.diff(grey, axis=1))
    detail[1:, :] += np.abs(np.diff(grey, axis=0))
    integral = np.pad(detail.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    stride = max(4, side // 4 // 4 * 4)
    candidates = []
    for top in range(0, photo.height - side + 1, stride):
        for left in range(0, photo.width - side + 1, stride):
            total = (integral[top + side, left + side] - integral[top, left + side] - integral[top + side, left]
                     + integral[top, left])
            candidates.append((total, (left, top, left + side, top + side)))
    candidates.sort(reverse=True)
    pool = [box for _, box in candidates[:max(count, len(candidates) // 4)]]
    rng.shuffle(pool)
    chosen: list[tuple[int, int, int, int]] = []
    for box in pool:
        if all(box[2] <= c[0] or c[2] <= box[0] or box[3] <= c[1] or c[3] <= box[1] for c in chosen):
            chosen.append(box)
        if len(chosen) == count:
            return chosen
    return chosen + [box for box in pool if box not in chosen][:count - len(chosen)]


def _save(image: Image.Image, folder: Path, relative: str) -> str:
    """PNG at zlib's default level: on a smooth reconstruction within 10 % of the smallest file
    (`optimize`) at a fifteenth of its time, which a user adding a photo waits for, crop by crop."""
    image.save(folder / relative)
    return relative


def _crop_figures(region: Image.Image, original: Image.Image, with_lpips: bool) -> dict:
    return {"psnr": round(psnr(region, original), 3),
            "lpips": round(lpips_distance(region, original), 4) if with_lpips else None}


def box_around(centre: tuple[float, float], size: tuple[int, int], side: int) -> tuple[int, int, int, int]:
    """The `side`-pixel box (less on a smaller photo) centred on `centre`, a point clicked on the
    photo, moved inside it where the point is near an edge."""
    side = min(side, *size) // 4 * 4
    left, top = (min(max(round(c - side / 2), 0), extent - side) for c, extent in zip(centre, size))
    return left, top, left + side, top + side


def new_manifest(methods: Sequence[str], bpps: Sequence[float], crop: int, crops_per_photo: int) -> dict:
    """An empty pool's manifest: what `encode_photo` encodes each photo with, and its crops' size."""
    return {"version": 1, "methods": list(methods), "bpps": [float(b) for b in bpps], "crop_side": crop,
            "crops_per_photo": crops_per_photo, "lpips": lpips_available(), "photos": [], "crops": [],
            "practice": None}


def encode_photo(manifest: dict, folder: Path, photo: Image.Image, name: str, stem: str,
                 boxes: Sequence[tuple[int, ...]],
                 device: Optional[str] = None, weights: Optional[Union[str, os.PathLike]] = None,
                 progress: Optional[Callable[..., object]] = None) -> list[dict]:
    """Encodes `photo` with each of the manifest's methods at each of its bpps into the pool folder
    `folder`: every thumbnail file, and the crops at `boxes` (the original and each reconstruction),
    their files named after `stem`; returns the crops' manifest entries. `progress(fraction,
    desc=...)` hears of each encoding (gradio's `gr.Progress` is such a callable)."""
    for sub in ("crops", "thumbnails"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    crops = []
    for index, box in enumerate(boxes):
        crop_id = f"{stem}-{index}"
        crops.append({"id": crop_id, "photo": name, "box": list(box),
                      "original": _save(photo.crop(box), folder, f"crops/{crop_id}.png"), "reconstructions": []})
    runs = list(itertools.product(manifest["methods"], manifest["bpps"]))
    for done, (method, bpp) in enumerate(runs):
        if progress is not None:  # gr.Progress is falsy (it has a length) until it tracks an iterable
            progress(done / len(runs), desc=f"Encoding with {method} at {bpp:g} bpp")
        result = run_method(method, photo, bpp, device=device, weights=weights)
        (folder / "thumbnails" / f"{stem}_{method}_{bpp:g}.jpg").write_bytes(result.jpeg)
        for entry in crops:
            region, original = result.restored.crop(entry["box"]), photo.crop(entry["box"])
            entry["reconstructions"].append({
                "method": method, "target_bpp": float(bpp), "bpp": round(result.bpp, 4),
                "image": _save(region, folder, f"crops/{entry['id']}_{method}_{bpp:g}.png"),
                **_crop_figures(region, original, manifest["lpips"])})
    return crops


def write_manifest(manifest: dict, folder: Path) -> Path:
    """Writes the manifest whole or not at all (a reader never sees half a file); returns its path."""
    path = folder / MANIFEST
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(manifest, indent=1))
    os.replace(partial, path)
    return path


def prepare(photos: Iterable[Union[str, os.PathLike]], bpps: Sequence[float], out: Union[str, os.PathLike],
            methods: Sequence[str] = STUDY_METHODS, crop: int = CROP_SIDE, crops_per_photo: int = 2, seed: int = 0,
            device: Optional[str] = None, weights: Optional[Union[str, os.PathLike]] = None) -> Path:
    """Builds a study pool in `out` and returns its manifest's path (see the module's docstring)."""
    out, rng = Path(out), random.Random(seed)
    manifest = new_manifest(methods, bpps, crop, crops_per_photo)
    for path in _photo_paths(photos):
        photo = load_image(path)
        manifest["photos"].append({"name": path.name, "size": list(photo.size)})
        boxes = detailed_boxes(photo, crop, crops_per_photo, rng)
        manifest["crops"] += encode_photo(manifest, out, photo, path.name, path.stem, boxes, device, weights)
    manifest["practice"] = _practice(manifest["crops"][0], out, manifest["lpips"])
    return write_manifest(manifest, out)


def _practice(entry: dict, out: Path, with_lpips: bool) -> dict:
    """The known-answer trial: the crop's best reconstruction (highest PSNR) against the same crop
    blurred and shrunk 8x, a difference nobody looking can miss."""
    original = Image.open(out / entry["original"]).convert("RGB")
    good = max(entry["reconstructions"], key=lambda r: r["psnr"])
    small = original.resize((max(1, original.width // 8), max(1, original.height // 8)), Image.BOX)
    degraded = small.resize(original.size, Image.NEAREST).filter(ImageFilter.GaussianBlur(2))
    return {"crop": entry["id"], "good": {**good, "method": PRACTICE_GOOD},
            "bad": {"method": PRACTICE_BAD, "image": _save(degraded, out, f"crops/{entry['id']}_practice.png"),
                    **_crop_figures(degraded, original, with_lpips)}}


@dataclass
class Trial:
    """What the page shows: the original crop and two sides, their methods known only to the server."""
    issued: IssuedTrial
    original: Path
    left: Path
    right: Path


class StudyPool:
    """A prepared pool: its manifest, the crops users added (`uploads`, a pool folder of the same
    methods and bpps), and the balanced drawing of trials over them all."""

    def __init__(self, folder: Union[str, os.PathLike], uploads: Optional[Union[str, os.PathLike]] = None):
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        self.methods: list[str] = self.manifest["methods"]
        self.bpps: list[float] = self.manifest["bpps"]
        # what photos added later are cut to (pools prepared before manifests said so used the default)
        self.crop_side: int = self.manifest.get("crop_side", CROP_SIDE)
        self.crops_per_photo: int = self.manifest.get("crops_per_photo", 2)
        self.crops: dict[str, dict] = {}
        self._folders: dict[str, Path] = {}
        self.add_crops(self.folder, self.manifest["crops"])
        self.uploads = Path(uploads) if uploads else None
        if self.uploads and (self.uploads / MANIFEST).is_file():
            added = read_manifest(self.uploads)
            if (added["methods"], added["bpps"]) != (self.methods, self.bpps):
                raise ValueError(f"the photos added in {self.uploads} were encoded with other methods or bpps than "
                                 f"the pool in {self.folder}: move them away, or set another folder for them")
            self.add_crops(self.uploads, added["crops"])

    def add_crops(self, folder: Path, entries: Sequence[dict]) -> None:
        """Makes crops prepared in `folder` drawable. Replaces the dictionaries rather than changing
        them, so that a trial drawn meanwhile in another thread sees the pool before or after."""
        self._folders = {**self._folders, **{entry["id"]: folder for entry in entries}}
        self.crops = {**self.crops, **{entry["id"]: entry for entry in entries}}

    def reconstruction(self, crop: str, method: str, bpp: float) -> dict:
        return next(r for r in self.crops[crop]["reconstructions"] if r["method"] == method and r["target_bpp"] == bpp)

    def conditions(self) -> list[tuple[str, str, float]]:
        """Every (method, method, bpp) a vote can compare, the methods in sorted order."""
        return [(*pair, bpp) for pair in itertools.combinations(sorted(self.methods), 2) for bpp in self.bpps]

    def draw(self, store: VoteStore, session: str, annotator: str, rng: random.Random,
             skipped: Optional[tuple[str, str, str, float]] = None) -> Trial:
        """The next trial for `session`: the practice trial if `annotator` has not had it, otherwise
        the least-voted condition, then its least-voted crop (ties at random), sides in random order.
        `skipped`, a (crop, method, method, bpp) just shown, is not drawn again unless it is all there is."""
        counts, crops = store.condition_counts(), list(self.crops)
        if self.manifest.get("practice") and not store.has_practiced(annotator):
            practice = self.manifest["practice"]
            crop, bpp, sides = practice["crop"], practice["good"]["target_bpp"], [practice["good"], practice["bad"]]
            rng.shuffle(sides)
            expected = "left" if sides[0] is practice["good"] else "right"
        else:
            def votes(condition: tuple[str, str, float]) -> int:
                return sum(counts.get((crop, *condition), 0) for crop in crops)

            open_crops = {condition: choices for condition in self.conditions()
                          if (choices := [crop for crop in crops if (crop, *condition) != skipped])}
            open_crops = open_crops or {condition: crops for condition in self.conditions()}  # nothing else to show
            fewest = min(map(votes, open_crops))
            condition = rng.choice([c for c in open_crops if votes(c) == fewest])
            fewest_crop = min(counts.get((crop, *condition), 0) for crop in open_crops[condition])
            crop = rng.choice([c for c in open_crops[condition] if counts.get((c, *condition), 0) == fewest_crop])
            *pair, bpp = condition
            rng.shuffle(pair)
            sides, expected = [self.reconstruction(crop, method, bpp) for method in pair], None
        issued = store.issue(session, annotator, crop, bpp, sides[0]["method"], sides[1]["method"], sides[0],
                             sides[1], practice=expected is not None, expected=expected)
        return Trial(issued, *self.trial_images(crop, bpp, sides[0]["method"], sides[1]["method"]))

    def trial_images(self, crop: str, bpp: float, method_left: str, method_right: str) -> list[Path]:
        """The original crop, then the left and the right side's image (practice sides included)."""
        practice = self.manifest.get("practice") or {}
        known = {side["method"]: side for side in (practice.get("good"), practice.get("bad")) if side}
        folder = self._folders[crop]
        return [folder / self.crops[crop]["original"],
                *(folder / (known[m] if m in known else self.reconstruction(crop, m, bpp))["image"]
                  for m in (method_left, method_right))]


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"no study pool in {folder} (make one with `python -m hyperthumb study "
                                f"prepare PHOTOS --out {folder}`)")
    return json.loads(path.read_text())


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


def bradley_terry(wins: np.ndarray, prior: float = 0.5, tolerance: float = 1e-10) -> np.ndarray:
    """Log-strengths (mean 0) maximising the Bradley-Terry likelihood of `wins` (Hunter's MM
    iteration). `prior` adds that many wins each way to every pair, which keeps a method that never
    lost (common in a bootstrap sample) at a finite score."""
    wins = wins + prior * (1 - np.eye(len(wins)))
    games, won = wins + wins.T, wins.sum(1)
    strength = np.ones(len(wins))
    for _ in range(100_000):
        denominator = (games / (strength[:, None] + strength[None, :])).sum(1)
        updated = np.where(won > 0, won / np.where(denominator > 0, denominator, 1), 1e-12)
        updated /= np.exp(np.log(updated).mean())
        if np.abs(updated - strength).max() < tolerance:
            strength = updated
            break
        strength = updated
    scores = np.log(strength)
    return scores - scores.mean()


def bootstrap_scores(votes: Sequence[dict], methods: Sequence[str], samples: int = 1000, seed: int = 0,
                     prior: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores, 2.5 % and 97.5 % percentiles over `samples` resamplings of the votes)."""
    outcomes, size = _outcomes(votes, methods), len(methods)
    scores = bradley_terry(_win_matrix(outcomes, size), prior)
    rng = np.random.default_rng(seed)
    resampled = np.array([bradley_terry(_win_matrix(outcomes, size, rng.integers(0, len(votes), len(votes))), prior)
                          for _ in range(samples)])
    low, high = np.percentile(resampled, [2.5, 97.5], axis=0)
    return scores, low, high


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


def scores_figure(summary: dict) -> go.Figure:
    """Bradley-Terry score per method with its 95 % interval: all bpp together, then per bpp."""
    figure = go.Figure()
    groups = list(dict.fromkeys("all bpp" if s["bpp"] is None else f"{s['bpp']:g} bpp" for s in summary["scores"]))
    for method in summary["win_rates"]["methods"]:
        rows = [s for s in summary["scores"] if s["method"] == method]
        figure.add_trace(go.Scatter(
            x=["all bpp" if s["bpp"] is None else f"{s['bpp']:g} bpp" for s in rows], y=[s["score"] for s in rows],
            error_y={"type": "data", "symmetric": False, "array": [s["high"] - s["score"] for s in rows],
                     "arrayminus": [s["score"] - s["low"] for s in rows]},
            mode="markers", name=method, marker={"color": METHOD_COLOURS.get(method), "size": 10},
            hovertemplate=f"{method}<br>%{{x}}: %{{y:.2f}}<extra></extra>"))
    figure.update_layout(title=f"Bradley-Terry score, 95 % bootstrap interval ({summary['votes']} votes)",
                         xaxis={"categoryorder": "array", "categoryarray": groups},
                         yaxis_title="score (log-odds of being preferred, mean 0)", scattermode="group",
                         template="plotly_white", legend={"orientation": "h", "y": -0.2})
    return figure


def win_rate_figure(summary: dict) -> go.Figure:
    """The win-rate matrix: how often the row's method was preferred to the column's (a tie half)."""
    methods, percent = summary["win_rates"]["methods"], summary["win_rates"]["percent"]
    figure = go.Figure(go.Heatmap(
        z=percent, x=methods, y=methods, zmin=0, zmax=100, colorscale="RdBu",
        text=[["" if p is None else f"{p} %" for p in row] for row in percent], texttemplate="%{text}",
        hovertemplate="%{y} preferred to %{x}: %{z} %<extra></extra>"))
    figure.update_layout(title="Win rate of the row's method against the column's", template="plotly_white",
                         yaxis={"autorange": "reversed"})
    return figure


def dataset_card(summary: dict, repo_id: str, columns: Sequence[str]) -> str:
    """The README of the published votes: what a row is, how the votes were collected, the aggregate."""
    ranking = sorted((s for s in summary["scores"] if s["bpp"] is None), key=lambda s: -s["score"])
    lines = ["---", "license: cc-by-4.0", "pretty_name: HyperThumb pairwise study votes", "configs:",
             "- config_name: default", "  data_files: votes.csv", "---", "", f"# {repo_id}", "",
             "Blind pairwise votes from the HyperThumb app's study: each row is one person's choice between two "
             "anonymous 4x reconstructions of the same crop at the same bpp, shown at 100 % zoom beside the "
             "original, sides in random order. Practice rows (`practice` = 1) have a known answer; annotators "
             "who missed it are flagged and left out of the aggregate.", "", "## Columns", "",
             *[f"- `{column}`" for column in columns], "", "## Aggregate", "",
             f"{summary['votes']} counted votes from {summary['annotators']} annotators "
             f"({summary['excluded_votes']} votes of {len(summary['flagged_annotators'])} flagged annotators "
             "left out).", ""]
    if ranking:
        lines += ["| method | Bradley-Terry score | 95 % interval |", "|---|---|---|"]
        lines += [f"| {s['method']} | {s['score']:.2f} | {s['low']:.2f} to {s['high']:.2f} |" for s in ranking]
    return "\n".join(lines) + "\n"


def publish_votes(store: VoteStore, repo_id: str, methods: Sequence[str] = STUDY_METHODS,
                  revision: Optional[str] = None) -> list[str]:
    """Uploads every vote (CSV, and Parquet where pyarrow is installed) with a dataset card to the
    Hub dataset repository `repo_id`; returns the uploaded file names. The token comes from HF_TOKEN
    or `hf auth login`."""
    from huggingface_hub import HfApi

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        store.to_csv(folder / "votes.csv")
        store.to_parquet(folder / "votes.parquet")
        summary = results(store.votes(), methods, store.flagged_annotators(), samples=200)
        (folder / "README.md").write_text(dataset_card(summary, repo_id, COLUMNS))
        files = sorted(path.name for path in folder.iterdir())
        api = HfApi()
        try:
            api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
            if revision:
                api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True)
            api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=folder, revision=revision,
                              commit_message=f"Upload {summary['votes']} study votes")
        except Exception as exc:  # the Hub client raises HTTP, network and auth errors of many types
            raise HyperThumbError(f"could not publish to the Hub dataset {repo_id!r} "
                                  f"({type(exc).__name__}: {exc})") from None
    return files
