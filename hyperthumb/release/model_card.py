"""Model cards: a checkpoint folder's README.md in the Hub's format, written from what the training
recorded (config.json, training_state.json, train_log.csv) so every figure in it is traceable."""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
from pathlib import Path
from typing import Optional, Union

from huggingface_hub import ModelCard

from hyperthumb.codec.image_io import list_images
from hyperthumb.errors import InvalidImageError
from hyperthumb.evaluation.bjontegaard import NO_OVERLAP
from hyperthumb.models.model import HyperThumbModel, parameter_counts
from hyperthumb.models.pretrained import STATE_NAME
from hyperthumb.training.curves import read_log
from hyperthumb.training.options import TrainOptions
from hyperthumb.zoo import BASELINE, CHECKPOINT_OF_METHOD, PRESETS, encoder_options

CARD_NAME = "README.md"
PAPER_STEPS = 1_800_000
_METHOD_OF = {checkpoint: method for method, checkpoint in CHECKPOINT_OF_METHOD.items()}
_EVALUATION_COLUMNS = [("target_bpp", "target bpp", 2), ("bpp", "bpp", 4), ("psnr_hr", "HR PSNR (dB)", 2),
                       ("psnr_hr_y", "HR PSNR Y (dB)", 2), ("psnr_lr", "thumbnail PSNR (dB)", 2),
                       ("ssim_hr", "SSIM", 4), ("lpips_rgb", "LPIPS-RGB", 4), ("lpips_y", "LPIPS-Y", 4),
                       ("dists", "DISTS", 4)]
PathLike = Union[str, os.PathLike]


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def _folders_of_runs(state: dict, key: str) -> Optional[list[str]]:
    """Every folder the runs read for `key` (`data` or `val`), in order: a run on a lent GPU reads
    its compact copy of the photos (`gpu-round --prepare`)."""
    folders: list[str] = []
    for run in state.get("runs", []):
        value = run.get(key)
        folders += [folder for folder in ([value] if isinstance(value, str) else value or []) if folder not in folders]
    return folders or None


def _data_lines(role: str, folders: Optional[list[str]]) -> list[str]:
    if folders is None:
        return [f"- {role}: not recorded"]
    return [_data_line(role, folder) for folder in folders]


def _data_line(role: str, folder: str) -> str:
    try:
        count = f"{len(list_images(folder))} photos"
    except InvalidImageError:
        count = "folder not present where this card was written"
    credits = [path for path in (Path(folder) / "ATTRIBUTION.md", Path(folder).parent / "LICENSES.md") if path.is_file()]
    credit = f", licenses and credits in `{credits[0]}`" if credits else ", terms in the datasets' README"
    return f"- {role}: `{folder}` ({count}{credit})"


def _machines(state: dict) -> str:
    """The machines that trained the checkpoint, in order, with each one's steps: runs record their
    own since a checkpoint can move to a lent GPU and back (older states keep the last one only)."""
    runs = state.get("runs", [])
    if not any("machine" in run for run in runs):
        return state.get("device", "a machine not recorded")
    spans: list[list] = []  # [machine, first step or None]
    for index, run in enumerate(runs):
        machine = run.get("machine", "a machine not recorded")
        if not spans or spans[-1][0] != machine:
            spans.append([machine, run.get("first_step", 0 if index == 0 else None)])
    ends = [start for _, start in spans[1:]] + [state.get("step")]
    parts = [f"{machine} ({end - start:,} steps)" if None not in (start, end) else machine
             for (machine, start), end in zip(spans, ends)]
    return ", then ".join(parts)


def _figure(value: Union[str, float, None], digits: int) -> str:
    return f"{float(value):.{digits}f}" if value not in (None, "") else "-"


def _evaluation_section(summary: Path, method: str) -> list[str]:
    with summary.open(newline="") as f:
        rows = [row for row in csv.DictReader(f) if row["method"] == method]
    if not rows:
        return ["## Evaluation", "", f"`{summary}` has no rows for `{method}`.", ""]
    lines = ["## Evaluation", "", f"`python -m hyperthumb evaluate` ({summary}), per set of photos, means over "
             "the set:", ""]
    for name in dict.fromkeys(row.get("set") or "photos" for row in rows):
        set_rows = [row for row in rows if (row.get("set") or "photos") == name]
        first = set_rows[0]
        rate = first["bd_rate_pct"]
        rate_text = f"{_figure(rate, 1)} %" if rate not in (None, "") else NO_OVERLAP
        per_photo = first.get("bd_psnr_photo_db")
        lines += [f"### {name} ({first['images']} photos)", "",
                  "| " + " | ".join(title for _, title, _ in _EVALUATION_COLUMNS) + " |",
                  "|" + "---|" * len(_EVALUATION_COLUMNS)]
        lines += ["| " + " | ".join(_figure(row[key], digits) for key, _, digits in _EVALUATION_COLUMNS) + " |"
                  for row in set_rows]
        lines += ["", f"Bjontegaard delta against `{BASELINE}` (HR PSNR): BD-PSNR {_figure(first['bd_psnr_db'], 2)} dB"
                      + (f" (mean of per-photo deltas {_figure(per_photo, 2)} dB)" if per_photo not in (None, "") else "")
                      + f", BD-rate {rate_text}.", ""]
    return lines


def _about(name: str, encoder: str, decoder_only: bool, sharp: bool = False) -> str:
    if decoder_only and sharp:
        return (f"`{name}` is a sharp decoder for HyperThumb's `{encoder}` checkpoint: the same encoder, quantisation "
                "table predictor and rate model, so it reads the very same thumbnail files, with the full decoder "
                "trained alone against them on HR L1 plus a perceptual term (LPIPS on VGG16 features). It restores "
                "crisper detail: lower LPIPS-AlexNet and DISTS, neither of which it trained on, for a few tenths "
                "of a dB of HR PSNR (docs/evaluation.md in the HyperThumb repository has the figures per set). "
                "HyperThumbnail: Qi et al., CVPR 2023, arXiv 2304.01064.")
    if decoder_only:
        return (f"`{name}` is a fast decoder for HyperThumb's `{encoder}` checkpoint: the same encoder, quantisation "
                "table predictor and rate model, so it writes the very same thumbnail files and reads that "
                f"checkpoint's, with a smaller decoder trained alone against them. It restores faster and "
                "a little less faithfully (HyperThumbnail, Qi et al., CVPR 2023, arXiv 2304.01064).")
    if encoder == "bicubic":
        return (f"`{name}` is the `bicubic-jpeg-sr` baseline of HyperThumb: a bicubic 4x thumbnail stored as a JPEG "
                "with the standard tables, restored by HyperThumb's decoder trained on such files. It has no "
                "learned encoder; it shows how much of the gain is the decoder's alone.")
    return (f"`{name}` is HyperThumb with the `{encoder}` encoder: a photo becomes an ordinary JPEG thumbnail, 4x "
            "smaller per side, from which the decoder restores the full-resolution photo (HyperThumbnail, Qi et "
            "al., CVPR 2023, arXiv 2304.01064).")


def _validation_section(log: list[dict], rate_t: Optional[float]) -> list[str]:
    if not log:
        return []
    last = log[-1]
    keys = (("bpp", 4), ("psnr_hr", 2), ("psnr_lr", 2), ("lpips_rgb", 4), ("lpips_y", 4))
    return ["## Validation (last row of train_log.csv)", "",
            f"Centre crops of up to {TrainOptions.val_crop} px of each validation photo, encoded at "
            + (f"the rate setting t = {rate_t:g} of the last run" if rate_t is not None else "a rate setting not recorded")
            + f", at step {int(last['step']):,}:", "",
            "| bpp | HR PSNR (dB) | thumbnail PSNR (dB) | LPIPS-RGB | LPIPS-Y |", "|---|---|---|---|---|",
            "| " + " | ".join(_figure(last[key], digits) for key, digits in keys) + " |", ""]


def model_card(folder: PathLike, summary: Optional[PathLike] = None) -> ModelCard:
    """The model card of the checkpoint in `folder` (with evaluation figures from `summary`): the
    front matter the model class declares (`pretrained.py`), the text from the training records."""
    folder = Path(folder)
    name = folder.name
    model = HyperThumbModel.from_pretrained(folder)
    config = model.config
    state_path = folder / STATE_NAME
    state = json.loads(state_path.read_text()) if state_path.is_file() else {"commands": []}
    # The resolved options of the last run, as training saved them (older states kept only commands).
    args = argparse.Namespace(**state["runs"][-1]) if state.get("runs") else None
    counts = parameter_counts(model)
    steps, seconds = state.get("step", 0), state.get("seconds", 0.0)
    machine = _machines(state)
    preset = next((p for p in PRESETS if encoder_options(config.encoder, p) == config.encoder_options), None)
    size = {"paper": "the paper's full-size configuration (`--preset paper`)",
            "cpu": "a reduced configuration for a CPU (`--preset cpu`; the paper's size is `--preset paper`)",
            "lite": "a lite encoder for fast encodes, 4-6x fewer operations than `--preset cpu` (`--preset lite`)"
            }.get(preset, "an encoder of no preset")
    decoder_only = bool(args and getattr(args, "decoder_only", False))
    start = state.get("initialised_from")
    origin = (f" from `{start['checkpoint']}`" + (f" at step {start['step']:,}" if start.get("step") else "")
              if start else "")
    # A fast decoder moved onto a retrained encoder says which encoder its earlier steps were against.
    earlier = [f"`{e['checkpoint']}`" + (f" at step {e['step']:,}" if e.get("step") else "")
               for e in (start or {}).get("earlier", [])]
    until = [e["until_step"] for e in (start or {}).get("earlier", [])]
    if earlier:
        origin += (f" (its first {until[0]:,} steps against {earlier[0]}"
                   + "".join(f", then to step {u:,} against {e}" for u, e in zip(until[1:], earlier[1:])) + ")")
    # A decoder-only run is a fast decoder where it began from another checkpoint; resumed in its
    # own folder, it only went on training a whole checkpoint's decoder.
    fast_decoder = decoder_only and start is not None
    perceptual = getattr(args, "perceptual_weight", 0) or 0 if args else 0
    adversarial = getattr(args, "adversarial_weight", 0) or 0 if args else 0
    kind = "sharp" if fast_decoder and perceptual else "fast" if fast_decoder else None
    decoder_steps = steps - getattr(args, "first_step", 0) if decoder_only and not fast_decoder else 0
    alone = (f" of the decoder alone{origin}" if fast_decoder else
             f", the last {decoder_steps:,} of them of the decoder alone" if decoder_steps else
             f", its QPM, rate model and decoder starting{origin}" if start else "")
    recipe = (f"batches of {args.batch} HR patches of {args.patch}x{args.patch}, Adam lr {args.lr:g} (schedule "
              f"`{args.lr_decay}` over each run) on the decoder alone, HR L1 loss"
              + (f" + {perceptual:g} x LPIPS-VGG" if perceptual else "")
              + (f" + {adversarial:g} x a patch discriminator's adversarial loss" if adversarial else "")
              + "; the encoder, tables and rate model "
              f"frozen{origin}; rate setting t drawn per batch from [{args.rate_t_min:g}, {args.rate_t_max:g}]"
              if decoder_only else
              f"batches of {args.batch} HR patches of {args.patch}x{args.patch}, Adam lr {args.lr:g} (encoder "
              f"{args.lr * args.encoder_lr_scale:g}, schedule `{args.lr_decay}` over each run); loss HR L1 + "
              f"{args.thumbnail_weight:g} x thumbnail MSE against bicubic (the paper: 0.6)"
              + (f" + {args.thumbnail_floor_weight:g} x the encoder thumbnail's MSE beyond a {args.thumbnail_floor_db:g} dB "
                 "floor, per patch" if args.thumbnail_floor_db else "")
              + f" + rate weight x estimated bpp (its gradient trains the tables, not the encoder), with the rate "
              f"setting t drawn per batch from [{args.rate_t_min:g}, {args.rate_t_max:g}]"
              if args else "batches and loss weights not recorded")
    lines = ["", f"# HyperThumb `{name}`", "", _about(name, config.encoder, fast_decoder, kind == "sharp"), "",
             "```python", "import hyperthumb",
             f"codec = hyperthumb.load_model({name!r})  # or set HYPERTHUMB_HUB_REPO=<this repo>",
             "thumb = codec.encode('photo.jpg', target_bpp=0.3)",
             f"photo = hyperthumb.decode(thumb.jpeg{f', decoder={kind!r}' if kind else ''})", "```", "",
             "The network alone: `hyperthumb.models.HyperThumbModel.from_pretrained(<this folder>)`, or "
             f"`from_pretrained(<this repo>, subfolder={name!r}, revision=...)` from the Hub.", "",
             f"Encoder options: `{json.dumps(config.encoder_options)}`; decoder: "
             f"`{json.dumps({k: v for k, v in dataclasses.asdict(config.decoder).items() if v is not None})}`. Parameters: "
             + ", ".join(f"{part} {count / 1e6:.3f} M" for part, count in counts.items()) + ".", "",
             "## Honest scope", "",
             f"This is {size}, trained for {steps:,} steps{alone} "
             f"({_duration(seconds)} of training) on {machine}: far "
             f"shorter than the paper's {PAPER_STEPS:,} steps of batch 16 on 256x256 patches on a GPU. Expect it "
             "to trail the paper's figures.", "",
             "## Training data", "",
             *_data_lines("training", _folders_of_runs(state, "data")),
             *_data_lines("validation", _folders_of_runs(state, "val")), "",
             "## Training", "",
             f"- steps: {steps:,}{alone}"
             + f"; wall time: {_duration(seconds)} ({seconds:.0f} s of training steps)",
             f"- machine: {machine}",
             f"- last run: {recipe}, so one checkpoint covers the whole bpp range",
             "- exact command(s), one per run (later runs resume; flags spelled out where a default has changed "
             "since):", "", "```",
             *(state["commands"] or ["not recorded"]), "```", "",
             *_validation_section(read_log(folder), args.val_rate_t if args else None)]
    if summary is not None:
        lines += _evaluation_section(Path(summary), _METHOD_OF.get(name, name))
    card = model.generate_model_card()
    card.data.tags.append(config.encoder)
    card.text = "\n".join(lines)
    return card


def write_model_card(folder: PathLike, summary: Optional[PathLike] = None) -> Path:
    path = Path(folder) / CARD_NAME
    model_card(folder, summary).save(path)
    return path
