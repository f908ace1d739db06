"""The decode half as ONNX graphs a web page runs (onnxruntime-web), and the manifest that names them.

A browser decodes a JPEG to pixels with its own libjpeg-turbo, and its script can read the file's
headers but not, cheaply, its entropy-coded integers. So each graph takes what the page has: the
thumbnail's RGBA pixels over its whole 8x8 block grid (uint8, as a canvas gives them) and the two
quantization tables (natural order). Inside it the JPEG's steps run again (the colour transform,
the 8x8 DCT as a space-to-depth and a 1x1 convolution, the division by the tables and the rounding) and give back
the file's integers: the codec's `coefficients_from="pixels"` route, which agrees with the file's
own integers within 0.05 dB. Then the model's `synthesize` runs, and the graph returns the
restored photo as RGBA uint8, ready for an ImageData. Every graph is fully convolutional, so the
page may run it on tiles of any whole number of blocks (`TILE_BLOCKS`, with `HALO_BLOCKS` of
context on each inner side).

`export_for_browser` writes one graph per shipped checkpoint (`<checkpoint>.onnx`) and
`models.json`: per thumbnail model (the marker's name), its encoder identifier, scale and the
graph of each decoder kind the page offers ("full", "fast", "sharp").
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from hyperthumb import zoo
from hyperthumb.codec.engines import quiet_eval, weights_digest, write_atomically
from hyperthumb.models import HyperThumbModel, differentiable_jpeg
from hyperthumb.models.pixels import round_to_pixel_values_

MANIFEST_NAME = "models.json"
# Raised whenever the graphs change for the same weights, so that export-web makes them again.
MANIFEST_VERSION = 3
# The page's kinds of decoder and the zoo's: "full" is the checkpoint's own (faithful) decoder.
PAGE_DECODERS = {"full": "faithful", "fast": "fast", "sharp": "sharp"}
# Tiles the page runs, in 8x8 blocks of the thumbnail: 64 blocks (512 thumbnail pixels, 2048 HR)
# plus 4 blocks of context on each inner side, the halo the Python codec uses too (DEFAULT_HALO).
TILE_BLOCKS = 64
HALO_BLOCKS = 4
_OPSET = 18


def _dct_matrix() -> torch.Tensor:
    """(192,192): the 2-D DCT of a block's 64 samples (row-major, `pixel_unshuffle`'s order) to its
    64 coefficients (u*8+v, the order of `coefficients_as_channels`), once per colour component.
    After a pixel unshuffle, a 1x1 convolution with it is `blockwise_dct`; its transpose, before a
    pixel shuffle, the inverse."""
    d = differentiable_jpeg._DCT
    per_component = torch.einsum("uy,vx->uvyx", d, d).reshape(64, 64)
    return torch.block_diag(per_component, per_component, per_component)


class BrowserDecoder(nn.Module):
    """RGBA pixels of a thumbnail's block grid and its tables -> the restored photo as RGBA, all uint8."""

    def __init__(self, model: HyperThumbModel):
        super().__init__()
        self.model = model
        colour = differentiable_jpeg._RGB_TO_YCBCR
        self.register_buffer("to_ycbcr", colour.reshape(3, 3, 1, 1), persistent=False)
        self.register_buffer("to_rgb", torch.linalg.inv(colour).reshape(3, 3, 1, 1), persistent=False)
        self.register_buffer("ycbcr_offset", torch.tensor([0.0, 128.0, 128.0]), persistent=False)
        dct = _dct_matrix()
        self.register_buffer("dct", dct.reshape(192, 192, 1, 1), persistent=False)
        self.register_buffer("idct", dct.t().reshape(192, 192, 1, 1).contiguous(), persistent=False)

    def forward(self, rgba: torch.Tensor, luma_table: torch.Tensor, chroma_table: torch.Tensor) -> torch.Tensor:
        """(1,H,W,4) uint8, H and W multiples of 8; (64,) tables -> (1,sH,sW,4) uint8."""
        rgb = rgba[..., :3].permute(0, 3, 1, 2).float()
        shifted = F.conv2d(rgb, self.to_ycbcr, self.ycbcr_offset - 128.0)
        # The DCT and its inverse: 1x1 convolutions over the 8x8 blocks as channels (`_dct_matrix`).
        coefficients = F.conv2d(F.pixel_unshuffle(shifted, 8), self.dct)  # (1,192,H/8,W/8)
        tables = torch.cat([luma_table, chroma_table, chroma_table]).reshape(1, 192, 1, 1)
        dequantized = torch.round(coefficients / tables) * tables
        samples = (F.pixel_shuffle(F.conv2d(dequantized, self.idct), 8) + 128.0).clamp(0.0, 255.0)
        decoded = (F.conv2d(samples - self.ycbcr_offset.reshape(1, 3, 1, 1), self.to_rgb) / 255.0).clamp(0.0, 1.0)
        restored = round_to_pixel_values_(self.model.decoder(dequantized, decoded))
        # Alpha joins in float and one cast makes the bytes: onnxruntime-web 1.31's WebGPU shader for
        # an 8-bit Expand (a uint8 full_like) does not compile.
        opaque = F.pad(restored, (0, 0, 0, 0, 0, 1), value=255.0)
        return opaque.permute(0, 2, 3, 1).to(torch.uint8)


def example_inputs(blocks: tuple[int, int] = (3, 5)) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A thumbnail of `blocks` (rows, columns) of noise and a mid-quality pair of tables."""
    rows, columns = blocks
    rgba = torch.randint(0, 256, (1, rows * 8, columns * 8, 4), dtype=torch.uint8)
    return rgba, torch.full((64,), 6.0), torch.full((64,), 9.0)


def export_graph(model: HyperThumbModel, path: Path) -> None:
    """`model`'s browser graph as one ONNX file, its height and width free."""
    graph = BrowserDecoder(model)
    side = {1: torch.export.Dim.DYNAMIC, 2: torch.export.Dim.DYNAMIC}
    with quiet_eval(graph), torch.no_grad():
        torch.onnx.export(graph, example_inputs(), str(path), dynamo=True, external_data=False, verbose=False,
                          opset_version=_OPSET, input_names=["rgba", "luma_table", "chroma_table"],
                          output_names=["restored"],
                          dynamic_shapes={"rgba": side, "luma_table": None, "chroma_table": None})


def _page_models() -> dict[str, dict[str, str]]:
    """Per thumbnail model (marker name): the page's decoder kind -> the checkpoint that gives it."""
    models = {}
    for checkpoint in zoo.CHECKPOINTS:
        marker = zoo.MARKER_OF_CHECKPOINT[checkpoint]
        if marker == checkpoint:
            kinds = {"faithful": checkpoint, **zoo.DECODERS_OF.get(checkpoint, {})}
            models[marker] = {page: kinds[kind] for page, kind in PAGE_DECODERS.items() if kind in kinds}
    return models


def export_for_browser(folder: Path, models: Optional[Iterable[str]] = None,
                       progress: Callable[[str], None] = lambda _: None) -> dict:
    """Writes each thumbnail model's graphs and `models.json` into `folder` and returns the manifest.
    A graph whose checkpoint's weights are those it was exported from is kept (the manifest records
    their digest), so a second call costs only the checkpoints' loading."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path = folder / MANIFEST_NAME
    old = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    old_digests = {graph["file"]: graph["digest"] for entry in old.get("models", {}).values()
                   for graph in entry["decoders"].values()} if old.get("version") == MANIFEST_VERSION else {}
    wanted = _page_models()
    unknown = set(models or ()) - set(wanted)
    if unknown:
        raise ValueError(f"no such thumbnail model: {', '.join(sorted(unknown))} (there are {', '.join(wanted)})")
    entries = {}
    for marker, kinds in wanted.items():
        if models and marker not in models:
            continue
        decoders, encoder_id, scale = {}, None, None
        for page_kind, checkpoint in kinds.items():
            model = zoo.load_checkpoint(checkpoint).eval()
            encoder_id, scale = encoder_id or model.encoder_id(), model.config.scale
            file, digest = f"{checkpoint}.onnx", weights_digest(model.decoder)
            if old_digests.get(file) != digest or not (folder / file).is_file():
                progress(f"exporting {file}")
                write_atomically(folder / file, lambda path, model=model: export_graph(model, path))
            decoders[page_kind] = {"file": file, "digest": digest, "bytes": (folder / file).stat().st_size}
        entries[marker] = {"encoder_id": encoder_id, "scale": scale, "decoders": decoders}
    manifest = {"version": MANIFEST_VERSION, "tile_blocks": TILE_BLOCKS, "halo_blocks": HALO_BLOCKS,
                "models": entries}
    write_atomically(manifest_path, lambda path: path.write_text(json.dumps(manifest, indent=1) + "\n"))
    return manifest
