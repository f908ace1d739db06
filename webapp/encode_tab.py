"""The Encode tab: a photo in, its thumbnail and the photo restored from it out, then what that is
worth in figures and on a chart. Three steps, each shown as soon as it is done: `encode` (the
files and the before/after viewer), `measure` (the quality figures), `chart` (the curves)."""
from __future__ import annotations

import html
import math
import threading
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional, Union

import gradio as gr

import hyperthumb
from hyperthumb import zoo
from hyperthumb.codec.image_io import load_image, probe_image
from hyperthumb.errors import HyperThumbError
from hyperthumb.evaluation import charts
from hyperthumb.evaluation.methods import measure, method_codec
from hyperthumb.evaluation.metrics import lpips_available, psnr
from hyperthumb.evaluation.photo_curves import (
    CURVE_RATES,
    PLAIN_SR,
    UPSCALED,
    chart_region,
    curve_points,
    curve_rows,
    store_methods,
    upscaled,
)
from hyperthumb.zoo import BASELINE, REFERENCE_METHODS
from webapp import result_text, sessions
from webapp.compare import compare_html, region_preview
from webapp.config import (
    BOTH,
    BPP_RANGE,
    DECODER_INFO,
    DEFAULT_BPP,
    ENCODERS,
    EXAMPLES,
    MAX_PIXELS,
    MODEL_WORK,
    PHOTO_FORMATS,
    available_decoders,
    on_gpu,
)
from webapp.errors import UserError, file_error, guarded, status_html
from webapp.examples import file_digest, keep, kept
from webapp.wording import size_text

SESSIONS_TRACKED = 10_000  # sessions whose current result is remembered (the oldest are forgotten)
LITE_INFO = "smaller models of the same two kinds: about 3x faster on a CPU, a little less close to your photo"
# Where each stage of one encoder's run sits on its share of the progress bar.
STAGE_AT = {"loading the model": 0.02, "encoding": 0.05, "sizing the file": 0.45, "restoring": 0.6,
            "writing the files": 0.9}
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


def _methods(choice: str, lite: bool) -> list[str]:
    chosen = list(ENCODERS.values()) if choice == BOTH else [ENCODERS[choice]]
    return [zoo.LITE_MODEL_OF[method] if lite else method for method in chosen]


def _restorer(method: str, decoder: str) -> str:
    """The method whose decoder restores `method`'s thumbnails as the page's decoder choice asks:
    the model's own where it has no such decoder (a lite model's own decoder is its fast one)."""
    kind = available_decoders().get(decoder, "faithful")
    return zoo.DECODERS_OF.get(method, {}).get(kind, method)


class EncodeTab:
    """The tab's components, and its handlers, which return {component: value}."""

    def __init__(self) -> None:
        self._current: OrderedDict[str, str] = OrderedDict()  # session -> the result on its page
        self._lock = threading.Lock()
        gr.HTML("<p class='ht-lead'>Drop a photo (or pick an example): HyperThumb makes a small JPEG thumbnail "
                "of it, a sixteenth of its pixels, and restores the full photo from that thumbnail.</p>")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=300):
                self.photo = gr.Image(label=f"Your photo ({PHOTO_FORMATS})", type="filepath",
                                      sources=["upload", "clipboard"], height=260, elem_id="photo")
            with gr.Column(scale=3, min_width=300):
                self.examples = gr.Examples(EXAMPLES, inputs=[self.photo], label="Or pick an example "
                                            "(credits in examples/CREDITS.md)", examples_per_page=8)
                with gr.Row():
                    self.choice = gr.Radio([*ENCODERS, BOTH], value=next(iter(ENCODERS)), label="Encoder",
                                           elem_id="encoder", scale=2)
                    self.lite = gr.Checkbox(False, label="Lite models", info=LITE_INFO, elem_id="lite", scale=1)
                decoders = available_decoders()
                self.decoder = gr.Radio(list(decoders), value="Faithful", label="Restore with", elem_id="restore-with",
                                        info="; ".join(f"{label}: {DECODER_INFO[kind]}"
                                                       for label, kind in decoders.items()))
                self.bpp = gr.Slider(*BPP_RANGE, value=DEFAULT_BPP, step=0.01, elem_id="target-bpp",
                                     label="Thumbnail size: bits per pixel of your photo (smaller is a smaller file)",
                                     info="Re-encodes when you let go of the handle.")
                self.run = gr.Button("Encode", variant="primary", elem_id="encode")
        self.status = gr.HTML(label="Status", elem_id="encode-status")
        with gr.Column(visible=False, elem_id="result") as self.result_box:
            self.verdict = gr.Markdown(label="Verdict", elem_id="verdict", elem_classes="ht-verdict")
            self.panels = {}
            with gr.Row(elem_id="ht-panels"):
                for method in ENCODERS.values():
                    with gr.Column(visible=False) as column:
                        self.panels[method] = {
                            "column": column,
                            "heading": gr.Markdown(label="Heading", elem_id=f"heading-{method}"),
                            "viewer": gr.HTML(label="Your photo | restored photo", elem_id=f"viewer-{method}"),
                            "thumbnail_file": gr.File(label="Thumbnail (JPEG)", elem_id=f"thumbnail-file-{method}"),
                            "restored_file": gr.File(label="Restored photo (PNG)", elem_id=f"restored-file-{method}"),
                        }
                        with gr.Accordion("The thumbnail at its true size", open=False):
                            self.panels[method]["thumbnail"] = gr.HTML(label="Thumbnail at true size",
                                                                       elem_id=f"thumbnail-{method}")
            self.figures = gr.HTML(label="Figures", elem_id="metrics")
            with gr.Accordion("More figures (for experts)", open=False):
                self.expert = gr.HTML(label="More figures", elem_id="expert-metrics")
        with gr.Column(visible=False, elem_id="charts") as self.chart_box:
            self.chart_note = gr.Markdown(label="Chart note", elem_id="chart-note")
            with gr.Row(equal_height=False):
                self.chart = gr.Plot(label="Thumbnails compared", elem_id="chart", scale=3, min_width=320)
                self.region = gr.Image(label="Region the curves were computed on", type="filepath",
                                       interactive=False, scale=1, min_width=200, visible=False, buttons=[])
            with gr.Accordion("For reference: the whole photo stored as one file of the same size", open=False):
                gr.Markdown("Storing the whole photo is a different job: the file is the full photo, so nothing "
                            "small shows at once, and every viewer must fetch all of it. At the same size a "
                            "whole-photo file can be closer to the original than a restored thumbnail.")
                self.reference_chart = gr.Plot(label="Whole-photo files", elem_id="reference-chart")
        self.encoded = gr.State()

    # Errors: say so, and clear what the error concerns.
    def _encode_failed(self, message: str) -> dict:
        return {self.status: message, self.result_box: gr.Column(visible=False),
                self.chart_box: gr.Column(visible=False), self.encoded: None}

    def _figures_failed(self, message: str) -> dict:
        return {self.status: message}

    def _new_result(self, request: Optional[gr.Request]) -> str:
        """A new result for the session's page: figures or a chart still being made for the one before
        it are dropped when done, never shown under it (or under an error that replaced it)."""
        result_id = uuid.uuid4().hex
        with self._lock:
            self._current[sessions.session_name(request)] = result_id
            self._current.move_to_end(sessions.session_name(request))
            while len(self._current) > SESSIONS_TRACKED:
                self._current.popitem(last=False)
        return result_id

    def _is_current(self, state: Optional[dict], request: Optional[gr.Request]) -> bool:
        return bool(state) and self._current.get(sessions.session_name(request)) == state["id"]

    def check_upload(self, payload: Union[None, str, dict], request: gr.Request = None) -> dict:
        """An upload's first answer, from its header alone; a new photo's results replace the last one's."""
        self._new_result(request)
        upload = sessions.upload(payload, request)
        if upload is None:
            return {self.status: ""}
        path, name = upload
        try:
            width, height = probe_image(path, max_pixels=MAX_PIXELS)
        except HyperThumbError as exc:
            raise file_error(exc, path, name) from None
        return {self.status: status_html(f"<b>{html.escape(name)}</b>: {width}x{height} pixels. "
                                         "Press Encode."),
                self.result_box: gr.Column(visible=False), self.chart_box: gr.Column(visible=False),
                self.encoded: None}

    def encode(self, photo: Union[None, str, dict], choice: str, target_bpp: float, lite: bool,
               previous: Optional[dict], decoder: str = "Faithful", request: gr.Request = None,
               progress=gr.Progress()):
        """Yields each thumbnail as soon as it is made (shown scaled up while the photo is restored),
        then the restored photos; the quality figures follow in `measure`."""
        result_id = self._new_result(request)
        target_bpp = _checked_settings(choice, target_bpp)
        progress(0.01, desc="Reading your photo")
        upload = sessions.upload(photo, request)
        if upload is None:
            raise UserError("Upload a photo first, or pick an example.")
        path, name = upload
        try:
            image = load_image(path, max_pixels=MAX_PIXELS)
        except HyperThumbError as exc:
            raise file_error(exc, path, name) from None
        folder, stem, digest = sessions.request_folder(request), Path(name).stem, file_digest(path)
        methods = _methods(choice, lite)
        same_photo = bool(previous) and previous.get("digest") == digest
        state = {"id": result_id, "name": name, "digest": digest, "photo": image, "upload_bytes": path.stat().st_size,
                 "target_bpp": target_bpp, "results": [], "points": previous["points"] if same_photo else {},
                 "box": previous["box"] if same_photo else None}
        shown = {zoo.METHODS[method].lite_of or method for method in methods}
        updates = {self.panels[method]["column"]: gr.Column(visible=method in shown) for method in ENCODERS.values()}
        with ThreadPoolExecutor(max_workers=1) as writer:  # PNGs are written while the models work
            original = folder / "original.png"
            original_written = writer.submit(sessions.save_png, image, original)
            for index, encoding in enumerate(methods):
                method = _restorer(encoding, decoder)
                label, panel = zoo.METHODS[method].label, self.panels[zoo.METHODS[encoding].lite_of or encoding]

                def stage(name: str, index: int = index, label: str = label) -> None:
                    progress((index + STAGE_AT[name]) / len(methods), desc=f"{label}: {name}")
                thumbnail = folder / f"{stem}_{method}_{target_bpp:.2f}bpp.jpg"
                result = kept(digest, method, target_bpp)
                if result is None:
                    learned = method_codec(method)
                    thumb, encode_s = learned.encode(image, target_bpp, stage)
                    thumbnail.write_bytes(thumb.jpeg)
                    original_written.result()
                    updates.update({
                        panel["heading"]: f"### {label}", panel["thumbnail_file"]: str(thumbnail),
                        panel["viewer"]: compare_html(original, "Your photo", thumbnail,
                                                      "The thumbnail, scaled up (restoring ...)", image.size),
                        panel["thumbnail"]: result_text.true_size_html(thumb.jpeg, thumb.image.size, label)})
                    if not self._is_current(state, request):  # replaced (a new photo, setting or error)
                        yield {self.status: gr.skip()}
                        return
                    yield {**updates, self.result_box: gr.Column(visible=True), self.chart_box: gr.Column(
                        visible=False), self.verdict: f"**{label}**: your photo became a "
                                                      f"{size_text(len(thumb.jpeg))} thumbnail; restoring the "
                                                      "photo from it ...", self.encoded: None}
                    result = learned.restore(thumb, encode_s, stage)
                    keep(digest, method, result)
                else:
                    thumbnail.write_bytes(result.jpeg)
                stage("writing the files")
                restored = folder / f"{stem}_{method}_{target_bpp:.2f}bpp_restored.png"
                sessions.save_png(result.restored, restored)
                original_written.result()
                state["results"].append({"method": method, "result": result, "figures": None})
                updates.update({
                    panel["heading"]: f"### {label}", panel["thumbnail_file"]: str(thumbnail),
                    panel["viewer"]: compare_html(original, "Your photo", restored, "Restored from the thumbnail",
                                                  image.size),
                    panel["thumbnail"]: result_text.true_size_html(result.jpeg, result.thumbnail.size, label),
                    panel["restored_file"]: str(restored)})
        if not self._is_current(state, request):
            yield {self.status: gr.skip()}
            return
        measuring = status_html("Measuring how close each restored photo is ...")
        yield {**updates, **self._texts(state), self.status: measuring, self.result_box: gr.Column(visible=True),
               self.chart_box: gr.Column(visible=False), self.encoded: state}

    def _texts(self, state: dict) -> dict:
        return {self.verdict: result_text.verdict(state), self.figures: result_text.figures_table(state),
                self.expert: result_text.expert_table(state)}

    def encode_again(self, photo: Union[None, str, dict], choice: str, target_bpp: float, lite: bool,
                     previous: Optional[dict], decoder: str = "Faithful", request: gr.Request = None,
                     progress=gr.Progress()):
        """A setting changed: encode again, where there is a photo (before one, nothing happens)."""
        if photo:
            yield from self.encode(photo, choice, target_bpp, lite, previous, decoder, request, progress)
        else:
            yield {self.status: gr.skip()}

    def measure(self, state: Optional[dict], request: gr.Request = None) -> dict:
        """The quality figures of what `encode` just showed (SSIM and LPIPS take longer than the codec)."""
        if not self._is_current(state, request) or state["results"][0]["figures"] is not None:
            return {self.status: gr.skip()}
        photo, with_lpips = state["photo"], lpips_available()
        for entry in state["results"]:
            result = entry["result"]
            entry["figures"] = measure(photo, result, with_lpips=with_lpips,
                                       figures=("psnr_hr", "psnr_lr", "ssim_hr", "lpips_rgb"))
            entry["figures"]["psnr_upscaled"] = psnr(upscaled(result), photo)
        note = "" if with_lpips else (" The visible-difference figure (LPIPS) is missing: its weights are not on "
                                      "this server (`python -m hyperthumb lpips-weights` fetches them once).")
        if not self._is_current(state, request):  # replaced while measuring
            return {self.status: gr.skip()}
        return {**self._texts(state), self.status: status_html("Drawing the chart for this photo ..." + note),
                self.encoded: state}

    def draw_chart(self, state: Optional[dict], request: gr.Request = None, progress=gr.Progress()) -> dict:
        """The curves of this photo, computed after the figures so that nobody waits for them; kept
        for the next setting on the same photo."""
        if not self._is_current(state, request) or state["results"][0]["figures"] is None:
            return {self.status: gr.skip()}
        photo = state["photo"]
        box = chart_region(photo.size, hyperthumb.default_device())
        if state["box"] != box:
            state["points"], state["box"] = {}, box
        region, learned = photo.crop(box), [entry["method"] for entry in state["results"]]
        target = state["target_bpp"]
        points = curve_points(region, store_methods(learned), CURVE_RATES, state["points"],
                              progress=lambda runs: progress.tqdm(runs, desc="Chart: encoding at other sizes"))
        state["points"] = points = curve_points(region, learned, (target,), points)
        rows = curve_rows(points)
        marks = [{"method": method, **points[method, target]} for method in learned]
        whole = box == (0, 0, *photo.size)
        where = "your whole photo" if whole else f"the centre {box[2] - box[0]}x{box[3] - box[1]} pixels (outlined)"
        store_curves = [curve for method in learned for curve in (method, method + UPSCALED)] + [PLAIN_SR, BASELINE]
        store = charts.photo_curves_figure(rows, store_curves, learned, photo.width * photo.height,
                                           f"Kept as a thumbnail: how close each way<br>restores {where}", marks)
        reference = charts.photo_curves_figure(rows, [*learned, *REFERENCE_METHODS], learned,
                                               photo.width * photo.height,
                                               f"Thumbnail against whole-photo files,<br>on {where}", marks)
        if not self._is_current(state, request):  # replaced while the curves were computed
            return {self.status: gr.skip()}
        updates = {self.chart_box: gr.Column(visible=True), self.chart: store, self.reference_chart: reference,
                   self.chart_note: result_text.chart_note(points, learned, whole), self.status: "",
                   self.encoded: state}
        if whole:
            updates[self.region] = gr.Image(visible=False)
        else:
            updates[self.region] = gr.Image(region_preview(photo, box, sessions.request_folder(request)),
                                            visible=True)
        return updates

    def wire(self) -> None:
        inputs = [self.photo, self.choice, self.bpp, self.lite, self.encoded, self.decoder]
        result_outputs = [self.status, self.result_box, self.verdict, self.figures, self.expert, self.chart_box,
                          self.encoded, *[component for panel in self.panels.values() for component in panel.values()]]
        measure_outputs = [self.verdict, self.figures, self.expert, self.status, self.encoded]
        chart_outputs = [self.chart_box, self.chart, self.reference_chart, self.chart_note, self.region, self.status,
                         self.encoded]
        encode = guarded(self._encode_failed)(on_gpu(self.encode))
        encode_again = guarded(self._encode_failed)(on_gpu(self.encode_again))
        measure_ = guarded(self._figures_failed)(on_gpu(self.measure))
        chart = guarded(self._figures_failed)(on_gpu(self.draw_chart))
        self.photo.upload(guarded(self._encode_failed)(self.check_upload), self.photo,
                          [self.status, self.result_box, self.chart_box, self.encoded], preprocess=False,
                          api_visibility="private", show_progress="hidden")
        triggers = [(self.run.click, encode, "encode", "Encodes a photo at a target bpp with RDBUnet, Transformer "
                                                       "or both, full or lite."),
                    (self.bpp.release, encode_again, "encode_on_release",
                     "The same as /encode, when the slider is let go (nothing before a photo)."),
                    (self.choice.input, encode_again, "encode_on_encoder_change",
                     "The same as /encode, when the encoder changes (nothing before a photo)."),
                    (self.lite.input, encode_again, "encode_on_lite_change",
                     "The same as /encode, when Lite models is switched (nothing before a photo)."),
                    (self.decoder.input, encode_again, "encode_on_decoder_change",
                     "The same as /encode, when the decoder changes (nothing before a photo)."),
                    (self.examples.load_input_event.then, encode, None, None)]
        for trigger, handler, api_name, description in triggers:
            api = {"api_name": api_name, "api_description": description} if api_name else {"api_visibility": "private"}
            shown = trigger(handler, inputs, result_outputs, preprocess=False, trigger_mode="always_last",
                            show_progress="full", show_progress_on=[self.status], concurrency_id=MODEL_WORK, **api)
            shown.then(measure_, self.encoded, measure_outputs, api_visibility="private", show_progress="hidden",
                       concurrency_id=MODEL_WORK).then(
                chart, self.encoded, chart_outputs, api_visibility="private", show_progress="hidden",
                concurrency_id=MODEL_WORK)
        gr.Button("Measure", visible=False).click(
            measure_, self.encoded, measure_outputs, api_name="metrics", concurrency_id=MODEL_WORK,
            api_description="The quality figures of the session's last /encode result.")
        gr.Button("Chart", visible=False).click(
            chart, self.encoded, chart_outputs, api_name="rate_distortion", concurrency_id=MODEL_WORK,
            api_description="The charts of the session's last measured result.")
