"""The before/after viewer shared by the Encode and Decode tabs: both images in one frame, pan and
zoom kept in step, a split line to drag, Fit and 100 % buttons (its behaviour: static/page.js)."""
from __future__ import annotations

import html
from pathlib import Path
from typing import Union

from PIL import Image, ImageDraw

from webapp.sessions import file_url, save_png


def compare_html(before: Union[str, Path], before_label: str, after: Union[str, Path], after_label: str,
                 size: tuple[int, int]) -> str:
    """The viewer for two images shown at `size` (the photo's), `before` left of the split line.
    A smaller `before` (a thumbnail) is scaled up by the browser."""
    width, height = size
    before_label, after_label = html.escape(before_label), html.escape(after_label)
    key = html.escape(f"{before}|{after}")  # a new pair of images: the page fits the view afresh
    return f"""<div class="ht-compare" data-width="{width}" data-height="{height}" data-key="{key}">
  <div class="ht-toolbar">
    <button type="button" data-view="fit">Fit</button>
    <button type="button" data-view="100">100 %</button>
    <span class="ht-zoom" aria-live="polite"></span>
    <span class="ht-hint">Drag the line to compare; scroll or pinch to zoom; drag the photo to move it.</span>
  </div>
  <div class="ht-stage" style="aspect-ratio: {width} / {height}">
    <div class="ht-layer ht-after"><img src="{html.escape(file_url(after))}" width="{width}" height="{height}"
      alt="{after_label}" draggable="false"></div>
    <div class="ht-layer ht-before"><img src="{html.escape(file_url(before))}" width="{width}" height="{height}"
      alt="{before_label}" draggable="false"></div>
    <div class="ht-handle" aria-hidden="true"></div>
    <span class="ht-tag ht-tag-before">{before_label}</span><span class="ht-tag ht-tag-after">{after_label}</span>
  </div>
  <input class="ht-split" type="range" min="0" max="100" value="50"
    aria-label="Split between {before_label} (left) and {after_label} (right)">
</div>"""


def region_preview(photo: Image.Image, box: tuple[int, int, int, int], folder: Path) -> str:
    """A small copy of the photo with `box` outlined (the chart's region, the study's crop)."""
    preview = photo.copy()
    preview.thumbnail((480, 480), Image.LANCZOS)
    scale = preview.width / photo.width
    ImageDraw.Draw(preview).rectangle([round(v * scale) for v in box], outline=(255, 40, 40),
                                      width=max(2, preview.width // 160))
    return save_png(preview, folder / "region.png")
