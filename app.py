"""The HyperThumb web app: encode a photo at a target bpp, compare the encoders, decode, and label.

    python app.py [--share] [--host 127.0.0.1] [--port 7860]

A thin page over the `hyperthumb` library: every upload goes through `image_io.load_image`, each
handler calls the library and formats its result, and bad input becomes a `gr.Error` sentence.
The same file runs as a Hugging Face Space (README front matter: `sdk: gradio`, `app_file: app.py`).
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import io
import logging
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import gradio as gr
import pandas as pd
import plotly.graph_objects as go
from PIL import Image

import hyperthumb
from hyperthumb import charts
from hyperthumb.errors import HyperThumbError
from hyperthumb.image_io import load_image
from hyperthumb.labels import CHOICES, LabelStore
from hyperthumb.methods import BASELINE, MethodResult, measure, run_method
from hyperthumb.metrics import lpips_available

ROOT = Path(__file__).resolve().parent
EXAMPLES = sorted(str(path) for path in (ROOT / "examples").glob("*.jpg"))
ENCODERS = {"RDBUnet": "rdbunet", "Transformer": "transformer"}
BOTH = "Both, side by side"
LABEL_METHODS = ("rdbunet", "transformer", BASELINE)
CHART_RATES = (0.1, 0.2, 0.3, 0.5)
CHART_LONG_SIDE = 768  # the chart runs 3 methods x 5 rates: on a copy this size it stays quick on a CPU
LABELS_DB_ENV = "HYPERTHUMB_LABELS_DB"
SHARE_ENV = "HYPERTHUMB_SHARE"
MODEL_WORK = "model"  # one queue for every event that runs a model, so the limit holds across them
OUTPUT_ROOT = Path(tempfile.gettempdir()) / "hyperthumb-app"
OUTPUT_MAX_AGE_S = 3600  # Gradio has copied a request's files into its own cache long before this

log = logging.getLogger("hyperthumb.app")

try:  # on a ZeroGPU Space, GPU work must run inside spaces.GPU
    import spaces

    gpu = spaces.GPU
except ImportError:
    def gpu(function: Callable) -> Callable:
        return function


def user_errors(handler: Callable) -> Callable:
    """Turns the library's errors into a sentence in the page, and anything unexpected into a short
    message (traceback in the server log), so that no input can crash the page or show a traceback."""
    @functools.wraps(handler)
    def guarded(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except gr.Error:
            raise
        except HyperThumbError as exc:
            message = str(exc).rstrip(".")
            raise gr.Error(f"{message[:1].upper()}{message[1:]}.") from None
        except Exception:
            log.exception("%s failed", handler.__name__)
            raise gr.Error("Something went wrong on the server while handling this request; "
                           "please try again or use another photo.") from None
    return guarded


def _open_upload(path: Optional[str], what: str = "a photo") -> Image.Image:
    if not path:
        raise gr.Error(f"Upload {what} first, or pick an example.")
    return load_image(path)


def _fresh_dir() -> Path:
    """A new folder for one request's files; folders older than OUTPUT_MAX_AGE_S are removed."""
    OUTPUT_ROOT.mkdir(parents=True, exist_ok=True)
    for old in OUTPUT_ROOT.iterdir():
        try:
            if time.time() - old.stat().st_mtime > OUTPUT_MAX_AGE_S:
                shutil.rmtree(old, ignore_errors=True)
        except FileNotFoundError:  # another request removed it first
            pass
    return Path(tempfile.mkdtemp(dir=OUTPUT_ROOT))


def _save_png(image: Image.Image, path: Path) -> str:
    """Lossless, so the page compares the real pixels (Gradio would re-encode a PIL image as lossy WebP);
    light compression, because on a CPU a 4 MP PNG at the default level costs about a second."""
    image.save(path, compress_level=1)
    return str(path)


def _chosen(choice: str) -> list[str]:
    return list(ENCODERS.values()) if choice == BOTH else [ENCODERS[choice]]


METRIC_ROWS = ["achieved bpp", "file size", "compression ratio vs upload", "HR PSNR, RGB (dB)",
               "thumbnail PSNR (dB)", "HR SSIM", "LPIPS, RGB", "encode time (s)", "decode time (s)", "device"]


def _metric_column(result: MethodResult, figures: Optional[dict], original_bytes: int) -> list[str]:
    """One method's values for METRIC_ROWS; `figures` is None while the quality is being measured."""
    missed = "" if result.reached_target else f" (the model cannot reach {result.target_bpp:.2f} on this photo)"
    if figures is None:
        quality = ["measuring ..."] * 4
    else:
        lpips = ("unavailable: weights not provisioned (python -m hyperthumb lpips-weights)"
                 if figures["lpips_rgb"] is None else f"{figures['lpips_rgb']:.4f} (Y {figures['lpips_y']:.4f})")
        quality = [f"{figures['psnr_hr']:.2f} (Y {figures['psnr_hr_y']:.2f})", f"{figures['psnr_lr']:.2f}",
                   f"{figures['ssim_hr']:.4f}", lpips]
    return [f"{result.bpp:.4f}{missed}", f"{len(result.jpeg) / 1024:.1f} KiB ({len(result.jpeg)} bytes)",
            f"{original_bytes / len(result.jpeg):.1f} : 1", *quality, f"{result.encode_s:.2f}",
            f"{result.decode_s:.2f}", hyperthumb.default_device()]


@user_errors
@gpu
def encode(path: Optional[str], choice: str, target_bpp: float, progress=gr.Progress()) -> list:
    """Encodes the upload with the chosen encoder(s): per encoder panel the thumbnail at true size,
    before/after slider and downloads, then the metrics table without the quality rows, and for
    `measure_quality` where the files are (SSIM and LPIPS take longer than the codec on a CPU)."""
    photo = _open_upload(path)
    original_bytes = os.path.getsize(path)
    folder = _fresh_dir()
    original = _save_png(photo, folder / "original.png")
    stem = Path(path).stem
    chosen, panels, table = _chosen(choice), [], {"": METRIC_ROWS}
    encoded = {"original": original, "original_bytes": original_bytes, "results": []}
    for method in ENCODERS.values():
        if method not in chosen:
            panels += [gr.Column(visible=False), None, None, None, None]
            continue
        progress(chosen.index(method) / len(chosen), desc=f"Encoding with {method}")
        result = run_method(method, photo, target_bpp)
        thumbnail = folder / f"{stem}_{method}_{target_bpp:.2f}bpp.jpg"
        thumbnail.write_bytes(result.jpeg)
        restored = _save_png(result.restored, folder / f"{stem}_{method}_{target_bpp:.2f}bpp_restored.png")
        width, height = result.thumbnail.size
        panels += [gr.Column(visible=True), gr.Image(str(thumbnail), width=width, height=height),
                   (original, restored), str(thumbnail), restored]
        table[method] = _metric_column(result, None, original_bytes)
        encoded["results"].append({"method": method, "target_bpp": target_bpp, "thumbnail": str(thumbnail),
                                   "restored": restored, "bpp": result.bpp, "encode_s": result.encode_s,
                                   "decode_s": result.decode_s})
    return [*panels, pd.DataFrame(table), encoded]


@user_errors
def measure_quality(encoded: Optional[dict]) -> pd.DataFrame:
    """The full metrics table for what `encode` just showed, read back from its files."""
    if not encoded:
        raise gr.Error("Encode a photo first.")
    photo, table = Image.open(encoded["original"]).convert("RGB"), {"": METRIC_ROWS}
    for entry in encoded["results"]:
        jpeg = Path(entry["thumbnail"]).read_bytes()
        thumbnail, restored = (Image.open(source).convert("RGB") for source in (io.BytesIO(jpeg), entry["restored"]))
        result = MethodResult(entry["method"], entry["target_bpp"], jpeg, entry["bpp"], thumbnail, restored,
                              entry["encode_s"], entry["decode_s"])
        figures = measure(photo, result, with_lpips=lpips_available())
        table[result.method] = _metric_column(result, figures, encoded["original_bytes"])
    return pd.DataFrame(table)


@user_errors
@gpu
def rate_distortion_chart(path: Optional[str], choice: str, target_bpp: float, progress=gr.Progress()) -> go.Figure:
    """HR PSNR against bpp for both encoders and the baseline on a downscaled copy of the upload;
    runs after the main result, so the user never waits for it."""
    photo = _open_upload(path)
    full_size = photo.size
    photo.thumbnail((CHART_LONG_SIDE, CHART_LONG_SIDE), Image.LANCZOS)
    current = round(float(target_bpp), 3)
    highlighted = _chosen(choice)[0]
    runs = [(method, rate) for method in (*ENCODERS.values(), BASELINE) for rate in sorted({*CHART_RATES, current})]
    rows, highlight = [], None
    for method, rate in progress.tqdm(runs, desc="Rate-distortion chart"):
        row = {"method": method, **measure(photo, run_method(method, photo, rate), with_lpips=False)}
        rows.append(row)
        if (method, rate) == (highlighted, current):
            highlight = row
    scaled = "" if photo.size == full_size else f", downscaled from {full_size[0]}x{full_size[1]}"
    title = f"This photo at {photo.size[0]}x{photo.size[1]}{scaled}; star: {highlighted} at {current} bpp"
    return charts.rate_distortion_figure(rows, "psnr_hr", highlight, title)


@user_errors
@gpu
def decode(path: Optional[str]) -> tuple[str, str, str]:
    """A HyperThumb JPEG -> the restored HR photo, using the model its marker names."""
    if not path:
        raise gr.Error("Upload a HyperThumb JPEG first.")
    jpeg = Path(path).read_bytes()
    photo = hyperthumb.decode(jpeg)
    restored = _save_png(photo, _fresh_dir() / f"{Path(path).stem}_restored.png")
    note = (f"Restored a {photo.size[0]}x{photo.size[1]} photo from a {len(jpeg) / 1024:.1f} KiB thumbnail "
            f"({len(jpeg) * 8 / (photo.size[0] * photo.size[1]):.4f} bpp).")
    return restored, restored, note


@user_errors
@gpu
def new_pair(path: Optional[str], target_bpp: float, progress=gr.Progress()) -> tuple:
    """Two methods drawn at random in random order, both at the same bpp; their names stay in the
    session state (never sent to the page) until the user has judged."""
    photo = _open_upload(path)
    methods = random.sample(LABEL_METHODS, 2)
    folder, shown, figures = _fresh_dir(), [], []
    for side, method in zip("AB", methods):
        progress(len(shown) / 2, desc=f"Reconstruction {side}")
        result = run_method(method, photo, target_bpp)
        shown.append(_save_png(result.restored, folder / f"{side}.png"))
        figures.append(measure(photo, result, with_lpips=lpips_available()))
    pair = {"image_sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(), "methods": methods,
            "bpp": float(target_bpp), "metrics": figures}
    original = _save_png(photo, folder / "original.png")
    return original, (shown[0], shown[1]), pair, "Which reconstruction is closer to the original?"


def label_handlers(store: LabelStore) -> tuple[Callable, Callable]:
    """The two handlers that touch the label file, bound to `store`."""
    @user_errors
    def submit(pair: Optional[dict], choice: Optional[str], note: str) -> tuple[None, str]:
        if not pair:
            raise gr.Error("Show a pair first, then judge it.")
        if choice not in CHOICES:
            raise gr.Error("Pick A, B or \"they look the same\" first.")
        method_a, method_b = pair["methods"]
        label_id = store.add(pair["image_sha256"], method_a, method_b, pair["bpp"], choice,
                             pair["metrics"][0], pair["metrics"][1], note or "")
        return None, f"Saved label #{label_id}. A was **{method_a}**, B was **{method_b}**."

    @user_errors
    def results() -> tuple:
        rates = store.win_rates()
        table = pd.DataFrame(rates, columns=["method", "comparisons", "wins", "ties", "losses", "win_rate"])
        csv = store.to_csv(_fresh_dir() / "hyperthumb_labels.csv")
        return charts.win_rate_figure(rates), table, str(csv)

    return submit, results


def _encode_tab() -> None:
    with gr.Row():
        with gr.Column(scale=1):
            photo = gr.File(label="Photo (JPEG, PNG, WebP, TIFF ...)", file_types=["image"], type="filepath",
                            elem_id="photo")
            gr.Examples(EXAMPLES, inputs=[photo], label="Examples (credits in examples/CREDITS.md)")
            choice = gr.Radio([*ENCODERS, BOTH], value="RDBUnet", label="Encoder")
            bpp = gr.Slider(0.05, 0.8, value=0.3, step=0.01, label="Target bpp (bits per original pixel)",
                            elem_id="target-bpp")
            run = gr.Button("Encode", variant="primary", elem_id="encode")
        with gr.Column(scale=2):
            panels = []
            with gr.Row():
                for name, method in ENCODERS.items():
                    with gr.Column(visible=method == "rdbunet") as column:
                        gr.Markdown(f"### {name}")
                        panels += [
                            column,
                            gr.Image(label="Thumbnail at true size (the JPEG file)", type="filepath",
                                     interactive=False, elem_id=f"thumbnail-{method}"),
                            gr.ImageSlider(label="Original | reconstruction", type="filepath",
                                           elem_id=f"slider-{method}"),
                            gr.File(label="Thumbnail JPEG (decodes in the Decode tab and the CLI)"),
                            gr.File(label="Reconstruction PNG"),
                        ]
            metrics = gr.Dataframe(label="Metrics", interactive=False, wrap=True)
    chart = gr.Plot(label="Rate-distortion for this photo (computed after the result)", elem_id="chart")
    encoded = gr.State()
    shown = run.click(encode, [photo, choice, bpp], [*panels, metrics, encoded], api_name="encode",
                      concurrency_id=MODEL_WORK)
    shown.success(measure_quality, encoded, metrics, api_name="metrics", show_progress="minimal",
                  concurrency_id=MODEL_WORK)
    shown.success(rate_distortion_chart, [photo, choice, bpp], chart, api_name="rate_distortion",
                  concurrency_id=MODEL_WORK)


def _decode_tab() -> None:
    gr.Markdown("Only have the small file? Upload a HyperThumb JPEG and get the full-resolution photo back.")
    with gr.Row():
        thumbnail = gr.File(label="HyperThumb JPEG", file_types=[".jpg", ".jpeg"], type="filepath")
        with gr.Column():
            restored = gr.Image(label="Restored photo", type="filepath", interactive=False)
            download = gr.File(label="Restored PNG")
            note = gr.Markdown()
    gr.Button("Decode", variant="primary").click(decode, thumbnail, [restored, download, note], api_name="decode",
                                                 concurrency_id=MODEL_WORK)


def _label_tab(store: LabelStore) -> None:
    submit, results = label_handlers(store)
    gr.Markdown("Blind A/B: two reconstructions of the same photo at the same bpp, by two of "
                f"{', '.join(LABEL_METHODS)}, in random order. Which is closer to the original?")
    pair = gr.State()
    with gr.Row():
        with gr.Column(scale=1):
            photo = gr.File(label="Photo", file_types=["image"], type="filepath")
            gr.Examples(EXAMPLES, inputs=[photo])
            bpp = gr.Slider(0.05, 0.8, value=0.2, step=0.01, label="bpp of both")
            show = gr.Button("Show a new pair", variant="primary")
        with gr.Column(scale=2):
            ab = gr.ImageSlider(label="A (left) | B (right)", type="filepath")
            original = gr.Image(label="Original", type="filepath", interactive=False)
    status = gr.Markdown()
    with gr.Row():
        choice = gr.Radio([("A is better", "A"), ("They look the same", "same"), ("B is better", "B")],
                          label="Your judgement")
        note = gr.Textbox(label="Note (optional)", placeholder="what made the difference?")
        save = gr.Button("Save label")
    with gr.Accordion("Results: win rates of all labels", open=False):
        refresh = gr.Button("Refresh")
        figure = gr.Plot()
        table = gr.Dataframe(interactive=False)
        csv = gr.File(label="All labels (CSV)")
    show.click(new_pair, [photo, bpp], [original, ab, pair, status], api_name="label_pair",
               concurrency_id=MODEL_WORK)
    save.click(submit, [pair, choice, note], [pair, status], api_name="label_submit").success(
        results, None, [figure, table, csv], api_name="label_results")
    refresh.click(results, None, [figure, table, csv], api_name="label_results_refresh")


def build_demo(labels_db: Optional[str] = None) -> gr.Blocks:
    """The page, its model work queued two at a time across all users, so that they cannot exhaust memory."""
    store = LabelStore(labels_db or os.environ.get(LABELS_DB_ENV, ROOT / "app_data" / "labels.sqlite"))
    with gr.Blocks(title="HyperThumb", delete_cache=(3600, 3600)) as demo:
        gr.Markdown("# HyperThumb\nA photo becomes an ordinary JPEG thumbnail, 4x smaller per side, from which "
                    "a small neural decoder restores the full photo. Device: "
                    f"**{hyperthumb.default_device()}**.")
        with gr.Tab("Encode"):
            _encode_tab()
        with gr.Tab("Decode"):
            _decode_tab()
        with gr.Tab("Label (blind A/B)"):
            _label_tab(store)
    return demo.queue(default_concurrency_limit=2)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the HyperThumb web app.")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--share", action="store_true", default=os.environ.get(SHARE_ENV) == "1",
                        help=f"ask Gradio for a public link (also: {SHARE_ENV}=1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    build_demo().launch(server_name=args.host, server_port=args.port, share=args.share)


if __name__ == "__main__":
    main()
