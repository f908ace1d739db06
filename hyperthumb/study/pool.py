"""The blind pairwise study's pool: which method do people prefer at the same bpp?

    python -m hyperthumb study prepare PHOTOS... --bpp 0.1 0.2 0.3 --out DIR
    python -m hyperthumb study publish --repo OWNER/NAME

`prepare` encodes each photo with every study method at each bpp once, so a vote never waits for
a model: it keeps each thumbnail file (the reconstruction, in its stored form) and, per photo, a few
crops of its most detailed regions (where 4x reconstructions differ) as lossless PNGs, original and
each method's reconstruction at 100 % zoom, with their PSNR and LPIPS on that crop, in
`manifest.json`. A practice crop, a good reconstruction against a heavily blurred one, gives every
annotator a first trial with a known answer.

Trials are drawn least-voted first over (method pair, bpp), then crop, with a random left/right
order; votes live in `votes.VoteStore`, and `ranking.py` turns them into results.
"""
from __future__ import annotations

import itertools
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence, Union

import numpy as np
from PIL import Image, ImageFilter

from hyperthumb.codec.image_io import IMAGE_SUFFIXES, load_image
from hyperthumb.evaluation.methods import run_method
from hyperthumb.evaluation.metrics import lpips_available, lpips_distance, psnr
from hyperthumb.study.votes import IssuedTrial, VoteStore
from hyperthumb.zoo import BASELINE, ENCODER_METHODS

# The encoders, their sharp decoders on the very same files (the question the metrics cannot settle:
# sharp or faithful, at the same bpp), our decoder on a plain thumbnail, and the plain thumbnail.
STUDY_METHODS = (*ENCODER_METHODS, *(f"{encoder}-sharp" for encoder in ENCODER_METHODS), "bicubic-jpeg-sr", BASELINE)
STUDY_DIR_ENV = "HYPERTHUMB_STUDY_DIR"
MANIFEST = "manifest.json"
CROP_SIDE = 448  # within 384-512: a detailed region a person can inspect at 1:1 without scrolling
PRACTICE_GOOD, PRACTICE_BAD = "practice-good", "practice-degraded"


def _photo_paths(inputs: Iterable[Union[str, os.PathLike]]) -> list[Path]:
    paths: list[Path] = []
    for item in map(Path, inputs):
        paths += sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if item.is_dir() else [item]
    if not paths:
        raise ValueError("no photos given")
    return paths


def window_detail(photo: Image.Image, side: int) -> np.ndarray:
    """The detail of every `side`-pixel square window of the photo, indexed [top, left]: the sum of its
    absolute differences between neighbouring grey pixels, where 4x restorations differ most."""
    grey = np.asarray(photo.convert("L"), np.float64)
    detail = np.zeros_like(grey)
    detail[:, 1:] += np.abs(np.diff(grey, axis=1))
    detail[1:, :] += np.abs(np.diff(grey, axis=0))
    integral = np.pad(detail.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    return integral[side:, side:] - integral[:-side, side:] - integral[side:, :-side] + integral[:-side, :-side]


def detailed_boxes(photo: Image.Image, side: int, count: int, rng: random.Random) -> list[tuple[int, int, int, int]]:
    """`count` boxes of `side` pixels (less on a smaller photo), drawn at random among the most
    detailed quarter of candidate windows (`window_detail`), not overlapping where the photo has room."""
    side = min(side, photo.width, photo.height) // 4 * 4
    totals = window_detail(photo, side)
    stride = max(4, side // 4 // 4 * 4)
    candidates = [(totals[top, left], (left, top, left + side, top + side))
                  for top in range(0, photo.height - side + 1, stride)
                  for left in range(0, photo.width - side + 1, stride)]
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
