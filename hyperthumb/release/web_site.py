"""The browser restore as a static site: the pages and module in the repository's `web/` folder, plus
what `python -m hyperthumb export-web` makes beside them: the models' graphs (`models/`,
`browser_export.py`), onnxruntime-web's files (`vendor/`, `web_runtime.py`) and the gallery's
thumbnails (`gallery/photos/`). The result serves from any static host; `python app.py` serves it
at /viewer/.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable, Iterable, Optional

from hyperthumb.release.browser_export import export_for_browser
from hyperthumb.release.web_runtime import install_runtime

SOURCE = Path(__file__).resolve().parents[2] / "web"  # the pages and module, in the repository
EXAMPLES = SOURCE.parent / "examples"
MADE = ("models", "vendor", "gallery/photos")  # what export-web writes (not in the repository)
# What the gallery shows: the example photos, each as both encoders' thumbnail at this rate.
GALLERY_BPP = 0.3
GALLERY_MODELS = ("rdbunet", "transformer")


def gallery_thumbnails(folder: Path, photos: Iterable[Path], progress: Callable[[str], None]) -> list[dict]:
    """Each photo encoded by each gallery model into `folder`, and `photos.json` listing them; a
    thumbnail already there is kept (its model's encoder is checked by the page when it opens)."""
    from hyperthumb import zoo

    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for photo in photos:
        for model in GALLERY_MODELS:
            file = folder / f"{photo.stem}.{model}.jpg"
            codec = zoo.load_model(model)
            if not file.is_file() or _stale(file, codec.encoder_id):
                progress(f"encoding {file.name}")
                codec.encode(photo, target_bpp=GALLERY_BPP).save(file)
            entries.append({"file": file.name, "title": photo.stem.replace("_", " "), "model": model,
                            "bytes": file.stat().st_size})
    (folder / "photos.json").write_text(json.dumps(entries, indent=1) + "\n")
    return entries


def _stale(file: Path, encoder_id: str) -> bool:
    from hyperthumb.jpeg.marker import find_marker

    return find_marker(file.read_bytes()).encoder_id != encoder_id


def build_site(folder: Optional[Path] = None, models: Optional[Iterable[str]] = None,
               progress: Callable[[str], None] = lambda _: None) -> Path:
    """The whole site in `folder`: the repository's pages copied there (unless it is `web/` itself),
    the graphs, the runtime and the gallery. Returns `folder`."""
    folder = Path(folder) if folder else SOURCE
    if folder.resolve() != SOURCE:
        shutil.copytree(SOURCE, folder, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("node_modules", *(Path(m).name for m in MADE)))
    progress("exporting the models")
    export_for_browser(folder / "models", models, progress)
    progress("fetching onnxruntime-web")
    install_runtime(folder / "vendor" / "onnxruntime-web", SOURCE / "package-lock.json")
    gallery_thumbnails(folder / "gallery" / "photos", sorted(EXAMPLES.glob("*.jpg")), progress)
    return folder
