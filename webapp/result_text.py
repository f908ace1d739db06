"""What an encode result says in words: the verdict, the figures tables, the thumbnail at its true
size, and the note under the chart."""
from __future__ import annotations

import base64
import html

import hyperthumb
from hyperthumb import zoo
from webapp.wording import model_note, ratio_text, size_text, table_html


def true_size_html(jpeg: bytes, size: tuple[int, int], label: str) -> str:
    """The thumbnail as any viewer shows it, one screen pixel per thumbnail pixel."""
    source = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
    return (f'<div class="ht-thumbnail"><img src="{source}" width="{size[0]}" height="{size[1]}" '
            f'alt="{html.escape(label)} thumbnail, {size[0]}x{size[1]}"></div>'
            f"<p>{size[0]}x{size[1]} pixels, {size_text(len(jpeg))}: an ordinary JPEG.</p>")


def verdict(state: dict) -> str:
    """What the result means, in a sentence or two per encoder."""
    upload, (width, height) = state["upload_bytes"], state["photo"].size
    lines = []
    for entry in state["results"]:
        result, figures = entry["result"], entry["figures"]
        size = len(result.jpeg)
        label = zoo.METHODS[entry["method"]].label
        line = (f"**{label}**: your {size_text(upload)} photo ({width}x{height}) became a **{size_text(size)}** "
                f"thumbnail ({ratio_text(size, upload)}), an ordinary JPEG that any viewer opens.")
        if size >= upload:
            line += (f" It is not smaller than your upload: choose a size below "
                     f"{upload * 8 / (width * height):.2f} bits per pixel.")
        if figures is None:
            line += " Measuring how close the restored photo is ..."
        else:
            gain = figures["psnr_hr"] - figures["psnr_upscaled"]
            closer = ("much closer to yours than" if gain >= 1.5 else "closer to yours than" if gain >= 0.3
                      else "about as close to yours as")
            line += (f" Restored from it, the photo is {closer} the same thumbnail only upscaled "
                     f"({figures['psnr_hr']:.1f} against {figures['psnr_upscaled']:.1f} dB of PSNR, higher is "
                     f"closer): drag the line in the viewer and press 100 % to see it.")
        lines.append(line)
    return "\n\n".join(lines)


def figures_table(state: dict) -> str:
    rows = [["Thumbnail file"], ["Restored photo: closeness (PSNR, higher is better)"],
            ["Thumbnail only upscaled: closeness (PSNR)"],
            ["Restored photo: visible difference (LPIPS, lower is better)"]]
    for entry in state["results"]:
        size, figures = len(entry["result"].jpeg), entry["figures"]
        rows[0].append(f"{size_text(size)}, {ratio_text(size, state['upload_bytes'])} than your upload")
        if figures is None:
            cells = ["measuring ..."] * 3
        else:
            lpips = "not available" if figures["lpips_rgb"] is None else f"{figures['lpips_rgb']:.3f}"
            cells = [f"{figures['psnr_hr']:.2f} dB", f"{figures['psnr_upscaled']:.2f} dB", lpips]
        for row, cell in zip(rows[1:], cells):
            row.append(cell)
    return table_html(["", *[zoo.METHODS[entry["method"]].label for entry in state["results"]]], rows)


def expert_table(state: dict) -> str:
    rows = [["Bits per pixel (target)"], ["Thumbnail PSNR against a bicubic downscale (dB)"],
            ["SSIM of the restored photo (1 = identical)"], ["Encode time (s)"], ["Restore time (s)"], ["Model"]]
    for entry in state["results"]:
        result, figures = entry["result"], entry["figures"] or {}
        reached = "" if result.reached_target else ", out of reach"
        cells = [f"{result.bpp:.4f} ({result.target_bpp:.2f}{reached})",
                 f"{figures['psnr_lr']:.2f}" if figures else "measuring ...",
                 f"{figures['ssim_hr']:.4f}" if figures else "measuring ...",
                 f"{result.encode_s:.2f}", f"{result.decode_s:.2f}",
                 f"{model_note(zoo.CHECKPOINT_OF_METHOD[entry['method']])} on {hyperthumb.default_device()}"]
        for row, cell in zip(rows, cells):
            row.append(cell)
    return table_html(["", *[zoo.METHODS[entry["method"]].label for entry in state["results"]]], rows)


def chart_note(points: dict, learned: list[str], whole: bool) -> str:
    """What the chart shows, and which lines lie on one another."""
    note = ("Each line is one way of keeping your photo small; the higher a line, the closer the photo it "
            "restores. The stars are your setting" + ("." if whole else ", measured on the same region as the "
                                                            "lines (the figures above are for the whole photo)."))
    if len(learned) == 2:
        shared = [rate for (curve, rate) in points if curve == learned[0] and (learned[1], rate) in points]
        gap = max(abs(points[learned[0], rate]["psnr_hr"] - points[learned[1], rate]["psnr_hr"]) for rate in shared)
        if gap < 0.2:
            labels = [zoo.METHODS[method].label for method in learned]
            note += (f" {labels[0]} and {labels[1]} lie within {gap:.2f} dB of each other here, so their lines "
                     "overlap (circles and diamonds).")
    return note
