"""The Label tab: a blind study. An annotator sees an original crop and two reconstructions of it
at the same size, made by two of the compared methods in random order, and says which is closer.
Votes come only from the study's keys or a click (static/page.js), into the SQLite vote file."""
from __future__ import annotations

import html
import os
import random
import re
import secrets
import shutil
from pathlib import Path
from typing import Optional, Union

import gradio as gr
import pandas as pd

from hyperthumb.codec.image_io import load_image
from hyperthumb.errors import HyperThumbError, InvalidImageError
from hyperthumb.study.pool import STUDY_DIR_ENV, StudyPool, box_around
from hyperthumb.study.ranking import preference_percent, scores_figure, win_rate_figure
from hyperthumb.study.ranking import results as study_results
from hyperthumb.study.uploads import add_photo as add_to_pool
from hyperthumb.study.votes import VoteRefused, VoteStore
from webapp import sessions
from webapp.compare import region_preview
from webapp.config import ADMIN_TOKEN_ENV, MAX_PIXELS, MODEL_WORK, PHOTO_FORMATS, on_gpu
from webapp.errors import UserError, file_error, guarded, status_html

FIELD_LIMIT = 64  # characters kept of an annotator's name and of the browser's anonymous id
HELP = ("A blind study: the original crop and two reconstructions of it at the same file size, at 100 % zoom, made "
        "by two methods in random order. Which side is closer to the original? Keys: **a** (A), **b** (B), **=** "
        "(the same), **space** (another crop), **f** (flicker original / A / B), **u** (undo your last vote).")


def annotator(name: str, browser_id: str) -> str:
    """Who voted: the name given, else the browser's anonymous id, each capped (an id is a UUID)."""
    browser_id = re.sub(r"[^A-Za-z0-9-]", "", str(browser_id or ""))[:FIELD_LIMIT]
    return str(name or "").strip()[:FIELD_LIMIT] or browser_id or "anonymous"


def _session_id(request: Optional[gr.Request]) -> str:
    """The browser session a trial is issued to; votes are accepted only from it."""
    return getattr(request, "session_hash", None) or "anonymous"


def summary_text(summary: dict) -> str:
    if not summary["votes"]:
        return "No counted votes yet."
    metrics = summary["metrics"]
    lines = [f"**{summary['votes']} votes** from {summary['annotators']} people (a vote took "
             f"{summary['median_seconds']} s, median); {summary['excluded_votes']} votes of "
             f"{len(summary['flagged_annotators'])} people who missed the practice trial are left out."]
    if summary["agreement"]["annotator_pairs"]:
        lines.append(f"Where several people judged the same crop, pair and size, they agreed "
                     f"{summary['agreement']['agree_pct']} % of the time.")
    for name, label in (("psnr", "higher PSNR"), ("lpips", "lower LPIPS")):
        if metrics[name]["agree_pct"] is not None:
            lines.append(f"People preferred the side with the {label} in {metrics[name]['agree_pct']} % of the votes "
                         "that picked a side.")
    return "\n\n".join(lines)


def practice_feedback(vote: dict) -> str:
    """What an annotator learns once the practice trial, whose answer is known, is answered."""
    blurred = "B" if vote["expected"] == "left" else "A"
    if vote["choice"] == vote["expected"]:
        return f"Practice trial passed (side {blurred} was the blurred one): your votes count from now on."
    return (f"That was the practice trial, and side {blurred} was the blurred one: the votes under this name are "
            "left out of the results. Enter another name to take the practice trial again.")


class StudyTab:
    """The tab's components, and its handlers, which return {component: value}."""

    def __init__(self, store: VoteStore, pool: Optional[StudyPool]) -> None:
        self.store, self.pool = store, pool
        gr.Markdown(HELP)
        self.browser_id = gr.BrowserState("", storage_key="hyperthumb-annotator")
        with gr.Row():
            self.name = gr.Textbox(label="Your name (optional; otherwise an anonymous id kept in this browser)",
                                   max_length=FIELD_LIMIT, scale=3)
            self.progress = gr.Markdown(label="Progress", elem_id="study-progress")
        self.status = gr.HTML(label="Status", elem_id="study-status")
        self.trial_id = gr.Textbox("", visible=False, label="trial id")
        with gr.Row(elem_id="study-crops"):
            self.crops = [gr.Image(label=label, type="filepath", interactive=False, elem_id=elem_id, buttons=[])
                          for label, elem_id in (("Original", "study-original"), ("A", "study-left"),
                                                 ("B", "study-right"))]
        with gr.Row(elem_id="study-votes"):
            self.left = gr.Button("A is closer (a)", elem_id="study-left-better")
            self.same = gr.Button("The same (=)", elem_id="study-same")
            self.right = gr.Button("B is closer (b)", elem_id="study-right-better")
        with gr.Row(elem_id="study-actions"):
            self.next_trial = gr.Button("Another crop (space)", elem_id="study-next")
            self.flicker = gr.Button("Flicker (f)", elem_id="study-flicker")
            self.side_by_side = gr.Button("Side by side")
            self.undo_button = gr.Button("Undo last vote (u)", elem_id="study-undo")
        with gr.Accordion("Results: how often people preferred each method", open=False):
            self.refresh = gr.Button("Show the results")
            self.summary = gr.Markdown(label="Summary")
            with gr.Row():
                self.scores_plot = gr.Plot(label="Preferred to an average method")
                self.matrix_plot = gr.Plot(label="Method against method")
            self.scores = gr.Dataframe(label="Per method (all sizes, then per size)", interactive=False)
            self.pairs = gr.Dataframe(label="Votes per pair and size", interactive=False)
        with gr.Accordion("Add your own photo to the study", open=False):
            gr.Markdown("Your photo joins this server's study pool: it is encoded once with every method at every "
                        "size of the study (about a minute on a CPU), and crops of it are shown to every annotator. "
                        "Click on the photo to choose the crop; without a click, its most detailed regions are taken.")
            with gr.Row():
                self.upload = gr.Image(label=f"Photo ({PHOTO_FORMATS}; click on it to choose the crop)",
                                       type="filepath", sources=["upload", "clipboard"], height=320,
                                       elem_id="study-upload")
                self.picked = gr.Image(label="The crop to be judged", type="filepath", interactive=False, height=320,
                                       elem_id="study-picked", buttons=[])
            with gr.Row():
                self.centre_x = gr.Number(label="Crop centre x (a click sets it)", precision=0,
                                          elem_id="study-centre-x")
                self.centre_y = gr.Number(label="Crop centre y", precision=0, elem_id="study-centre-y")
            self.add = gr.Button("Add to the study", elem_id="study-add")
            self.add_status = gr.HTML(label="Status", elem_id="study-add-status")
        with gr.Accordion("Export or reset the votes (admin)", open=False):
            self.token = gr.Textbox(label=f"Admin token ({ADMIN_TOKEN_ENV})", type="password")
            with gr.Row():
                self.export_button = gr.Button("Export")
                self.reset_button = gr.Button("Reset: remove every vote (a copy stays on the server)",
                                              variant="stop")
            self.csv = gr.File(label="Votes (CSV)")
            self.parquet = gr.File(label="Votes (Parquet)")
            self.admin_status = gr.HTML(label="Status")

    def _say(self, component: gr.components.Component):
        return lambda message: {component: message}

    def _pool(self) -> StudyPool:
        if self.pool is None:
            raise UserError("No study pool on this server: make one with `python -m hyperthumb study prepare` "
                            f"and point {STUDY_DIR_ENV} at it.")
        return self.pool

    def _show(self, session: str, trial_id: str, paths: list[Path], note: str, request: Optional[gr.Request]) -> dict:
        folder = sessions.request_folder(request)  # neutral names: the pool's file names say the method
        shown = [str(shutil.copyfile(source, folder / f"{side}.png"))
                 for source, side in zip(paths, ("original", "A", "B"))]
        return {self.trial_id: trial_id, **dict(zip(self.crops, shown)), self.status: status_html(note),
                self.progress: f"Votes in this session: {self.store.session_votes(session)}."}

    def trial(self, name: str, browser_id: str, shown_trial: str = "", request: gr.Request = None) -> dict:
        """A new trial, never the one just shown where the pool has another."""
        session = _session_id(request)
        skipped = self.store.condition_of(shown_trial) if shown_trial else None
        drawn = self._pool().draw(self.store, session, annotator(name, browser_id), random.Random(), skipped)
        answered = self.store.vote_on(shown_trial) if shown_trial else None
        note = (practice_feedback(answered) + " " if answered and answered["practice"] else "") + \
            ("Practice trial: one side is clearly worse. " if drawn.issued.practice else "") + \
            "Which side is closer to the original? a, b, = (the same); space for another crop."
        return self._show(session, drawn.issued.id, [drawn.original, drawn.left, drawn.right], note, request)

    def first_trial(self, name: str, browser_id: str, shown_trial: str, request: gr.Request = None) -> dict:
        """The first trial as the tab opens, so that it never shows empty crops (a trial on screen stays)."""
        return {self.status: gr.skip()} if shown_trial else self.trial(name, browser_id, "", request)

    def vote(self, trial_id: str, choice: str, request: gr.Request = None) -> dict:
        try:
            recorded = self.store.vote(trial_id or "", _session_id(request), choice)
        except VoteRefused as exc:
            raise UserError(f"Vote not recorded: {exc}.") from None
        status = practice_feedback(recorded) if recorded["practice"] else "Vote recorded."
        return {self.progress: f"Votes in this session: {self.store.session_votes(_session_id(request))}.",
                self.status: status_html(status)}

    def _vote_as(self, choice: str):
        def cast(trial_id: str, request: gr.Request = None) -> dict:
            return self.vote(trial_id, choice, request)
        return cast

    def undo(self, request: gr.Request = None) -> dict:
        """Removes the session's last vote and shows its trial again, to be judged anew."""
        session = _session_id(request)
        undone = self.store.undo(session)
        if undone is None:
            raise UserError("This session has no vote to undo.")
        paths = self._pool().trial_images(undone["crop"], undone["bpp"], undone["method_left"],
                                          undone["method_right"])
        return self._show(session, undone["trial_id"], paths, "Your last vote was removed: judge this trial again.",
                          request)

    def results(self) -> dict:
        summary = study_results(self.store.votes(), self._pool().methods, self.store.flagged_annotators(),
                                samples=500)
        scores = pd.DataFrame([{"method": s["method"], "size": "all sizes" if s["bpp"] is None else f"{s['bpp']:g} bpp",
                                "preferred (%)": round(preference_percent(s["score"])),
                                "95 % range (%)": f"{preference_percent(s['low']):.0f}-"
                                                  f"{preference_percent(s['high']):.0f}",
                                "votes": s["votes"]} for s in summary["scores"]],
                              columns=["method", "size", "preferred (%)", "95 % range (%)", "votes"])
        pairs = pd.DataFrame(summary["pairs"], columns=["method_a", "method_b", "bpp", "votes", "a_preferred",
                                                        "b_preferred", "same"])
        return {self.scores_plot: scores_figure(summary), self.matrix_plot: win_rate_figure(summary),
                self.scores: scores, self.pairs: pairs, self.summary: summary_text(summary)}

    def _require_admin(self, token: str, action: str) -> None:
        expected = os.environ.get(ADMIN_TOKEN_ENV, "")
        if not expected or not secrets.compare_digest((token or "").encode(), expected.encode()):
            raise UserError(f"{action} needs the admin token ({ADMIN_TOKEN_ENV} on the server).")

    def export(self, token: str, request: gr.Request = None) -> dict:
        self._require_admin(token, "Exporting the raw votes")
        folder = sessions.request_folder(request)
        parquet = self.store.to_parquet(folder / "hyperthumb_votes.parquet")
        return {self.csv: str(self.store.to_csv(folder / "hyperthumb_votes.csv")),
                self.parquet: parquet and str(parquet),
                self.admin_status: status_html(f"Exported {len(self.store.votes())} votes.")}

    def reset(self, token: str) -> dict:
        self._require_admin(token, "Resetting the study")
        removed, backup = self.store.reset()
        return {self.admin_status: status_html(f"Removed {removed} votes; a copy of them is kept on the server as "
                                               f"{html.escape(backup.name)}.")}

    def _open(self, payload: Union[None, str, dict], request: Optional[gr.Request]):
        upload = sessions.upload(payload, request)
        if upload is None:
            raise UserError("Upload a photo first.")
        path, name = upload
        try:
            return load_image(path, max_pixels=MAX_PIXELS), path, name
        except HyperThumbError as exc:
            raise file_error(exc, path, name) from None

    def pick(self, photo: Union[None, str, dict], event: gr.SelectData, request: gr.Request = None) -> dict:
        """The crop centred where the user clicked on their photo, outlined on a small copy."""
        image, _path, _name = self._open(photo, request)
        x, y = event.index
        box = box_around((x, y), image.size, self._pool().crop_side)
        preview = region_preview(image, box, sessions.request_folder(request))
        return {self.centre_x: x, self.centre_y: y, self.picked: preview,
                self.add_status: status_html(f"The crop: {box[2] - box[0]}x{box[3] - box[1]} pixels centred at "
                                             f"({x}, {y}).")}

    def add_photo(self, photo: Union[None, str, dict], x: Optional[float], y: Optional[float],
                  request: gr.Request = None, progress=gr.Progress()) -> dict:
        """Adds the upload to the pool, cut where the user clicked or at its most detailed regions."""
        image, path, name = self._open(photo, request)
        centre = None if x is None or y is None else (x, y)
        try:
            added = add_to_pool(self._pool(), image, name, centre, progress=progress)
        except InvalidImageError as exc:
            raise file_error(exc, path, name) from None
        except HyperThumbError as exc:
            raise UserError(f"Could not add {name}: {exc}.") from None
        sizes = ", ".join(f"{bpp:g}" for bpp in self._pool().bpps)
        return {self.add_status: status_html(
            f"Added {html.escape(name)} to the study pool: {len(added)} crop(s), each with every method at {sizes} "
            "bpp. Trials draw on them from now on, least-voted first.")}

    def wire(self, demo: gr.Blocks, tab: gr.Tab) -> None:
        say = self._say
        trial = guarded(say(self.status))(self.trial)
        trial_inputs = [self.name, self.browser_id, self.trial_id]
        trial_outputs = [self.trial_id, *self.crops, self.progress, self.status]
        for button, choice in ((self.left, "left"), (self.right, "right"), (self.same, "same")):
            button.click(guarded(say(self.status))(self._vote_as(choice)), self.trial_id, [self.progress, self.status],
                         api_visibility="private").success(trial, trial_inputs, trial_outputs,
                                                           api_visibility="private")
        self.next_trial.click(trial, trial_inputs, trial_outputs, api_name="study_trial",
                              api_description="A new trial for this session, other than the trial id given where the "
                                              "pool has another: trial id, original crop, A, B, progress, status.")
        gr.Button("Vote", visible=False).click(
            guarded(say(self.status))(self.vote),
            [self.trial_id, gr.Textbox(visible=False, label="choice: left, right or same")],
            [self.progress, self.status], api_name="study_vote",
            api_description="Answers a trial issued to this session, once (choice: left, right or same).")
        self.undo_button.click(guarded(say(self.status))(self.undo), None, trial_outputs, api_name="study_undo",
                               api_description="Removes this session's last vote and returns its trial again.")
        tab.select(guarded(say(self.status))(self.first_trial), trial_inputs, trial_outputs,
                   api_visibility="private")
        self.flicker.click(None, js="""() => {
          const box = document.querySelector("#study-crops"), views = ["study-original", "study-left", "study-right"];
          const next = box.classList.contains("flicker") ? (views.indexOf(box.dataset.shown) + 1) % 3 : 0;
          box.classList.add("flicker");
          box.dataset.shown = views[next];
          views.forEach((id) => document.querySelector(`#${id}`).classList.toggle("shown", id === views[next]));
        }""")
        self.side_by_side.click(None, js="() => document.querySelector('#study-crops').classList.remove('flicker')")
        demo.load(None, self.browser_id, self.browser_id, js="(id) => id || crypto.randomUUID()")
        self.refresh.click(guarded(say(self.summary))(self.results), None,
                           [self.scores_plot, self.matrix_plot, self.scores, self.pairs, self.summary],
                           api_name="study_results",
                           api_description="The aggregate: preference chart, method-against-method matrix, "
                                           "per-method table, votes per pair, summary.")
        self.upload.select(guarded(say(self.add_status))(self.pick), self.upload,
                           [self.centre_x, self.centre_y, self.picked, self.add_status], preprocess=False,
                           api_visibility="private")
        self.upload.upload(lambda: [None, None, None], None, [self.centre_x, self.centre_y, self.picked],
                           api_visibility="private")
        self.add.click(guarded(say(self.add_status))(on_gpu(self.add_photo)),
                       [self.upload, self.centre_x, self.centre_y], self.add_status, api_name="study_add_photo",
                       preprocess=False, concurrency_id=MODEL_WORK,
                       api_description="Adds a photo to the study pool, its crop centred at (x, y) where given, "
                                       "else at its most detailed regions: status.")
        self.export_button.click(guarded(say(self.admin_status))(self.export), self.token,
                                 [self.csv, self.parquet, self.admin_status], api_name="study_export",
                                 api_description="Every vote as CSV and Parquet; needs the admin token.")
        self.reset_button.click(guarded(say(self.admin_status))(self.reset), self.token, self.admin_status,
                                api_name="study_reset",
                                api_description="Removes every vote, keeping a copy on the server; needs the admin "
                                                "token.")
