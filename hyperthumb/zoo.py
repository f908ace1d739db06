"""The model zoo: which methods and checkpoints exist, where a checkpoint is found, and loading it.

Every compared method is listed once, with its name, checkpoint, architecture, sizes, label and
colour. The command line's choices, `evaluate`, the charts, the app and training all read this
table, so adding a method is one entry here (plus its code), never a hunt for lists.

`load_model` finds a checkpoint in an explicit folder, then in the repo's embedded `weights/<name>`,
then on the Hub repository named by HYPERTHUMB_HUB_REPO (subfolder `<name>`, revision
HYPERTHUMB_HUB_REVISION), and loads each once per process through a `ModelZoo`, whose loader a test
may replace (`ModelZoo(loader=...)`, installed with `use_zoo`).

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

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

import torch
from huggingface_hub.errors import HFValidationError
from PIL import Image

from hyperthumb.codec import HyperThumbCodec
from hyperthumb.codec.inspection import ThumbnailInfo, inspect_thumbnail
from hyperthumb.codec.runtime import checked_device
from hyperthumb.errors import CheckpointNotFoundError, InvalidSettingError, InvalidThumbnailError
from hyperthumb.models import HyperThumbModel
from hyperthumb.models.pretrained import CONFIG_NAME, STATE_NAME, WEIGHTS_NAME, fetch_checkpoint, is_checkpoint

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
    # A decoder-only checkpoint's: the checkpoint whose encoder and QPM it shares, whose thumbnails
    # (marker name) it writes and reads, and the kind of restoration it gives (a `DECODERS` entry).
    decoder_for: Optional[str] = None
    decoder: str = "faithful"
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
           decoder_for="rdbunet", decoder="fast"),
    Method("transformer-fast", "Transformer, fast decoder", "#ff9896", LEARNED, "transformer-fast", "transformer",
           decoder_for="transformer", decoder="fast"),
    Method("rdbunet-sharp", "RDBUnet, sharp decoder", "#393b79", LEARNED, "rdbunet-sharp", "rdbunet",
           decoder_for="rdbunet", decoder="sharp"),
    Method("transformer-sharp", "Transformer, sharp decoder", "#843c39", LEARNED, "transformer-sharp",
           "transformer", decoder_for="transformer", decoder="sharp"),
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
# The restorations of one thumbnail: the checkpoint's own decoder, a quicker one, one made for the eye.
DECODERS = ("faithful", "fast", "sharp")
PRESETS = ("cpu", "paper", "lite")
# The two encoders the product compares (the app's choices).
ENCODER_METHODS = tuple(m.name for m in METHODS.values()
                        if m.kind == LEARNED and m.encoder != "bicubic" and not m.decoder_for and not m.lite_of)
# checkpoint -> {decoder kind: the decoder-only checkpoint that restores its files that way}
DECODERS_OF = {base: {m.decoder: m.checkpoint for m in METHODS.values() if m.decoder_for == base}
               for base in dict.fromkeys(m.decoder_for for m in METHODS.values() if m.decoder_for)}
FAST_DECODER_OF = {checkpoint: kinds["fast"] for checkpoint, kinds in DECODERS_OF.items() if "fast" in kinds}
LITE_MODEL_OF = {m.lite_of: m.name for m in METHODS.values() if m.lite_of}  # architecture -> its lite model
LITE_METHODS = tuple(LITE_MODEL_OF.values())
# What `encode` may make: the two encoders, then their lite versions.
ENCODING_METHODS = (*ENCODER_METHODS, *LITE_METHODS)
REFERENCE_METHODS = tuple(m.name for m in METHODS.values() if m.kind == REFERENCE)
CHECKPOINT_OF_METHOD = {m.name: m.checkpoint for m in METHODS.values() if m.checkpoint}
CHECKPOINTS = tuple(CHECKPOINT_OF_METHOD.values())
ENCODER_OF_CHECKPOINT = {m.checkpoint: m.encoder for m in METHODS.values() if m.checkpoint}
# The name a checkpoint's thumbnails carry in their marker, and which it accepts.
MARKER_OF_CHECKPOINT = {m.checkpoint: m.decoder_for or m.checkpoint for m in METHODS.values() if m.checkpoint}
# The checkpoints whose decoder is a fast one (one HR block): the fast decoders and the lite models.
FAST_DECODER_CHECKPOINTS = tuple(m.checkpoint for m in METHODS.values() if m.decoder == "fast" or m.lite_of)
ARCHITECTURES = tuple(dict.fromkeys(m.encoder for m in METHODS.values() if m.encoder))


def encoder_options(encoder: str, preset: str) -> dict:
    """The encoder options of architecture `encoder` at `preset`."""
    for method in METHODS.values():
        if method.encoder == encoder and method.presets:
            return dict(method.presets[preset])
    raise ValueError(f"unknown encoder {encoder!r}; choose one of {ARCHITECTURES}")


EMBEDDED_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
HUB_REPO_ENV = "HYPERTHUMB_HUB_REPO"
HUB_REVISION_ENV = "HYPERTHUMB_HUB_REVISION"
PathLike = Union[str, os.PathLike]


def checkpoint_folder(name: str, source: Optional[PathLike] = None) -> Path:
    """The local folder of the checkpoint `load_model(name, source)` uses (in the Hub cache when it
    comes from the Hub); raises CheckpointNotFoundError."""
    if source is not None:
        if not is_checkpoint(source):
            raise CheckpointNotFoundError(f"{source} holds no {CONFIG_NAME} and {WEIGHTS_NAME}")
        return Path(source)
    if is_checkpoint(EMBEDDED_WEIGHTS / name):
        return EMBEDDED_WEIGHTS / name
    repo = os.environ.get(HUB_REPO_ENV)
    if not repo:
        raise CheckpointNotFoundError(f"no checkpoint for {name!r}: none in {EMBEDDED_WEIGHTS / name} and no Hub "
                                      f"repository set in {HUB_REPO_ENV}")
    try:
        return fetch_checkpoint(repo, name, revision=os.environ.get(HUB_REVISION_ENV))
    except (OSError, HFValidationError) as exc:  # unreachable, not cached, no such repository or revision
        raise CheckpointNotFoundError(
            f"could not fetch {name!r} from the Hub repository {repo!r} ({type(exc).__name__}: {exc})") from None


def load_checkpoint(name: str, source: Optional[PathLike] = None,
                    device: Union[str, torch.device] = "cpu") -> HyperThumbModel:
    return HyperThumbModel.from_pretrained(checkpoint_folder(name, source), map_location=device)


def checkpoint_summary(name: str, source: Optional[PathLike] = None) -> dict:
    """What a page says about the checkpoint `load_model` would use: its training steps, time and
    date (UTC, ISO 8601) from training_state.json (None where the folder has none); raises
    CheckpointNotFoundError."""
    state_path = checkpoint_folder(name, source) / STATE_NAME
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    return {"encoder": name, "trained_steps": state.get("step"), "train_seconds": state.get("seconds"),
            "saved": state.get("saved")}


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


CheckpointLoader = Callable[[str, Optional[PathLike], str], HyperThumbModel]


class ModelZoo:
    """Loads each (checkpoint, source, device) once and keeps its codec. `loader` reads a
    checkpoint into a model: `load_checkpoint` by default; tests pass one that builds small models."""

    def __init__(self, loader: CheckpointLoader = load_checkpoint, size: int = 8):
        self.loader = loader
        self._codec = lru_cache(maxsize=size)(self._load)

    def _load(self, name: str, source: Optional[str], device: str) -> HyperThumbCodec:
        return HyperThumbCodec(self.loader(name, source, device), name=name, device=device,
                               marker=MARKER_OF_CHECKPOINT.get(name))

    def load(self, name: str, source: Optional[PathLike] = None, device: Optional[str] = None) -> HyperThumbCodec:
        device = str(checked_device(device or default_device()))
        return self._codec(name, None if source is None else str(source), device)

    def clear(self) -> None:
        self._codec.cache_clear()


_zoo = ModelZoo()


@contextmanager
def use_zoo(zoo: ModelZoo) -> Iterator[ModelZoo]:
    """Within the block, `load_model` and `decode` load through `zoo` (a test's small models, or
    another folder of weights); the previous zoo is back afterwards."""
    global _zoo
    previous, _zoo = _zoo, zoo
    try:
        yield zoo
    finally:
        _zoo = previous


def load_model(encoder: str, source: Optional[PathLike] = None, device: Optional[str] = None) -> HyperThumbCodec:
    """The codec for checkpoint `encoder` ("rdbunet", "transformer", "bicubic-sr", the fast decoders
    "rdbunet-fast", "transformer-fast", or the lite models "rdbunet-lite", "transformer-lite"), loaded
    once per process."""
    return _zoo.load(encoder, source, device)


def decoder_checkpoint(model: str, decoder: str = "faithful") -> str:
    """The checkpoint that restores `model`'s thumbnails as `decoder` asks (a `DECODERS` kind); a
    lite model's own decoder is a fast one."""
    if decoder not in DECODERS:
        raise InvalidSettingError(f"decoder must be one of {', '.join(DECODERS)}, not {decoder!r}")
    if decoder == "faithful" or (decoder == "fast" and model in LITE_METHODS):
        return model
    if decoder not in DECODERS_OF.get(model, {}):
        raise InvalidThumbnailError(f"the {model!r} model has no {decoder} decoder")
    return DECODERS_OF[model][decoder]


def decode(source: Union[bytes, str, os.PathLike, ThumbnailInfo], device: Optional[str] = None,
           weights: Optional[PathLike] = None, fast: bool = False, decoder: str = "faithful",
           max_pixels: Optional[int] = None) -> Image.Image:
    """Restores the HR photo from a HyperThumb JPEG (or its `inspect_thumbnail` result, not parsed
    again), using the model its marker names (found as `load_model` finds it, or in the checkpoint
    folder `weights`), through that model's `decoder` ("faithful": its own; "fast"; "sharp");
    `fast=True` is `decoder="fast"`. `max_pixels` refuses a file that would restore a larger photo."""
    info = inspect_thumbnail(source, max_pixels)
    name = decoder_checkpoint(info.model, "fast" if fast else decoder)
    return load_model(name, source=weights, device=device).decode(info.jpeg)
