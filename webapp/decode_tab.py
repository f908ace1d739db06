"""The Decode tab: a HyperThumb thumbnail in, the full photo restored from it out, beside the
thumbnail as any viewer would show it scaled up."""
from __future__ import annotations

import html
from pathlib import Path
from typing import Optional, Union

import gradio as gr

import hyperthumb
from hyperthumb import zoo
from hyperthumb.codec.inspection import ThumbnailInfo, inspect_thumbnail
from hyperthumb.errors import CheckpointNotFoundError, HyperThumbError
from webapp import sessions
from webapp.compare import compare_html
from webapp.config import DECODER_INFO, MAX_PIXELS, MODEL_WORK, available_decoders, on_gpu
from webapp.errors import UserError, file_error, guarded, status_html
from webapp.wording import model_note, size_text

# The page's decoder kinds (web/hyperthumb.js) for the labels this tab shows.
_PAGE_DECODERS = {"faithful": "full", "fast": "fast", "sharp": "sharp"}


def _in_browser_html() -> str:
    """The tab's second way: the file restored by web/hyperthumb.js in the viewer's own browser
    (webapp/static/page.js runs it); the file never reaches the server."""
    options = "".join(f"<option value='{_PAGE_DECODERS[kind]}'>{label}</option>"
                      for label, kind in available_decoders().items())
    return (
        "<div id='browser-restore' data-state='idle'>"
        "<h3>Or restore it in this browser</h3>"
        "<p class='ht-hint'>The file stays on your device: the decoder runs in this page, and nothing is "
        "uploaded. <a href='viewer/' target='_blank'>The full-page viewer</a> is quicker, as it may use all "
        "of your processor's cores.</p>"
        "<div class='ht-toolbar'><input type='file' id='browser-restore-file' accept='.jpg,.jpeg,image/jpeg' "
        "aria-label='HyperThumb thumbnail to restore in this browser'>"
        f"<label>Decoder <select id='browser-restore-decoder'>{options}</select></label></div>"
        "<progress id='browser-restore-progress' max='1' value='0' hidden></progress>"
        "<div id='browser-restore-status' class='ht-status' hidden></div>"
        "<div id='browser-restore-result' hidden><img alt='The photo restored in this browser'>"
        "<p><a download>Download the restored photo (PNG)</a></p></div></div>")


class DecodeTab:
    """The tab's components, and its handlers, which return {component: value}."""

    def __init__(self) -> None:
        gr.HTML("<p class='ht-lead'>Only have the small file? Drop a HyperThumb thumbnail here and get the "
                "full-size photo back.</p>")
        decoders = available_decoders()
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=300):
                # No file_types: a wrong file gets this tab's own sentence, not a badge and two toasts.
                self.thumbnail = gr.File(label="HyperThumb thumbnail (JPEG)", type="filepath", elem_id="thumbnail")
            with gr.Column(scale=3, min_width=300):
                self.decoder = gr.Radio(list(decoders), value="Faithful", label="Decoder", elem_id="decoder",
                                        info="; ".join(f"{label}: {DECODER_INFO[kind]}"
                                                       for label, kind in decoders.items()))
                self.run = gr.Button("Restore", variant="primary", elem_id="decode")
        self.status = gr.HTML(label="Status", elem_id="decode-status")
        with gr.Column(visible=False, elem_id="decode-result") as self.result_box:
            self.viewer = gr.HTML(label="Thumbnail scaled up | restored photo", elem_id="decode-viewer")
            self.download = gr.File(label="Restored photo (PNG)", elem_id="decode-download")
        gr.HTML(_in_browser_html(), elem_id="browser-restore-block")

    def _failed(self, message: str) -> dict:
        return {self.status: message, self.result_box: gr.Column(visible=False)}

    def _inspect(self, payload: Union[None, str, dict], request: Optional[gr.Request]) -> tuple[ThumbnailInfo, str]:
        upload = sessions.upload(payload, request)
        if upload is None:
            raise UserError("Upload a HyperThumb thumbnail first.")
        path, name = upload
        try:
            return inspect_thumbnail(path, max_pixels=MAX_PIXELS), name
        except HyperThumbError as exc:
            raise file_error(exc, path, name) from None

    def check_thumbnail(self, payload: Union[None, str, dict], request: gr.Request = None) -> dict:
        """A thumbnail's first answer, from its marker alone: what it will restore, or what is wrong."""
        if not payload:
            return {self.status: "", self.result_box: gr.Column(visible=False)}
        info, name = self._inspect(payload, request)
        width, height = info.size
        return {self.status: status_html(f"<b>{html.escape(name)}</b>: a {size_text(len(info.jpeg))} "
                                         f"{html.escape(info.model)} thumbnail of a {width}x{height} photo. "
                                         "Press Restore."),
                self.result_box: gr.Column(visible=False)}

    def decode(self, payload: Union[None, str, dict], decoder: str = "Faithful", request: gr.Request = None) -> dict:
        """The restored photo, with the decoder chosen; the note names the checkpoint."""
        kind = available_decoders().get(decoder, decoder if decoder in zoo.DECODERS else None)
        if kind is None:
            raise UserError(f"Choose the decoder: {', '.join(available_decoders())}.")
        info, name = self._inspect(payload, request)
        try:
            checkpoint = zoo.decoder_checkpoint(info.model, kind)
            photo = hyperthumb.decode(info, decoder=kind)
        except CheckpointNotFoundError:
            raise UserError(f"Could not use {name}: it was made by the {info.model!r} model, which this server "
                            "does not have.") from None
        except HyperThumbError as exc:
            raise UserError(f"Could not use {name}: {str(exc).rstrip('.')}.") from None
        folder = sessions.request_folder(request)
        thumbnail = folder / "thumbnail.jpg"
        thumbnail.write_bytes(info.jpeg)
        restored = Path(sessions.save_png(photo, folder / f"{Path(name).stem}_restored_{kind}.png"))
        note = (f"Restored a {photo.width}x{photo.height} photo from <b>{html.escape(name)}</b>, a "
                f"{size_text(len(info.jpeg))} thumbnail, with the {decoder.lower()} decoder of "
                f"{html.escape(model_note(checkpoint))}.")
        return {self.status: status_html(note), self.result_box: gr.Column(visible=True),
                self.viewer: compare_html(thumbnail, "The thumbnail, scaled up", restored, "Restored", photo.size),
                self.download: str(restored)}

    def decode_again(self, payload: Union[None, str, dict], decoder: str, request: gr.Request = None) -> dict:
        """Another decoder chosen restores the file again; before a file is there it does nothing."""
        return {self.status: gr.skip()} if not payload else self.decode(payload, decoder, request)

    def wire(self) -> None:
        outputs = [self.status, self.result_box, self.viewer, self.download]
        decode = guarded(self._failed)(on_gpu(self.decode))
        self.run.click(decode, [self.thumbnail, self.decoder], outputs, api_name="decode", preprocess=False,
                       api_description="Restores the full-size photo from a HyperThumb JPEG with the decoder "
                                       "named (Faithful, Fast or Sharp where the model has one).",
                       show_progress="full", show_progress_on=[self.status], concurrency_id=MODEL_WORK)
        self.decoder.input(guarded(self._failed)(on_gpu(self.decode_again)), [self.thumbnail, self.decoder], outputs,
                           api_visibility="private",
                           preprocess=False, show_progress="full", show_progress_on=[self.status],
                           concurrency_id=MODEL_WORK)
        self.thumbnail.upload(guarded(self._failed)(self.check_thumbnail), self.thumbnail,
                              [self.status, self.result_box], api_visibility="private", preprocess=False,
                              show_progress="hidden")
