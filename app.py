"""The HyperThumb web app: encode a photo at a target bpp, compare the encoders, decode, and label.

    python app.py [--share] [--host 127.0.0.1] [--port 7860]

A thin page over the `hyperthumb` library: every upload goes through `image_io.load_image`, each
handler calls the library and formats its result. A bad input never clears the page: the handler
leaves every panel as it was and says what went wrong in the tab's status line, naming the file by
the name the user gave it. The same file runs as a Hugging Face Space (README front matter).
"""
from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import html
import io
import logging
import math
import os
import random
import re
import secrets
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Optional, Union

import gradio as gr
import pandas as pd
from PIL import Image, ImageDraw

import hyperthumb
from hyperthumb import zoo
from hyperthumb.codec.image_io import load_image, probe_image
from hyperthumb.codec.runtime import keep_freed_memory
from hyperthumb.errors import (
    CheckpointNotFoundError,
    HyperThumbError,
    ImageSizeError,
    InvalidImageError,
    InvalidThumbnailError,
)
from hyperthumb.evaluation import charts
from hyperthumb.evaluation.methods import MethodResult, measure, run_method
from hyperthumb.evaluation.metrics import lpips_available
from hyperthumb.jpeg.marker import find_marker
from hyperthumb.limits import MIN_SIDE
from hyperthumb.study.pool import MANIFEST, STUDY_DIR_ENV, StudyPool, box_around
from hyperthumb.study.ranking import results as study_results
from hyperthumb.study.ranking import scores_figure, win_rate_figure
from hyperthumb.study.uploads import UPLOADS_DIR_ENV
from hyperthumb.study.uploads import add_photo as add_to_pool
from hyperthumb.study.votes import VoteRefused, VoteStore
from hyperthumb.zoo import BASELINE, REFERENCE_METHODS, checkpoint_summary

ROOT = Path(__file__).resolve().parent
EXAMPLES = sorted(str(path) for path in (ROOT / "examples").glob("*.jpg"))
ENCODERS = {zoo.METHODS[method].label: method for method in zoo.ENCODER_METHODS}
BOTH = "Both, side by side"
# docs/speed.md's 6K CPU bench (`python -m hyperthumb bench --size 6144x4096`, bf16: the lite models
# encode 2.5-2.6x and decode 3.9x faster than the full ones) and the BD-PSNR against bicubic-jpeg
# on the four sets of results/eval/summary.md (the lite models 0.51-1.18 dB below the full ones).
LITE_INFO = ("the same two architectures, slimmed: about 3x faster to encode and decode on a CPU, "
             "0.5-1.2 dB lower HR PSNR")
CHART_RATES = (0.1, 0.2, 0.3, 0.5)
CHART_METHODS = (*ENCODERS.values(), *zoo.LITE_METHODS, BASELINE, *REFERENCE_METHODS)
# The chart runs every method at native scale; beyond this side it takes a centre region instead.
# Its 6 methods x 4 rates take about 26 s on 0.8 MP on a 2-core CPU (AVIF alone half of it), so
# 512 x 512 keeps it near 10 s; on a GPU the learned methods are quick, the CPU-bound references not.
CHART_SIDE = {"cpu": 512, "cuda": 1024}
# A 6K photo is 25 MP; larger uploads would not fit a shared server's memory. HYPERTHUMB_MAX_MEGAPIXELS
# raises or lowers the limit for a server that has more or less of it.
APP_MAX_PIXELS = int(float(os.environ.get("HYPERTHUMB_MAX_MEGAPIXELS", "50")) * 1_000_000)
BPP_RANGE = (0.05, 0.8)  # the slider's, held again for the API, whose inputs arrive unchecked
LABELS_DB_ENV = "HYPERTHUMB_LABELS_DB"
ADMIN_TOKEN_ENV = "HYPERTHUMB_ADMIN_TOKEN"  # exporting raw votes; reading the aggregate is public
SHARE_ENV = "HYPERTHUMB_SHARE"
MODEL_WORK = "model"  # one queue for every event that runs a model, so the limit holds across them
OUTPUT_ROOT = Path(tempfile.gettempdir()) / "hyperthumb-app"
OUTPUT_MAX_AGE_S = 3600  # folders of sessions that never said goodbye (API clients, crashed tabs)
OUTPUT_MAX_BYTES = 2 * 2**30  # all sessions' files together; the oldest sessions go first beyond this
PHOTO_FORMATS = "JPEG, PNG, WebP or TIFF"

log = logging.getLogger("hyperthumb.app")

try:  # on a ZeroGPU Space, GPU work must run inside spaces.GPU
    import spaces

    gpu = spaces.GPU
except ImportError:
    def gpu(function: Callable) -> Callable:
        return function


class UserError(Exception):
    """A plain sentence for the page: what went wrong with the user's input and what to do."""


def _with_file_name(exc: HyperThumbError, path: Path, name: str) -> str:
    """The library's message with the server's copy of the file called by the user's name for it."""
    message = str(exc).replace(str(path), name).replace(path.name, name).rstrip(".")
    advice = (f"photos from {MIN_SIDE}x{MIN_SIDE} pixels up to {APP_MAX_PIXELS / 1e6:g} MP are accepted"
              if isinstance(exc, ImageSizeError) else
              f"please upload a {PHOTO_FORMATS} photo" if isinstance(exc, InvalidImageError) else
              "please upload a thumbnail saved by HyperThumb's Encode tab or command line"
              if isinstance(exc, InvalidThumbnailError) else "please try again")
    return f"Could not use {name}: {message}; {advice}."


def user_errors(handler: Callable) -> Callable:
    """Keeps the page as it was on any error: every output is skipped except the last, the tab's
    status line, which gets one sentence. A user error logs one line; an unexpected one its
    traceback, and the page a short apology without details."""
    @functools.wraps(handler)
    def guarded(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except UserError as exc:
            message = str(exc)
            log.info("user error in %s: %s", handler.__name__, message)
        except Exception:
            log.exception("%s failed", handler.__name__)
            message = ("Something went wrong on the server while handling this request; "
                       "please try again or use another photo.")
        outputs = guarded.outputs
        return message if outputs == 1 else [*[gr.skip()] * (outputs - 1), message]
    guarded.outputs = 1
    return guarded


def outputs(count: int) -> Callable[[Callable], Callable]:
    """Tells `user_errors` how many outputs its handler has (the status line last)."""
    def bind(guarded: Callable) -> Callable:
        guarded.outputs = count
        return guarded
    return bind


def _upload(payload: Union[None, str, dict]) -> Optional[tuple[Path, str]]:
    """(server path, the user's own file name) of an upload, raw (`preprocess=False`) or a path."""
    if not payload:
        return None
    if isinstance(payload, dict):
        path = Path(payload["path"])
        return path, Path(payload.get("orig_name") or path.name).name
    return Path(payload), Path(payload).name


def _checked_settings(choice: str, target_bpp: object) -> float:
    """The target bpp, after the checks the radio and the slider make in the page (`preprocess=False`
    leaves them out of the API)."""
    if choice not in (*ENCODERS, BOTH):
        raise UserError(f"Choose the encoder: {', '.join(ENCODERS)} or {BOTH}.")
    try:
        bpp = float(target_bpp)
    except (TypeError, ValueError):
        bpp = math.nan
    if not BPP_RANGE[0] <= bpp <= BPP_RANGE[1]:
        raise UserError(f"Set the target bpp to a number from {BPP_RANGE[0]} to {BPP_RANGE[1]}.")
    return bpp


def _open_photo(payload: Union[None, str, dict]) -> tuple[Image.Image, Path, str]:
    upload = _upload(payload)
    if upload is None:
        raise UserError("Upload a photo first, or pick an example.")
    path, name = upload
    try:
        return load_image(path, max_pixels=APP_MAX_PIXELS), path, name
    except HyperThumbError as exc:
        raise UserError(_with_file_name(exc, path, name)) from None


@outputs(1)
@user_errors
def check_upload(payload: Union[None, str, dict]) -> str:
    """An upload's first answer, from its header alone: its size, or at once what is wrong with it."""
    upload = _upload(payload)
    if upload is None:
        return ""
    path, name = upload
    try:
        width, height = probe_image(path, max_pixels=APP_MAX_PIXELS)
    except HyperThumbError as exc:
        raise UserError(_with_file_name(exc, path, name)) from None
    return f"**{html.escape(name)}**: {width}x{height} pixels. Choose the encoder and the target bpp, then Encode."


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _sweep() -> None:
    """Removes session folders older than OUTPUT_MAX_AGE_S, then the oldest ones while all of them
    together hold more than OUTPUT_MAX_BYTES."""
    folders = []
    for folder in OUTPUT_ROOT.iterdir():
        try:
            age = time.time() - folder.stat().st_mtime
            if age > OUTPUT_MAX_AGE_S:
                shutil.rmtree(folder, ignore_errors=True)
            else:
                folders.append((age, _folder_bytes(folder), folder))
        except FileNotFoundError:  # another request removed it first
            pass
    total = sum(size for _, size, _ in folders)
    for _, size, folder in sorted(folders, reverse=True):  # oldest first
        if total <= OUTPUT_MAX_BYTES:
            break
        shutil.rmtree(folder, ignore_errors=True)
        total -= size


def _session_dir(request: Optional[gr.Request]) -> Path:
    """A new folder for one request's files, inside its browser session's folder (removed when the
    session ends, or by `_sweep` when too old or too much)."""
    OUTPUT_ROOT.mkdir(parents=True, exist_ok=True)
    _sweep()
    session = OUTPUT_ROOT / _session_name(request)
    session.mkdir(exist_ok=True)
    os.utime(session)  # an active session's folder stays young
    return Path(tempfile.mkdtemp(dir=session))


def _session_name(request: Optional[gr.Request]) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "", getattr(request, "session_hash", None) or "") or "anonymous"


def end_session(request: gr.Request) -> None:
    """Removes a closed browser session's files."""
    shutil.rmtree(OUTPUT_ROOT / _session_name(request), ignore_errors=True)


def _save_png(image: Image.Image, path: Path) -> str:
    """Lossless, so the page compares the real pixels (Gradio would re-encode a PIL image as lossy WebP);
    light compression, because on a CPU a 4 MP PNG at the default level costs about a second."""
    image.save(path, compress_level=1)
    return str(path)


PANEL_OUTPUTS = 6  # per encoder: its column, heading, thumbnail at true size, before/after slider, two downloads


def _panel_heading(method: str) -> str:
    """Names the model shown (a lite model under its architecture's panel says so)."""
    return f"### {zoo.METHODS[method].label}"


def _chosen(choice: str) -> list[str]:
    """The architectures chosen, each of which has its own panel (full or lite model alike)."""
    return list(ENCODERS.values()) if choice == BOTH else [ENCODERS[choice]]


def _kib(size: int) -> str:
    return f"{size / 1024:.1f} KiB"


def _true_size_html(jpeg: bytes, size: tuple[int, int], method: str) -> str:
    """The thumbnail at one screen pixel per thumbnail pixel, scrolling rather than shrinking, named
    by the model that made it (its file name too, for who reads the caption alone)."""
    source = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
    return (f'<div style="overflow:auto;max-height:70vh"><img src="{source}" width="{size[0]}" '
            f'height="{size[1]}" style="max-width:none" alt="thumbnail, {size[0]}x{size[1]}"></div>'
            f"<p>{html.escape(method)} thumbnail: {size[0]}x{size[1]} pixels, {_kib(len(jpeg))}</p>")


METRIC_ROWS = ["file size", "bpp", "size vs upload", "HR PSNR, RGB (dB)", "thumbnail PSNR (dB)", "HR SSIM",
               "LPIPS, RGB", "encode time (s)", "decode time (s)"]
UPLOAD_COLUMN = "your upload"
TABLE_FIGURES = ("psnr_hr", "psnr_lr", "ssim_hr", "lpips_rgb")  # what the table shows, all that is measured


def _metric_table(encoded: dict) -> pd.DataFrame:
    """Rows METRIC_ROWS; a column for the upload itself, then one per encoder shown. Quality reads
    "measuring ..." until `measure_quality` has filled the figures in."""
    upload_bytes, pixels = encoded["upload_bytes"], encoded["pixels"]
    table = {"": METRIC_ROWS,
             UPLOAD_COLUMN: [_kib(upload_bytes), f"{upload_bytes * 8 / pixels:.4f}", *[""] * 7]}
    for entry in encoded["results"]:
        size, figures = entry["bytes"], entry.get("figures")
        missed = "" if entry["reached_target"] else " (target out of reach)"
        ratio = (f"{upload_bytes / size:.1f}x smaller" if size < upload_bytes else
                 f"{size / upload_bytes:.1f}x larger")
        if figures is None:
            quality = ["measuring ..."] * 4
        else:
            lpips = "n/a" if figures["lpips_rgb"] is None else f"{figures['lpips_rgb']:.4f}"
            quality = [f"{figures['psnr_hr']:.2f}", f"{figures['psnr_lr']:.2f}", f"{figures['ssim_hr']:.4f}", lpips]
        table[entry["method"]] = [_kib(size), f"{entry['bpp']:.4f}{missed}", ratio, *quality,
                                  f"{entry['encode_s']:.2f}", f"{entry['decode_s']:.2f}"]
    return pd.DataFrame(table)


def _encode_summary(encoded: dict) -> str:
    """What the table cannot say plainly: the upload's own figures, and any thumbnail that saves nothing."""
    width, height = encoded["size"]
    upload_bpp = encoded["upload_bytes"] * 8 / encoded["pixels"]
    lines = [f"**{html.escape(encoded['name'])}**: {width}x{height}, {_kib(encoded['upload_bytes'])} "
             f"({upload_bpp:.3f} bpp) as uploaded."]
    for entry in encoded["results"]:
        if entry["bytes"] >= encoded["upload_bytes"]:
            lines.append(f"The {entry['method']} thumbnail ({_kib(entry['bytes'])}) is not smaller than your upload: "
                         f"at this target it saves nothing; choose a target below {upload_bpp:.2f} bpp.")
    return "\n\n".join(lines)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@outputs(PANEL_OUTPUTS * len(ENCODERS) + 4)
@user_errors
@gpu
def encode(photo: Union[None, str, dict], choice: str, target_bpp: float, lite: bool, previous: Optional[dict],
           request: gr.Request = None, progress=gr.Progress()) -> list:
    """Encodes the upload with the chosen encoder(s), or with `lite` their lite models: per encoder
    the thumbnail at true size, before/after slider and downloads; the table without the quality
    figures, which `measure_quality` adds (SSIM and LPIPS take longer than the codec on a CPU)."""
    target_bpp = _checked_settings(choice, target_bpp)
    photo, path, name = _open_photo(photo)
    folder, stem, digest = _session_dir(request), Path(name).stem, _digest(path)
    original, chosen, panels = str(folder / "original.png"), _chosen(choice), []
    curves = previous.get("curves") if previous and previous.get("digest") == digest else None
    encoded = {"stage": "encoded", "name": name, "digest": digest, "original": original, "size": photo.size,
               "pixels": photo.width * photo.height, "upload_bytes": path.stat().st_size, "results": [],
               "curves": curves}
    # The PNGs (1.5 s each for a 6K photo) are written while the models work: zlib releases the GIL.
    with ThreadPoolExecutor(max_workers=1) as writer:
        writes = [writer.submit(_save_png, photo, Path(original))]
        for architecture in ENCODERS.values():
            if architecture not in chosen:
                panels += [gr.Column(visible=False), *[gr.skip()] * (PANEL_OUTPUTS - 1)]
                continue
            method = zoo.LITE_MODEL_OF[architecture] if lite else architecture
            progress(chosen.index(architecture) / len(chosen), desc=f"Encoding with {method}")
            result = run_method(method, photo, target_bpp)
            thumbnail = folder / f"{stem}_{method}_{target_bpp:.2f}bpp.jpg"
            thumbnail.write_bytes(result.jpeg)
            restored = str(folder / f"{stem}_{method}_{target_bpp:.2f}bpp_restored.png")
            writes.append(writer.submit(_save_png, result.restored, Path(restored)))
            panels += [gr.Column(visible=True), _panel_heading(method),
                       _true_size_html(result.jpeg, result.thumbnail.size, method),
                       (original, restored), str(thumbnail), restored]
            encoded["results"].append({"method": method, "target_bpp": target_bpp, "thumbnail": str(thumbnail),
                                       "restored": restored, "bytes": len(result.jpeg), "bpp": result.bpp,
                                       "reached_target": result.reached_target, "encode_s": result.encode_s,
                                       "decode_s": result.decode_s})
        for write in writes:
            write.result()  # a failed write fails the request
    return [*panels, gr.Column(visible=True), _metric_table(encoded), encoded,
            _encode_summary(encoded) + "\n\nMeasuring quality ..."]


@outputs(3)
@user_errors
def measure_quality(encoded: Optional[dict]) -> list:
    """The table's quality figures for what `encode` just showed, read back from its files; does
    nothing where `encode` failed (the state is then the previous, measured one)."""
    if not encoded or encoded["stage"] != "encoded":
        return [gr.skip(), gr.skip(), gr.skip()]
    photo = Image.open(encoded["original"]).convert("RGB")
    with_lpips = lpips_available()
    for entry in encoded["results"]:
        jpeg = Path(entry["thumbnail"]).read_bytes()
        thumbnail, restored = (Image.open(source).convert("RGB") for source in (io.BytesIO(jpeg), entry["restored"]))
        result = MethodResult(entry["method"], entry["target_bpp"], jpeg, entry["bpp"], thumbnail, restored,
                              entry["encode_s"], entry["decode_s"])
        figures = measure(photo, result, with_lpips=with_lpips, figures=TABLE_FIGURES)
        entry["figures"] = {key: figures[key] for key in TABLE_FIGURES}
    encoded["stage"] = "measured"
    note = "" if with_lpips else ("\n\nLPIPS reads n/a: its weights are not on this server "
                                  "(`python -m hyperthumb lpips-weights` fetches them once).")
    return [_metric_table(encoded), encoded, _encode_summary(encoded) + note]


def chart_region(size: tuple[int, int], device: str) -> tuple[int, int, int, int]:
    """The part of the photo the chart is computed on, at native scale: all of it when it fits the
    device's budget, otherwise a centre region of at most CHART_SIDE x CHART_SIDE (cut on the
    8-pixel grid, so that its JPEG blocks are the photo's own)."""
    side = CHART_SIDE.get(device, CHART_SIDE["cpu"])
    width, height = size
    if width <= side and height <= side:
        return 0, 0, width, height
    region_w, region_h = min(width, side), min(height, side)
    left, top = (width - region_w) // 2 // 8 * 8, (height - region_h) // 2 // 8 * 8
    return left, top, left + region_w, top + region_h


def _region_preview(photo: Image.Image, box: tuple[int, int, int, int], path: Path) -> str:
    """The photo, small, with the chart's region outlined."""
    preview = photo.copy()
    preview.thumbnail((640, 640), Image.LANCZOS)
    scale = preview.width / photo.width
    ImageDraw.Draw(preview).rectangle([round(v * scale) for v in box], outline=(255, 40, 40),
                                      width=max(2, preview.width // 160))
    return _save_png(preview, path)


@outputs(4)
@user_errors
@gpu
def rate_distortion_chart(encoded: Optional[dict], request: gr.Request = None, progress=gr.Progress()) -> list:
    """HR PSNR against bpp for every method on the photo (or its centre region) at native scale,
    with the shown results starred at exactly the table's figures. Runs after the table, so the
    user never waits for it; the curves are kept for the next target on the same photo."""
    if not encoded or encoded["stage"] != "measured":
        return [gr.skip()] * 4
    photo = Image.open(encoded["original"]).convert("RGB")
    box = chart_region(photo.size, hyperthumb.default_device())
    whole = box == (0, 0, *photo.size)
    if encoded["curves"] is None or tuple(encoded["curves"]["box"]) != box:
        region = photo.crop(box)
        runs = [(method, rate) for method in CHART_METHODS for rate in CHART_RATES]
        rows = [{"method": method, **measure(region, run_method(method, region, rate), figures=("psnr_hr",))}
                for method, rate in progress.tqdm(runs, desc="Rate-distortion chart")]
        encoded["curves"] = {"box": box, "rows": rows}
    where = (f"the whole {photo.width}x{photo.height} photo" if whole else
             f"the centre {box[2] - box[0]}x{box[3] - box[1]} region of this {photo.width}x{photo.height} photo "
             f"(outlined)")
    title = f"HR PSNR against bpp on {where}, at native scale"
    figure = charts.rate_distortion_figure(encoded["curves"]["rows"], "psnr_hr", title)
    marks = [{"method": entry["method"], "bpp": entry["bpp"], "psnr_hr": entry["figures"]["psnr_hr"]}
             for entry in encoded["results"]]
    charts.add_result_marks(figure, marks, "psnr_hr", "this result" if whole else "this result, whole photo")
    preview = _region_preview(photo, box, _session_dir(request) / "chart_region.png")
    encoded["stage"] = "charted"
    return [figure, preview, encoded, gr.skip()]


def _model_note(encoder: str) -> str:
    try:
        summary = checkpoint_summary(encoder)
    except HyperThumbError:
        return f"{encoder} (no checkpoint found)"
    steps, saved = summary["trained_steps"], summary["saved"]
    if not steps:
        return f"{encoder} (checkpoint of unknown step)"
    return f"{encoder} (checkpoint at step {steps:,}" + (f", saved {saved[:10]})" if saved else ")")


@outputs(3)
@user_errors
@gpu
def decode(path: Optional[str], fast: bool = False, request: gr.Request = None) -> list:
    """A HyperThumb JPEG -> the restored HR photo, using the model its marker names (or its fast decoder)."""
    upload = _upload(path)
    if upload is None:
        raise UserError("Upload a HyperThumb JPEG first.")
    path, name = upload
    jpeg = path.read_bytes()
    try:
        marker = find_marker(jpeg) if jpeg else None
        if marker and marker.width * marker.height > APP_MAX_PIXELS:
            raise UserError(f"Could not use {name}: it would restore a {marker.width}x{marker.height} photo, over "
                            f"this server's limit of {APP_MAX_PIXELS / 1e6:g} MP.")
        photo = hyperthumb.decode(jpeg, fast=fast)
    except CheckpointNotFoundError:
        raise UserError(f"Could not use {name}: it was made by the {marker.encoder!r} model, which this server "
                        "does not have.") from None
    except HyperThumbError as exc:
        raise UserError(_with_file_name(exc, path, name)) from None
    encoder = marker.encoder
    suffix = "_restored_fast" if fast else "_restored"
    restored = _save_png(photo, _session_dir(request) / f"{Path(name).stem}{suffix}.png")
    note = (f"Restored a {photo.size[0]}x{photo.size[1]} photo from {html.escape(name)}, a {_kib(len(jpeg))} thumbnail "
            f"({len(jpeg) * 8 / (photo.size[0] * photo.size[1]):.4f} bpp), with "
            f"{_model_note(zoo.FAST_DECODER_OF.get(encoder, encoder) if fast else encoder)} "
            f"on {hyperthumb.default_device()}.")
    return [restored, restored, note]


@outputs(1)
@user_errors
def check_thumbnail(path: Optional[str]) -> str:
    """A thumbnail's first answer, from its marker alone: what it will restore, or what is wrong with it."""
    upload = _upload(path)
    if upload is None:
        return ""
    path, name = upload
    try:
        marker = find_marker(path.read_bytes())
    except HyperThumbError as exc:
        raise UserError(_with_file_name(exc, path, name)) from None
    return (f"**{html.escape(name)}**: a {marker.encoder} thumbnail of a {marker.width}x{marker.height} photo. "
            "Press Decode.")


def decode_again(path: Optional[str], fast: bool, request: gr.Request = None) -> list:
    """The Fast decoder switch decodes the file again, as the Encode tab's switches encode again."""
    return [gr.skip()] * 3 if _upload(path) is None else decode(path, fast, request)


STUDY_KEYS_JS = """() => {
  const click = (id) => document.querySelector(`#${id}`)?.click();
  const keys = {a: "study-left-better", b: "study-right-better", "=": "study-same", " ": "study-next",
                f: "study-flicker", u: "study-undo"};
  document.addEventListener("keydown", (event) => {
    const typing = ["INPUT", "TEXTAREA"].includes(event.target.tagName);
    const shortcut = event.ctrlKey || event.metaKey || event.altKey;  // the browser's, not a vote
    const crops = document.querySelector("#study-crops");
    const shown = crops && crops.getClientRects().length > 0;  // only while the study's tab is open
    if (typing || shortcut || !shown || !(event.key in keys)) return;
    event.preventDefault();
    click(keys[event.key]);
  });
}"""
# Flicker: the three crops stacked in one place, each press showing the next (original, A, B).
STUDY_FLICKER_JS = """() => {
  const box = document.querySelector("#study-crops");
  const views = ["study-original", "study-left", "study-right"];
  const next = box.classList.contains("flicker") ? (views.indexOf(box.dataset.shown) + 1) % 3 : 0;
  box.classList.add("flicker");
  box.dataset.shown = views[next];
  views.forEach((id) => document.querySelector(`#${id}`).classList.toggle("shown", id === views[next]));
}"""
STUDY_SIDE_BY_SIDE_JS = """() => document.querySelector("#study-crops").classList.remove("flicker")"""
# 100 % zoom: each crop at its own pixel size, never scaled to the column.
STUDY_CSS = """<style>
#study-crops img { width: auto !important; height: auto !important; max-width: none !important;
                   max-height: none !important; object-fit: none !important; image-rendering: pixelated; }
#study-crops.flicker { display: grid !important; }
#study-crops.flicker > * { grid-area: 1 / 1; }
#study-crops.flicker > :not(.shown) { visibility: hidden; }
</style>"""


def _session_id(request: Optional[gr.Request]) -> str:
    """The browser session a trial is issued to; votes are accepted only from it."""
    return getattr(request, "session_hash", None) or "anonymous"


def _annotator(name: str, browser_id: str) -> str:
    return (name or "").strip()[:64] or browser_id or "anonymous"


def _study_summary(summary: dict) -> str:
    if not summary["votes"]:
        return "No counted votes yet."
    metrics = summary["metrics"]
    lines = [f"**{summary['votes']} votes** from {summary['annotators']} annotators (median "
             f"{summary['median_seconds']} s a vote); {summary['excluded_votes']} votes of "
             f"{len(summary['flagged_annotators'])} annotators who missed the practice trial are left out."]
    if summary["agreement"]["annotator_pairs"]:
        lines.append(f"Where several people judged the same crop, pair and bpp, they agreed "
                     f"{summary['agreement']['agree_pct']} % of the time.")
    for name, label in (("psnr", "higher PSNR"), ("lpips", "lower LPIPS")):
        if metrics[name]["agree_pct"] is not None:
            lines.append(f"People preferred the side with the {label} in {metrics[name]['agree_pct']} % of decided "
                         f"votes (correlation {metrics[name]['correlation']}).")
    return "\n\n".join(lines)


def _practice_feedback(vote: dict) -> str:
    """What an annotator learns once the practice trial, whose answer is known, is answered."""
    blurred = "B" if vote["expected"] == "left" else "A"
    if vote["choice"] == vote["expected"]:
        return f"Practice trial passed (side {blurred} was the blurred one): your votes count from now on."
    return (f"That was the practice trial, and side {blurred} was the blurred one: the votes under this name are "
            "left out of the results. Enter another name to take the practice trial again.")


def study_handlers(store: VoteStore, pool: Optional[StudyPool]) -> dict[str, Callable]:
    """The study's handlers, bound to its vote file and pool."""
    def require_pool() -> StudyPool:
        if pool is None:
            raise UserError("No study pool on this server: make one with `python -m hyperthumb study prepare` "
                            f"and point {STUDY_DIR_ENV} at it.")
        return pool

    def progress(session: str) -> str:
        return f"Votes in this session: {store.session_votes(session)}."

    def show(session: str, trial_id: str, paths: list[Path], note: str, request: Optional[gr.Request]) -> list:
        folder = _session_dir(request)  # served under neutral names: the pool's file names say the method
        shown = [str(shutil.copyfile(source, folder / f"{side}.png"))
                 for source, side in zip(paths, ("original", "A", "B"))]
        return [trial_id, *shown, progress(session), note]

    @outputs(6)
    @user_errors
    def trial(name: str, browser_id: str, shown_trial: str = "", request: gr.Request = None) -> list:
        """A new trial, never the one just shown where the pool has another."""
        session = _session_id(request)
        skipped = store.condition_of(shown_trial) if shown_trial else None
        drawn = require_pool().draw(store, session, _annotator(name, browser_id), random.Random(), skipped)
        answered = store.vote_on(shown_trial) if shown_trial else None
        note = (_practice_feedback(answered) + " " if answered and answered["practice"] else "") + \
            ("Practice trial: one side is clearly worse. " if drawn.issued.practice else "") + \
            "Which side is closer to the original? a, b, = (the same); space for another crop."
        return show(session, drawn.issued.id, [drawn.original, drawn.left, drawn.right], note, request)

    @outputs(2)
    @user_errors
    def vote(trial_id: str, choice: str, request: gr.Request = None) -> list:
        try:
            recorded = store.vote(trial_id or "", _session_id(request), choice)
        except VoteRefused as exc:
            raise UserError(f"Vote not recorded: {exc}.") from None
        status = _practice_feedback(recorded) if recorded["practice"] else "Vote recorded."
        return [progress(_session_id(request)), status]

    def first_trial(name: str, browser_id: str, shown_trial: str, request: gr.Request = None) -> list:
        """The first trial as the tab opens, so that it never shows empty crops (a trial on screen stays)."""
        return [gr.skip()] * 6 if shown_trial else trial(name, browser_id, "", request)

    def vote_as(choice: str) -> Callable:
        def cast(trial_id: str, request: gr.Request = None) -> list:
            return vote(trial_id, choice, request)
        return cast

    @outputs(6)
    @user_errors
    def undo(request: gr.Request = None) -> list:
        """Removes the session's last vote and shows its trial again, to be judged anew."""
        session = _session_id(request)
        undone = store.undo(session)
        if undone is None:
            raise UserError("This session has no vote to undo.")
        paths = require_pool().trial_images(undone["crop"], undone["bpp"], undone["method_left"],
                                            undone["method_right"])
        return show(session, undone["trial_id"], paths, "Your last vote was removed: judge this trial again.",
                    request)

    @outputs(5)
    @user_errors
    def results() -> list:
        summary = study_results(store.votes(), require_pool().methods, store.flagged_annotators(), samples=500)
        scores = pd.DataFrame([{**s, "bpp": "all" if s["bpp"] is None else s["bpp"]} for s in summary["scores"]],
                              columns=["method", "bpp", "score", "low", "high", "votes"])
        pairs = pd.DataFrame(summary["pairs"], columns=["method_a", "method_b", "bpp", "votes", "a_preferred",
                                                        "b_preferred", "same"])
        return [scores_figure(summary), win_rate_figure(summary), scores, pairs, _study_summary(summary)]

    def require_admin(token: str, action: str) -> None:
        expected = os.environ.get(ADMIN_TOKEN_ENV, "")
        if not expected or not secrets.compare_digest((token or "").encode(), expected.encode()):
            raise UserError(f"{action} needs the admin token ({ADMIN_TOKEN_ENV} on the server).")

    @outputs(3)
    @user_errors
    def export(token: str, request: gr.Request = None) -> list:
        require_admin(token, "Exporting the raw votes")
        folder = _session_dir(request)
        parquet = store.to_parquet(folder / "hyperthumb_votes.parquet")
        return [str(store.to_csv(folder / "hyperthumb_votes.csv")), parquet and str(parquet),
                f"Exported {len(store.votes())} votes."]

    @user_errors
    def reset(token: str) -> str:
        require_admin(token, "Resetting the study")
        removed, backup = store.reset()
        return f"Removed {removed} votes; a copy of them is kept on the server as {backup.name}."

    @outputs(4)
    @user_errors
    def pick(photo: Union[None, str, dict], event: gr.SelectData, request: gr.Request = None) -> list:
        """The crop centred where the user clicked on their photo, outlined on a small copy."""
        image, _path, _name = _open_photo(photo)
        x, y = event.index
        box = box_around((x, y), image.size, require_pool().crop_side)
        preview = _region_preview(image, box, _session_dir(request) / "study_crop.png")
        return [x, y, preview, f"The crop: {box[2] - box[0]}x{box[3] - box[1]} pixels centred at ({x}, {y})."]

    @user_errors
    @gpu
    def add_photo(photo: Union[None, str, dict], x: Optional[float], y: Optional[float],
                  progress=gr.Progress()) -> str:
        """Adds the upload to the pool, cut where the user clicked or at its most detailed regions."""
        image, path, name = _open_photo(photo)
        centre = None if x is None or y is None else (x, y)
        try:
            added = add_to_pool(require_pool(), image, name, centre, progress=progress)
        except InvalidImageError as exc:
            raise UserError(_with_file_name(exc, path, name)) from None
        except HyperThumbError as exc:
            raise UserError(f"Could not add {html.escape(name)}: {exc}.") from None
        return (f"Added {html.escape(name)} to the study pool: {len(added)} crop(s), each with every method at "
                f"{', '.join(f'{bpp:g}' for bpp in require_pool().bpps)} bpp. Trials draw on them from now on, "
                f"least-voted first.")

    return {"trial": trial, "first_trial": first_trial, "vote": vote, "vote_as": vote_as, "undo": undo,
            "results": results, "export": export, "reset": reset, "pick": pick, "add_photo": add_photo}


def _photo_input(elem_id: str) -> gr.Image:
    """Preview and drag-and-drop; its events take the raw upload (`preprocess=False`), so that the
    app's own checks, not Gradio's, judge the file, and the file reaches the library unchanged."""
    return gr.Image(label=f"Photo ({PHOTO_FORMATS} ...)", type="filepath", sources=["upload", "clipboard"],
                    height=240, elem_id=elem_id)


def _encode_tab() -> None:
    with gr.Row():
        with gr.Column(scale=1):
            photo = _photo_input("photo")
            choice = gr.Radio([*ENCODERS, BOTH], value=next(iter(ENCODERS)), label="Encoder")
            lite = gr.Checkbox(False, label="Lite models", info=LITE_INFO, elem_id="lite")
            bpp = gr.Slider(*BPP_RANGE, value=0.3, step=0.01, label="Target bpp (bits per original pixel)",
                            info="Re-encodes when you let go of the handle; after typing a value, press Encode.",
                            elem_id="target-bpp")
            run = gr.Button("Encode", variant="primary", elem_id="encode")
            gr.Examples(EXAMPLES, inputs=[photo], label="Examples (credits in examples/CREDITS.md)",
                        examples_per_page=8)
        with gr.Column(scale=2):
            status = gr.Markdown(label="Status", elem_id="encode-status")
            with gr.Column(visible=False) as table_box:  # no empty table before the first result
                metrics = gr.Dataframe(label="Metrics", interactive=False, wrap=True, elem_id="metrics")
            panels = []
            for method in ENCODERS.values():  # one above the other: each gets the column's whole width
                with gr.Column(visible=method == zoo.ENCODER_METHODS[0]) as column:
                    panels += [
                        column,
                        gr.Markdown(_panel_heading(method), elem_id=f"heading-{method}"),
                        # Labels without the model's name: the heading above names it, lite or not.
                        gr.HTML(label="Thumbnail at true size", elem_id=f"thumbnail-{method}"),
                        gr.ImageSlider(label="Original | reconstruction (drag the handle)", type="filepath",
                                       elem_id=f"slider-{method}"),
                        gr.File(label="Thumbnail JPEG"),
                        gr.File(label="Reconstruction PNG"),
                    ]
    with gr.Row():
        chart = gr.Plot(label="Rate-distortion for this photo (computed after the result)", elem_id="chart", scale=3)
        region = gr.Image(label="Region the chart was computed on", type="filepath", interactive=False, scale=1)
    encoded = gr.State()
    triggers = [(run.click, "encode", "Encodes a photo at a target bpp with RDBUnet, Transformer or both, full or lite."),
                (bpp.release, "encode_on_release", "The same as /encode; the page calls it when the slider is let go."),
                (choice.input, "encode_on_encoder_change", "The same as /encode; the page calls it when the "
                                                           "encoder choice changes."),
                (lite.input, "encode_on_lite_change", "The same as /encode; the page calls it when the lite "
                                                      "models are switched on or off.")]
    photo.upload(check_upload, photo, status, preprocess=False, api_visibility="private", show_progress="hidden")
    for trigger, api_name, description in triggers:
        shown = trigger(encode, [photo, choice, bpp, lite, encoded], [*panels, table_box, metrics, encoded, status],
                        api_name=api_name,
                        api_description=description, preprocess=False, trigger_mode="always_last",
                        show_progress="minimal", concurrency_id=MODEL_WORK)
        measured = shown.then(measure_quality, encoded, [metrics, encoded, status], api_visibility="private",
                              show_progress="minimal", show_progress_on=metrics, concurrency_id=MODEL_WORK)
        measured.then(rate_distortion_chart, encoded, [chart, region, encoded, status], api_visibility="private",
                      show_progress_on=chart, concurrency_id=MODEL_WORK)
    gr.Button("Measure", visible=False).click(
        measure_quality, encoded, [metrics, encoded, status], api_name="metrics",
        api_description="The quality figures of the session's last /encode result: metrics table, status.",
        concurrency_id=MODEL_WORK)
    gr.Button("Chart", visible=False).click(
        rate_distortion_chart, encoded, [chart, region, encoded, status], api_name="rate_distortion",
        api_description="The rate-distortion chart of the session's last measured result, and the region it "
                        "was computed on.", concurrency_id=MODEL_WORK)


def _decode_tab() -> None:
    gr.Markdown("Only have the small file? Upload a HyperThumb JPEG and get the full-resolution photo back.")
    with gr.Row():
        with gr.Column():
            thumbnail = gr.File(label="HyperThumb JPEG", file_types=[".jpg", ".jpeg"], type="filepath")
            fast = gr.Checkbox(label="Fast decoder", value=False, elem_id="decode-fast",
                               info="A one-block decoder for the same file: about 3x quicker, a little less faithful.")
            run = gr.Button("Decode", variant="primary", elem_id="decode")
        with gr.Column():
            note = gr.Markdown(label="Status", elem_id="decode-status")
            restored = gr.Image(label="Restored photo", type="filepath", interactive=False)
            download = gr.File(label="Restored PNG")
    run.click(decode, [thumbnail, fast], [restored, download, note], api_name="decode",
              api_description="Restores the full-resolution photo from a HyperThumb JPEG, with the model's full or "
                              "fast decoder; the note names the checkpoint.",
              concurrency_id=MODEL_WORK)
    fast.input(decode_again, [thumbnail, fast], [restored, download, note], api_visibility="private",
               concurrency_id=MODEL_WORK)
    thumbnail.upload(check_thumbnail, thumbnail, note, api_visibility="private", show_progress="hidden")


def _study_tab(demo: gr.Blocks, tab: gr.Tab, store: VoteStore, pool: Optional[StudyPool]) -> None:
    handlers = study_handlers(store, pool)
    gr.Markdown("A blind study: the original crop and two reconstructions of it at the same bpp, at 100 % zoom, "
                "made by two of the compared methods in random order. Which side is closer to the original? "
                "Keys: **a** (left), **b** (right), **=** (the same), **space** (another crop), **f** (flicker "
                "original / A / B), **u** (undo your last vote).")
    gr.HTML(STUDY_CSS)
    browser_id = gr.BrowserState("", storage_key="hyperthumb-annotator")
    with gr.Row():
        name = gr.Textbox(label="Your name (optional; otherwise an anonymous id kept in this browser)", scale=3)
        progress = gr.Markdown(label="Progress", elem_id="study-progress")
    status = gr.Markdown(label="Status", elem_id="study-status")
    trial_id = gr.Textbox("", visible=False, label="trial id")
    with gr.Row(elem_id="study-crops"):
        crops = [gr.Image(label=label, type="filepath", interactive=False, show_label=True, elem_id=elem_id,
                          buttons=[]) for label, elem_id in (("Original", "study-original"), ("A", "study-left"),
                                                              ("B", "study-right"))]
    with gr.Row():
        left = gr.Button("A is closer (a)", elem_id="study-left-better")
        same = gr.Button("The same (=)", elem_id="study-same")
        right = gr.Button("B is closer (b)", elem_id="study-right-better")
    with gr.Row():
        next_trial = gr.Button("Another crop (space)", elem_id="study-next")
        flicker = gr.Button("Flicker (f)", elem_id="study-flicker")
        side_by_side = gr.Button("Side by side")
        undo = gr.Button("Undo last vote (u)", elem_id="study-undo")
    trial_outputs = [trial_id, *crops, progress, status]
    for button, choice in ((left, "left"), (right, "right"), (same, "same")):
        button.click(handlers["vote_as"](choice), trial_id, [progress, status],
                     api_visibility="private").success(
            handlers["trial"], [name, browser_id, trial_id], trial_outputs, api_visibility="private")
    next_trial.click(handlers["trial"], [name, browser_id, trial_id], trial_outputs, api_name="study_trial",
                     api_description="A new trial for this session, other than the trial id given where the pool has "
                                     "another: trial id, original crop, A, B, progress, status.")
    gr.Button("Vote", visible=False).click(
        handlers["vote"], [trial_id, gr.Textbox(visible=False, label="choice: left, right or same")],
        [progress, status], api_name="study_vote",
        api_description="Answers a trial issued to this session, once: progress, status.")
    undo.click(handlers["undo"], None, trial_outputs, api_name="study_undo",
               api_description="Removes this session's last vote and returns its trial again: trial id, "
                               "original crop, A, B, progress, status.")
    tab.select(handlers["first_trial"], [name, browser_id, trial_id], trial_outputs, api_visibility="private")
    flicker.click(None, js=STUDY_FLICKER_JS)
    side_by_side.click(None, js=STUDY_SIDE_BY_SIDE_JS)
    demo.load(None, browser_id, browser_id, js="(id) => id || crypto.randomUUID()")
    demo.load(None, js=STUDY_KEYS_JS)
    with gr.Accordion("Results (public aggregate)", open=False):
        refresh = gr.Button("Show the results")
        summary = gr.Markdown(label="Summary")
        with gr.Row():
            scores_plot, matrix_plot = gr.Plot(label="Bradley-Terry scores"), gr.Plot(label="Win-rate matrix")
        scores = gr.Dataframe(label="Bradley-Terry score per method (all bpp, then per bpp)", interactive=False)
        pairs = gr.Dataframe(label="Votes per pair and bpp", interactive=False)
    refresh.click(handlers["results"], None, [scores_plot, matrix_plot, scores, pairs, summary],
                  api_name="study_results",
                  api_description="The aggregate: score chart, win-rate matrix, scores, votes per pair, summary.")
    with gr.Accordion("Add your own photo to the study", open=False):
        gr.Markdown("Your photo joins this server's study pool: it is encoded once with every method at every bpp "
                    "of the study (about a minute on a CPU), and crops of it are shown to every annotator. Click on "
                    "the photo to choose the crop; without a click, its most detailed regions are taken.")
        with gr.Row():
            upload = gr.Image(label=f"Photo ({PHOTO_FORMATS}; click on it to choose the crop)", type="filepath",
                              sources=["upload", "clipboard"], height=320, elem_id="study-upload")
            picked = gr.Image(label="The crop to be judged", type="filepath", interactive=False, height=320,
                              elem_id="study-picked", buttons=[])
        with gr.Row():
            centre_x = gr.Number(label="Crop centre x (a click sets it)", precision=0, elem_id="study-centre-x")
            centre_y = gr.Number(label="Crop centre y", precision=0, elem_id="study-centre-y")
        add = gr.Button("Add to the study", elem_id="study-add")
        add_status = gr.Markdown(label="Status", elem_id="study-add-status")
    upload.select(handlers["pick"], upload, [centre_x, centre_y, picked, add_status], preprocess=False,
                  api_visibility="private")
    upload.upload(lambda: [None, None, None], None, [centre_x, centre_y, picked], api_visibility="private")
    add.click(handlers["add_photo"], [upload, centre_x, centre_y], add_status, api_name="study_add_photo",
              api_description="Adds a photo to the study pool, its crop centred at (x, y) where given, else at its "
                              "most detailed regions: status.", preprocess=False, concurrency_id=MODEL_WORK)
    with gr.Accordion("Export or reset the votes (admin)", open=False):
        token = gr.Textbox(label=f"Admin token ({ADMIN_TOKEN_ENV})", type="password")
        with gr.Row():
            export_button = gr.Button("Export")
            reset_button = gr.Button("Reset: remove every vote (a copy stays on the server)", variant="stop")
        csv, parquet = gr.File(label="Votes (CSV)"), gr.File(label="Votes (Parquet, where pyarrow is installed)")
        admin_status = gr.Markdown(label="Status")
    export_button.click(handlers["export"], token, [csv, parquet, admin_status], api_name="study_export",
                        api_description="Every vote as CSV and Parquet; needs the admin token.")
    reset_button.click(handlers["reset"], token, admin_status, api_name="study_reset",
                       api_description="Removes every vote, keeping a copy on the server; needs the admin token.")


def _header() -> str:
    models = ", ".join(_model_note(encoder) for encoder in zoo.ENCODING_METHODS)
    return ("# HyperThumb\nA photo becomes an ordinary JPEG thumbnail, 4x smaller per side, from which a small "
            f"neural decoder restores the full photo.\n\nDevice: **{hyperthumb.default_device()}**. "
            f"Models: {models}.")


def build_demo(labels_db: Optional[str] = None, study_dir: Optional[str] = None) -> gr.Blocks:
    """The page, its model work queued two at a time across all users, so that they cannot exhaust memory.
    Photos users add to the study go beside the vote file unless HYPERTHUMB_STUDY_UPLOADS_DIR says where.
    Gradio's own copies of a session's files go when the session ends (`delete_cache`), ours by `end_session`."""
    store = VoteStore(labels_db or os.environ.get(LABELS_DB_ENV, ROOT / "app_data" / "labels.sqlite"))
    study_dir = study_dir or os.environ.get(STUDY_DIR_ENV, ROOT / "examples" / "study")
    uploads = os.environ.get(UPLOADS_DIR_ENV, store.path.parent / "study_uploads")  # this deployment's data
    pool = StudyPool(study_dir, uploads) if (Path(study_dir) / MANIFEST).is_file() else None
    with gr.Blocks(title="HyperThumb", delete_cache=(600, OUTPUT_MAX_AGE_S)) as demo:
        gr.Markdown(_header(), elem_id="header")
        with gr.Tab("Encode"):
            _encode_tab()
        with gr.Tab("Decode"):
            _decode_tab()
        with gr.Tab("Label (blind study)") as study_tab:
            _study_tab(demo, study_tab, store, pool)
        demo.unload(end_session)
    return demo.queue(default_concurrency_limit=2)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the HyperThumb web app.")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--share", action="store_true", default=os.environ.get(SHARE_ENV) == "1",
                        help=f"ask Gradio for a public link (also: {SHARE_ENV}=1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    keep_freed_memory()
    build_demo().launch(server_name=args.host, server_port=args.port, share=args.share)


if __name__ == "__main__":
    main()
