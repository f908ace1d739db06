"""Plain words for the figures the tabs show: sizes as people read them, each measure with what
higher or lower means, the model behind a result."""
from __future__ import annotations

import html

from hyperthumb.errors import HyperThumbError
from hyperthumb.zoo import checkpoint_summary


def size_text(size: int) -> str:
    """A file size as the page's download boxes show it (1 KB = 1,024 bytes)."""
    return f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{size / 2**10:.1f} KB" if size >= 2**10 else f"{size} bytes"


def ratio_text(size: int, reference: int) -> str:
    """How much smaller (or larger) `size` is than `reference`."""
    if size < reference:
        return f"{reference / size:.0f}x smaller" if size * 10 <= reference else f"{reference / size:.1f}x smaller"
    return f"{size / reference:.1f}x larger"


def model_note(checkpoint: str) -> str:
    """The checkpoint a result came from and how long it was trained, for the curious."""
    try:
        summary = checkpoint_summary(checkpoint)
    except HyperThumbError:
        return f"{checkpoint} (no checkpoint found)"
    steps, saved = summary["trained_steps"], summary["saved"]
    if not steps:
        return f"{checkpoint} (checkpoint of unknown step)"
    return f"{checkpoint}, trained {steps:,} steps" + (f" (saved {saved[:10]})" if saved else "")


def table_html(header: list[str], rows: list[list[str]], caption: str = "") -> str:
    """A small table of figures: the first column names the measure, one column per result."""
    head = "".join(f"<th scope='col'>{html.escape(cell)}</th>" for cell in header)
    body = "".join("<tr><th scope='row'>" + html.escape(row[0]) + "</th>"
                   + "".join(f"<td class='ht-value'>{html.escape(cell)}</td>" for cell in row[1:]) + "</tr>"
                   for row in rows)
    caption = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table class='ht-figures'>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
