"""`python -m tools.gpu_round`: turn a short GPU loan into checkpoints and figures.

A loan is at most 15 minutes of device time, the machine's start included, so the round is one
command that finishes in under 10 minutes and writes every result into its output folder as it
goes (a round cut off still leaves what it finished):

1. train: resume `rdbunet`, `transformer` and `bicubic-sr` from the shipped checkpoints for the same
   minutes each, with GPU-sized batches, bf16 networks and the photos resident in GPU memory;
2. fast: move each fast decoder onto its encoder's new checkpoint (`train --encoder-from`) and train
   its decoder on, so that a new encoder can ship with a fast decoder that reads its files;
3. bench: decode a 6144x4096 thumbnail (bytes to the HR on the GPU, alone and as a stream, and on
   to an image) per precision / layout / compile variant for both encoders, at fp32 and the codec's
   default for the fast decoders and lite models: seconds, fps, peak GPU memory and the HR PSNR lost
   against fp32; and the photo's encode;
4. evaluate: the new whole checkpoints against the shipped ones on `val` and `kodak24`;
5. `report.md`: all of it with the exact commands, rewritten after each step.

Only the repository travels to the GPU machine (64 MiB in all), not `../shared/datasets`, so
`--prepare DIR` first writes a compact copy of the photos in the datasets' own layout (each
training photo downscaled to at most 768 pixels, plus a native-resolution centre crop of the large
ones, as JPEG quality 88 4:4:4; `val` and every third `kodak24` photo at most 768 pixels, PNG);
the round reads it with `--data DIR`. `--smoke` runs every step
on the CPU with tiny budgets, so CI proves the round works before any GPU time is spent on it.
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
from PIL import Image

from hyperthumb.codec.image_io import list_images, load_image
from hyperthumb.codec.runtime import Runtime
from hyperthumb.codec.thumbnail_codec import HyperThumbCodec
from hyperthumb.evaluation.bench import synthetic_photo, timed
from hyperthumb.evaluation.evaluate import evaluate
from hyperthumb.evaluation.metrics import psnr
from hyperthumb.jpeg.file import read_thumbnail, read_thumbnail_header
from hyperthumb.training.options import TrainOptions
from hyperthumb.training.train import train
from hyperthumb.zoo import (
    BASELINE,
    CHECKPOINT_OF_METHOD,
    EMBEDDED_WEIGHTS,
    ENCODER_METHODS,
    ENCODER_OF_CHECKPOINT,
    FAST_DECODER_OF,
    LITE_METHODS,
    MARKER_OF_CHECKPOINT,
    METHODS,
)

TRAIN_SOURCES = ("photos/train", "train-extra/wikipedia-photos", "train-extra/sun-hays-80")
EVAL_SETS = {"val": "photos/val", "kodak24": "test/kodak24"}
STEPS = ("train", "fast", "bench", "evaluate")
# What a round resumes: the checkpoints trained whole that the product compares (the fast decoders
# follow their encoders; the lite models would not fit its minutes).
ROUND_CHECKPOINTS = tuple(m.checkpoint for m in METHODS.values()
                          if m.checkpoint and not m.decoder_for and not m.lite_of)
FAST_MINUTES = 0.5  # per fast decoder: its decoder only adapts to the round's new encoder
_PACK_SIDE = 768
_PACK_QUALITY = 88
_PACK_EVAL_SIDE = 768  # with the repository (31 MB) and the carried packages, under the 64 MiB that travel
_PACK_EVAL_EVERY = {"val": 1, "kodak24": 3}  # every photo of val, every third of kodak24: 64 MiB travel in all
_STREAM_FRAMES, _STREAM_WORKERS = 12, 4


@dataclass(frozen=True)
class RoundBudget:
    """What each step may spend: the real round, or the CPU smoke test of the same steps."""

    minutes_per_model: float
    fast_minutes: float  # per fast decoder
    batch: int
    patch: int
    bench_size: tuple[int, int]
    bench_repeats: int
    eval_photos: Optional[int]  # photos per set, None for all
    eval_max_side: int
    eval_targets: tuple[float, ...]


def budget(smoke: bool, minutes_per_model: float, fast_minutes: float = FAST_MINUTES) -> RoundBudget:
    if smoke:
        return RoundBudget(minutes_per_model=0.05, fast_minutes=0.02, batch=2, patch=64, bench_size=(256, 192),
                           bench_repeats=1, eval_photos=1, eval_max_side=256, eval_targets=(0.2, 0.5))
    return RoundBudget(minutes_per_model=minutes_per_model, fast_minutes=fast_minutes, batch=32, patch=256,
                       bench_size=(6144, 4096), bench_repeats=5, eval_photos=None, eval_max_side=_PACK_EVAL_SIDE,
                       eval_targets=(0.1, 0.2, 0.3, 0.5))


def prepare_data(datasets: Path, out: Path) -> Path:
    """Writes the compact copy of the photos the round needs (see the module docstring)."""
    for source in TRAIN_SOURCES:
        folder = out / source
        folder.mkdir(parents=True, exist_ok=True)
        for path in list_images(datasets / source):
            photo = load_image(path)
            views = {"": photo.copy()}
            views[""].thumbnail((_PACK_SIDE, _PACK_SIDE), Image.BICUBIC)
            if min(photo.size) >= 2 * _PACK_SIDE:
                left, top = (photo.width - _PACK_SIDE) // 2, (photo.height - _PACK_SIDE) // 2
                views["-crop"] = photo.crop((left, top, left + _PACK_SIDE, top + _PACK_SIDE))
            for suffix, view in views.items():
                view.save(folder / f"{path.stem}{suffix}.jpg", quality=_PACK_QUALITY, subsampling=0)
        _copy_credits(datasets / source, folder)
    for name, relative in EVAL_SETS.items():
        folder = out / relative
        folder.mkdir(parents=True, exist_ok=True)
        for path in list_images(datasets / relative)[::_PACK_EVAL_EVERY[name]]:
            photo = load_image(path)
            photo.thumbnail((_PACK_EVAL_SIDE, _PACK_EVAL_SIDE), Image.LANCZOS)
            photo.save(folder / f"{path.stem}.png")
        _copy_credits(datasets / relative, folder)
    return out


def _copy_credits(source: Path, copy: Path) -> None:
    """The photos' licenses travel with their copies (and model cards find them there)."""
    for name, where in (("ATTRIBUTION.md", ""), ("LICENSES.md", "..")):
        if (source / where / name).is_file():
            shutil.copyfile(source / where / name, copy / where / name)


class Report:
    """report.md, rewritten after every step so a cut-off round keeps what it finished."""

    def __init__(self, path: Path, header: list[str]):
        self.path, self.sections = path, [header]
        self.write()

    def add(self, lines: list[str]) -> None:
        self.sections.append(lines)
        self.write()

    def write(self) -> None:
        self.path.write_text("\n\n".join("\n".join(section) for section in self.sections) + "\n")


@dataclass(frozen=True)
class _Loan:
    """What every step of one round shares: where it reads and writes, its budget and device."""

    data: Path
    out: Path
    plan: RoundBudget
    device: str
    weights: Path


_TRAIN_HEADER = ["| checkpoint | steps before | steps after | steps/s | command |", "|---|---|---|---|---|"]


def _train_models(loan: _Loan) -> list[str]:
    lines = ["## Training", "", *_TRAIN_HEADER]
    for name in ROUND_CHECKPOINTS:
        lines.append(_resume(loan, name, loan.plan.minutes_per_model))
    return lines


def _move_fast_decoders(loan: _Loan) -> list[str]:
    lines = ["## Fast decoders moved onto the new encoders", "",
             "Each one's encoder, QPM and rate model replaced by the round's new checkpoint's, its decoder kept "
             "and trained on alone against them (the lite models keep their own encoders and are not resumed).",
             "", *_TRAIN_HEADER]
    for architecture, name in FAST_DECODER_OF.items():
        if architecture in ROUND_CHECKPOINTS:
            lines.append(_resume(loan, name, loan.plan.fast_minutes, decoder_only=True, lr=1e-4,
                                 encoder_from=str(loan.out / "checkpoints" / architecture)))
    return lines


def _resume(loan: _Loan, name: str, minutes: float, **options) -> str:
    """Resumes the shipped checkpoint `name` in `out/checkpoints/name` for `minutes` with the GPU's
    batches (and any further `TrainOptions`); its report row, with the equivalent command line."""
    folder = loan.out / "checkpoints" / name
    shutil.copytree(loan.weights / name, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("README.md"))
    before = json.loads((folder / "training_state.json").read_text())["step"]
    run = TrainOptions(encoder=ENCODER_OF_CHECKPOINT[name], data=[str(loan.data / s) for s in TRAIN_SOURCES],
                       val=str(loan.data / EVAL_SETS["val"]), out=str(folder), minutes=minutes,
                       batch=loan.plan.batch, patch=loan.plan.patch, val_every=1_000_000, device=loan.device,
                       bf16=loan.device == "cuda", **options)
    run = replace(run, command=run.command_line())
    started = time.monotonic()
    train(run)
    after = json.loads((folder / "training_state.json").read_text())["step"]
    return (f"| {name} | {before:,} | {after:,} | {(after - before) / (time.monotonic() - started):.2f} "
            f"| `{run.command}` |")


def _decode_variants(device: torch.device) -> dict[str, Runtime]:
    if device.type == "cuda":
        variants = {"fp32": Runtime(), "fp32 channels-last": Runtime(channels_last=True),
                    "fp16 channels-last": Runtime(torch.float16, channels_last=True),
                    "bf16": Runtime(torch.bfloat16),
                    "bf16 channels-last": Runtime(torch.bfloat16, channels_last=True),
                    "bf16 channels-last batch 4": Runtime(torch.bfloat16, channels_last=True, batch=4),
                    "bf16 channels-last compiled": Runtime(torch.bfloat16, channels_last=True, compile=True)}
        return variants
    return {"fp32": Runtime(), "bf16": Runtime(torch.bfloat16)}


def _bench(loan: _Loan) -> list[str]:
    from hyperthumb.zoo import load_model

    plan, device, weights = loan.plan, torch.device(loan.device), loan.weights

    photo = synthetic_photo(*plan.bench_size)
    lines = ["## Decode speed", "",
             f"{plan.bench_size[0]}x{plan.bench_size[1]} synthetic photo, shipped checkpoints, median of "
             f"{plan.bench_repeats} after one warm-up (peak GPU memory: of the bytes-to-tensor decode); "
             f"{torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}, torch {torch.__version__}. "
             "Bytes to tensor: the thumbnail's bytes to the uint8 HR on the device (`codec.decode_tensor`; fps from "
             "it), of which parse is the CPU's (reading the file's coefficients; on the pixel route, where the GPU "
             "decodes the file with nvJPEG and quantizes its pixels' DCT again with the file's tables, only its "
             "header); stream fps: "
             f"{_STREAM_FRAMES} such files through `codec.decode_stream` (the next files parsed in "
             f"{_STREAM_WORKERS} CPU threads while the GPU restores); to image: on to a PIL image on the host "
             "(`codec.decode`).",
             "", "| encoder | variant | parse ms | bytes to tensor s | fps | stream fps | to image s | peak GPU MB "
             "| HR PSNR vs fp32 (dB) | within 0.05 dB |", "|---|---|---|---|---|---|---|---|---|---|"]
    encodes, thumbs = [], {}  # a fast decoder reads its encoder's thumbnail
    for encoder in (*ENCODER_METHODS, *FAST_DECODER_OF.values(), *LITE_METHODS):
        model = load_model(encoder, source=weights / encoder, device=str(device)).model
        marker = MARKER_OF_CHECKPOINT[encoder]
        if marker not in thumbs:
            encoding = HyperThumbCodec(model, marker, device)
            encoding.encode(photo, target_bpp=0.3)  # warm-up
            seconds, _, thumbs[marker] = timed(lambda: encoding.encode(photo, target_bpp=0.3), plan.bench_repeats,
                                               device)
            encodes.append(f"{marker} {seconds:.3f} s")
        thumb = thumbs[marker]
        parse = {source: timed(lambda: reader(thumb.jpeg), plan.bench_repeats, torch.device("cpu"))[0]
                 for source, reader in (("file", read_thumbnail), ("pixels", read_thumbnail_header))}
        reference = None
        variants = _decode_variants(device)
        if encoder not in ENCODER_METHODS:  # the others: the fp32 reference and the codec's default only
            variants = {name: runtime for name, runtime in variants.items()
                        if runtime in (Runtime(), Runtime.for_device(device))}
        routes = {name: (runtime, "file") for name, runtime in variants.items()}
        routes["default, coefficients from pixels"] = (Runtime.for_device(device), "pixels")
        for variant, (runtime, source) in routes.items():
            codec = HyperThumbCodec(model, encoder, device, runtime=runtime, marker=marker, coefficients_from=source)
            codec.decode_tensor(thumb.jpeg)  # warm-up (and compilation)
            to_tensor, peak_bytes, _ = timed(lambda: codec.decode_tensor(thumb.jpeg), plan.bench_repeats, device)
            stream = timed(lambda: sum(1 for _ in codec.decode_stream([thumb.jpeg] * _STREAM_FRAMES, _STREAM_WORKERS)),
                           1, device)[0]
            to_image, _, restored = timed(lambda: codec.decode(thumb.jpeg), plan.bench_repeats, device)
            peak = peak_bytes / 2**20 if device.type == "cuda" else float("nan")
            quality = psnr(restored, photo)
            reference = quality if reference is None else reference
            lines.append(f"| {encoder} | {variant} | {parse[source] * 1e3:.0f} | {to_tensor:.3f} | {1 / to_tensor:.1f} | "
                         f"{_STREAM_FRAMES / stream:.1f} | "
                         f"{to_image:.3f} | {peak:.0f} | {quality - reference:+.3f} | "
                         f"{'yes' if abs(quality - reference) <= 0.05 else 'no'} |")
    return lines + ["", "Encode (the photo to its thumbnail file at 0.3 bpp, the codec's default runtime): "
                    f"{', '.join(encodes)}."]


def _photos(folder: Path, count: Optional[int]) -> list[Path]:
    return list_images(folder)[:count] if count else list_images(folder)


def _compare(loan: _Loan) -> list[str]:
    plan, out = loan.plan, loan.out
    sets = {name: _photos(loan.data / relative, plan.eval_photos) for name, relative in EVAL_SETS.items()}
    learned = [method for method, checkpoint in CHECKPOINT_OF_METHOD.items() if checkpoint in ROUND_CHECKPOINTS]
    common = dict(targets=plan.eval_targets, max_side=plan.eval_max_side, device=loan.device)
    evaluate(sets, out=out / "eval-shipped", methods=[*learned, BASELINE], weights=loan.weights, **common)
    evaluate(sets, out=out / "eval-new", methods=learned, weights=out / "checkpoints", reuse=[out / "eval-shipped"],
             **common)
    lines = ["## New against shipped", "",
             f"Targets {', '.join(map(str, plan.eval_targets))} bpp, photos shrunk to at most {plan.eval_max_side} "
             "pixels; BD-PSNR against bicubic-jpeg on the mean curve / mean of per-photo deltas.", "",
             "| set | method | shipped | new | better |", "|---|---|---|---|---|"]
    deltas = {}
    for which in ("shipped", "new"):
        with (out / f"eval-{which}" / "summary.csv").open(newline="") as f:
            for row in csv.DictReader(f):
                deltas[(which, row["set"], row["method"])] = tuple(
                    None if row[key] == "" else float(row[key]) for key in ("bd_psnr_db", "bd_psnr_photo_db"))
    def cell(figures: Optional[tuple]) -> str:
        return " / ".join("-" if v is None else f"{v:+.2f} dB" for v in (figures or (None, None)))

    for name in sets:
        for method in learned:
            old, new = deltas.get(("shipped", name, method)), deltas.get(("new", name, method))
            known = old and new and None not in (old[1], new[1])
            better = "yes" if known and new[1] > old[1] else "no"
            lines.append(f"| {name} | {method} | {cell(old)} | {cell(new)} | {better} |")
    return lines


def gpu_round(out: Path, data: Path, minutes_per_model: float = 2.5, smoke: bool = False,
              weights: Path = EMBEDDED_WEIGHTS, log: Callable[[str], None] = print,
              steps: Sequence[str] = STEPS, fast_minutes: float = FAST_MINUTES) -> Path:
    """Runs the round's `steps` (a rerun on a short loan may skip some) into `out`; returns the
    report's path."""
    unknown = set(steps) - set(STEPS)
    if unknown:
        raise ValueError(f"unknown steps {sorted(unknown)}; the round's are {', '.join(STEPS)}")
    for step in ("fast", "evaluate"):
        if step in steps and "train" not in steps and not (out / "checkpoints").is_dir():
            raise ValueError(f"{step} starts from the checkpoints that train writes, and {out / 'checkpoints'} "
                             "has none")
    device = "cuda" if torch.cuda.is_available() and not smoke else "cpu"
    plan = budget(smoke, minutes_per_model, fast_minutes)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    report = Report(out / "report.md", [
        "# GPU round", "",
        f"Command: `python -m tools.gpu_round --data {data} --out {out} --minutes-per-model "
        f"{minutes_per_model:g} --fast-minutes {fast_minutes:g}{' --smoke' if smoke else ''}"
        f"{'' if tuple(steps) == STEPS else ' --steps ' + ' '.join(steps)}`; device: "
        f"{torch.cuda.get_device_name() if device == 'cuda' else 'CPU'}."])
    loan = _Loan(data, out, plan, device, weights)
    work: dict[str, Callable[[_Loan], list[str]]] = {
        "train": _train_models, "fast": _move_fast_decoders, "bench": _bench, "evaluate": _compare}
    for name in (name for name in STEPS if name in steps):
        log(f"gpu-round: {name} ({time.monotonic() - started:.0f} s so far)")
        report.add(work[name](loan))
    report.add([f"Round finished in {time.monotonic() - started:.0f} s. Commit a new checkpoint only where the "
                "evaluation says it is better, and for both encoders alike (same data, same budget); with an "
                "encoder, its moved fast decoder (evaluate it first: the round does not)."])
    return out / "report.md"


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.gpu_round",
                                     description="train, benchmark and evaluate in one short GPU loan")
    parser.add_argument("--out", help="folder for checkpoints, evaluations and report.md (written as it goes)")
    parser.add_argument("--data", help="photos in the datasets' layout, e.g. a folder made by --prepare")
    parser.add_argument("--minutes-per-model", type=float, default=2.5, help="training minutes for each checkpoint")
    parser.add_argument("--smoke", action="store_true", help="every step on the CPU with tiny budgets (about a minute)")
    parser.add_argument("--fast-minutes", type=float, default=FAST_MINUTES,
                   help="training minutes for each fast decoder moved onto its new encoder")
    parser.add_argument("--steps", nargs="+", default=list(STEPS), choices=STEPS,
                   help="which steps to run (all by default; a short loan may rerun one)")
    parser.add_argument("--prepare", metavar="DIR", help="only write the compact photo folder that travels to the GPU")
    parser.add_argument("--datasets", default="../shared/datasets", help="source of --prepare")
    args = parser.parse_args(argv)
    if args.prepare:
        print(f"photos for the round in {prepare_data(Path(args.datasets), Path(args.prepare))}")
        return
    if not args.out or not args.data:
        parser.error("give --data and --out (or --prepare DIR to make the data folder first)")
    report = gpu_round(Path(args.out), Path(args.data), args.minutes_per_model, args.smoke, steps=args.steps,
                       fast_minutes=args.fast_minutes)
    print(f"report in {report}")


if __name__ == "__main__":
    main()
