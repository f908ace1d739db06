"""The HyperThumb web app: make a thumbnail of a photo and see the photo restored from it, restore a
thumbnail, and label which restoration looks closer.

    python app.py [--share] [--host 127.0.0.1] [--port 7860]

The page is built from the `webapp` package (one module per tab; its JavaScript and CSS in
webapp/static), whose handlers call the `hyperthumb` library and format what it returns. The same
file runs as a Hugging Face Space (README front matter).
"""
from __future__ import annotations

import argparse
import logging
import os
import threading
from pathlib import Path
from typing import Optional

import gradio as gr

from hyperthumb.codec.runtime import keep_freed_memory
from hyperthumb.study.pool import MANIFEST, STUDY_DIR_ENV, StudyPool
from hyperthumb.study.uploads import UPLOADS_DIR_ENV
from hyperthumb.study.votes import VoteStore
from webapp import sessions
from webapp.config import LABELS_DB_ENV, OUTPUT_MAX_AGE_S, OUTPUT_ROOT, ROOT, SHARE_ENV, STATIC
from webapp.decode_tab import DecodeTab
from webapp.encode_tab import EncodeTab
from webapp.examples import prepare_examples
from webapp.study_tab import StudyTab
from webapp.viewer_site import prepare_site, routes

HEADER = ("# HyperThumb\nA photo becomes a small, ordinary JPEG thumbnail that any viewer opens at once; "
          "a small neural decoder restores the full photo from it when you want it.")


def build_demo(labels_db: Optional[str] = None, study_dir: Optional[str] = None) -> gr.Blocks:
    """The page, its model work queued two at a time across all users, so that they cannot exhaust
    memory. Photos users add to the study go beside the vote file unless HYPERTHUMB_STUDY_UPLOADS_DIR
    says where."""
    sessions.use_own_upload_folder()
    gr.set_static_paths([str(OUTPUT_ROOT)])  # the before/after viewers load the sessions' files
    store = VoteStore(labels_db or os.environ.get(LABELS_DB_ENV, ROOT / "app_data" / "labels.sqlite"))
    study_dir = study_dir or os.environ.get(STUDY_DIR_ENV, ROOT / "examples" / "study")
    uploads = os.environ.get(UPLOADS_DIR_ENV, store.path.parent / "study_uploads")  # this deployment's data
    pool = StudyPool(study_dir, uploads) if (Path(study_dir) / MANIFEST).is_file() else None
    with gr.Blocks(title="HyperThumb", delete_cache=(600, OUTPUT_MAX_AGE_S)) as demo:
        gr.Markdown(HEADER, elem_id="header")
        with gr.Tab("Make a thumbnail"):
            encode = EncodeTab()
        with gr.Tab("Restore"):
            decode = DecodeTab()
        with gr.Tab("Label") as study_tab:
            study = StudyTab(store, pool)
        encode.wire()
        decode.wire()
        study.wire(demo, study_tab)
        demo.load(None, js=(STATIC / "page.js").read_text())
        demo.unload(sessions.end_session)
    sessions.keep_page_files()
    return demo.queue(default_concurrency_limit=2)


def launch(demo: gr.Blocks, **options) -> None:
    """Serves the page with its stylesheet, and the browser restore at /viewer/; when the server
    stops, the sessions' files go."""
    demo.launch(css_paths=[STATIC / "page.css"],
                app_kwargs={"lifespan": sessions.remove_files_at_shutdown, "routes": routes()}, **options)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the HyperThumb web app.")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--share", action="store_true", default=os.environ.get(SHARE_ENV) == "1",
                        help=f"ask Gradio for a public link (also: {SHARE_ENV}=1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    keep_freed_memory()
    demo = build_demo()
    threading.Thread(target=prepare_examples, name="prepare-examples", daemon=True).start()
    threading.Thread(target=prepare_site, name="prepare-viewer", daemon=True).start()
    launch(demo, server_name=args.host, server_port=args.port, share=args.share)


if __name__ == "__main__":
    main()
