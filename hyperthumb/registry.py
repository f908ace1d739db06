"""Every compared method, once: its name, checkpoint, architecture, sizes, label and colour.

The command line's choices, `evaluate`, the charts, the app and training all read this table, so
adding a method is one entry here (plus its code), never a hunt for lists.

- `rdbunet`, `transformer`: HyperThumb with a learned encoder and the QPM's tables.
- `rdbunet-fast`, `transformer-fast`: the same encoder, QPM and thumbnail files, restored by a
  one-block decoder trained alone against them (`train --init-from weights/<encoder> --decoder-only
  --hr-blocks 1`): a file of either decodes with both; the fast one trades quality for speed.
- `rdbunet-lite`, `transformer-lite`: a lite encoder (`--preset lite`, 4-6x fewer operations)
  trained whole with the fast decoder, from the fast checkpoint's QPM, rate model and decoder
  (`train --init-from weights/<encoder>-fast --preset lite`): its own thumbnail files, and an encode
  that costs a few fast decodes instead of many.
- `bicubic-jpeg-sr`: a bicubic thumbnail with standard IJG tables, restored by our decoder trained
  on such files (its checkpoint folder is `bicubic-sr`, its encoder architecture `bicubic`).
- `bicubic-jpeg`: the plain baseline, no learning; the reference of every Bjontegaard delta.
- `jpeg-full`, `webp-full`, `avif-full`: the whole photo in that format at the same size, what a
  user could store instead when no thumbnail is needed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

LEARNED, BASELINE_KIND, REFERENCE = "learned", "baseline", "reference"


@dataclass(frozen=True)
class Method:
    name: str
    label: str
    colour: str
    kind: str  # LEARNED (a checkpoint), BASELINE_KIND (no learning) or REFERENCE (full resolution)
    checkpoint: Optional[str] = None  # folder under weights/, Hub repository subfolder, thumbnail marker name
    encoder: Optional[str] = None  # architecture in hyperthumb.encoders
    # Encoder options per preset: the paper's size (for a GPU), a reduced one for a 2-core CPU, and a
    # lite one whose 6K encode costs about two fast decodes (4-6x fewer operations than `cpu`).
    presets: dict = field(default_factory=dict)
    # A fast decoder's: the checkpoint whose encoder it shares, whose thumbnails (marker name) it
    # writes and reads.
    fast_decoder_for: Optional[str] = None
    # A lite checkpoint's: the method whose architecture it shrinks (its own files, encoder and decoder).
    lite_of: Optional[str] = None

    @property
    def dashed(self) -> bool:
        return self.kind == REFERENCE


METHODS: dict[str, Method] = {method.name: method for method in (
    Method("rdbunet", "RDBUnet", "#1f77b4", LEARNED, "rdbunet", "rdbunet", {
        "paper": {"features": 64, "growth": 32, "dense_layers": 4, "blocks_per_level": 2},
        "cpu": {"features": 32, "growth": 16, "dense_layers": 4, "blocks_per_level": 1},
        "lite": {"features": 16, "growth": 8, "dense_layers": 2, "blocks_per_level": 1}}),
    Method("transformer", "Transformer", "#d62728", LEARNED, "transformer", "transformer", {
        "paper": {"features": 64, "embed_dim": 128, "depth": 8, "heads": 4},
        "cpu": {"features": 32, "embed_dim": 64, "depth": 4, "heads": 2},
        "lite": {"features": 16, "embed_dim": 32, "depth": 2, "heads": 2}}),
    Method("rdbunet-fast", "RDBUnet, fast decoder", "#aec7e8", LEARNED, "rdbunet-fast", "rdbunet",
           fast_decoder_for="rdbunet"),
    Method("transformer-fast", "Transformer, fast decoder", "#ff9896", LEARNED, "transformer-fast", "transformer",
           fast_decoder_for="transformer"),
    Method("rdbunet-lite", "RDBUnet lite", "#17becf", LEARNED, "rdbunet-lite", "rdbunet", lite_of="rdbunet"),
    Method("transformer-lite", "Transformer lite", "#e377c2", LEARNED, "transformer-lite", "transformer",
           lite_of="transformer"),
    Method("bicubic-jpeg-sr", "bicubic JPEG + our decoder", "#2ca02c", LEARNED, "bicubic-sr", "bicubic",
           {preset: {} for preset in ("cpu", "paper", "lite")}),
    Method("bicubic-jpeg", "bicubic JPEG", "#7f7f7f", BASELINE_KIND),
    Method("jpeg-full", "full-size JPEG", "#8c564b", REFERENCE),
    Method("webp-full", "full-size WebP", "#9467bd", REFERENCE),
    Method("avif-full", "full-size AVIF", "#ff7f0e", REFERENCE),
)}
BASELINE = "bicubic-jpeg"
PRESETS = ("cpu", "paper", "lite")
# The two encoders the product compares (the app's choices).
ENCODER_METHODS = tuple(m.name for m in METHODS.values()
                        if m.kind == LEARNED and m.encoder != "bicubic" and not m.fast_decoder_for and not m.lite_of)
FAST_DECODER_OF = {m.fast_decoder_for: m.checkpoint for m in METHODS.values() if m.fast_decoder_for}
LITE_MODEL_OF = {m.lite_of: m.name for m in METHODS.values() if m.lite_of}  # architecture -> its lite model
LITE_METHODS = tuple(LITE_MODEL_OF.values())
# What `encode` may make: the two encoders, then their lite versions.
ENCODING_METHODS = (*ENCODER_METHODS, *LITE_METHODS)
REFERENCE_METHODS = tuple(m.name for m in METHODS.values() if m.kind == REFERENCE)
CHECKPOINT_OF_METHOD = {m.name: m.checkpoint for m in METHODS.values() if m.checkpoint}
CHECKPOINTS = tuple(CHECKPOINT_OF_METHOD.values())
ENCODER_OF_CHECKPOINT = {m.checkpoint: m.encoder for m in METHODS.values() if m.checkpoint}
# The name a checkpoint's thumbnails carry in their marker, and which it accepts.
MARKER_OF_CHECKPOINT = {m.checkpoint: m.fast_decoder_for or m.checkpoint for m in METHODS.values() if m.checkpoint}
# The checkpoints trained whole (encoder, QPM and decoder); the fast decoders follow their encoder's.
WHOLE_CHECKPOINTS = tuple(c for c in CHECKPOINTS if c not in FAST_DECODER_OF.values())
# What a GPU round resumes: the checkpoints the product compares (the lite ones would not fit its ten minutes).
ROUND_CHECKPOINTS = tuple(m.checkpoint for m in METHODS.values()
                          if m.checkpoint in WHOLE_CHECKPOINTS and not m.lite_of)
# The checkpoints whose decoder is a fast one (one HR block): the fast decoders and the lite models.
FAST_DECODER_CHECKPOINTS = tuple(m.checkpoint for m in METHODS.values() if m.fast_decoder_for or m.lite_of)
ARCHITECTURES = tuple(dict.fromkeys(m.encoder for m in METHODS.values() if m.encoder))


def encoder_options(encoder: str, preset: str) -> dict:
    """The encoder options of architecture `encoder` at `preset`."""
    for method in METHODS.values():
        if method.encoder == encoder and method.presets:
            return dict(method.presets[preset])
    raise ValueError(f"unknown encoder {encoder!r}; choose one of {ARCHITECTURES}")
