"""Shared fixtures: small photo-like images made in the test, and small random-weight models."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFilter

from hyperthumb.codec.thumbnail_codec import HyperThumbCodec
from hyperthumb.errors import CheckpointNotFoundError
from hyperthumb.models.model import HyperThumbConfig, HyperThumbModel
from hyperthumb.zoo import ENCODER_OF_CHECKPOINT, FAST_DECODER_CHECKPOINTS, MARKER_OF_CHECKPOINT

# Test tensors are small: one thread beats two, and does not fight the training runs for the cores.
torch.set_num_threads(1)

SMALL_ENCODERS = {
    "rdbunet": {"features": 8, "growth": 8, "dense_layers": 2, "blocks_per_level": 1},
    "transformer": {"features": 8, "embed_dim": 16, "depth": 2, "heads": 2, "window": 4},
}


def photo_like(width: int, height: int, seed: int = 0) -> Image.Image:
    """Smooth gradients, hard edges and fine texture: what a photo has, made in a few ms."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([128 + 90 * np.sin(x / 37 + seed), 128 + 90 * np.cos(y / 29), 128 + 60 * np.sin((x + y) / 53)], -1)
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        draw.ellipse([x0, y0, x0 + rng.integers(10, 120), y0 + rng.integers(10, 120)],
                     fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    noise = rng.normal(0, 12, (height, width, 3))
    textured = np.clip(np.asarray(image.filter(ImageFilter.GaussianBlur(1)), np.float32) + noise, 0, 255)
    return Image.fromarray(textured.astype(np.uint8))


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example_crop(name: str, width: int, height: int, folder: Path) -> Path:
    """The top-left `width` x `height` of the shipped example photo `name` (examples/), as a PNG in
    `folder`: a real photo of a test's size, on any machine."""
    path = folder / f"{Path(name).stem}-{width}x{height}.png"
    with Image.open(EXAMPLES / name) as photo:
        photo.convert("RGB").crop((0, 0, width, height)).save(path)
    return path


@pytest.fixture(scope="session")
def odd_photo() -> Image.Image:
    return photo_like(517, 389)


def small_model(encoder: str = "rdbunet", seed: int = 0) -> HyperThumbModel:
    torch.manual_seed(seed)
    return HyperThumbModel(HyperThumbConfig(encoder=encoder, encoder_options=SMALL_ENCODERS.get(encoder, {})))


def small_checkpoint_model(checkpoint: str) -> HyperThumbModel:
    """A small random-weight stand-in for a shipped checkpoint (a fast decoder's has one HR block)."""
    model = small_model(ENCODER_OF_CHECKPOINT[checkpoint])
    if checkpoint in FAST_DECODER_CHECKPOINTS:
        model = model.with_decoder(replace(model.config.decoder, hr_blocks=1))
    return model


@pytest.fixture(scope="session")
def small_codec() -> HyperThumbCodec:
    return HyperThumbCodec(small_model("rdbunet"), name="rdbunet")


def small_checkpoint_loader(checkpoint: str, source, device: str) -> HyperThumbModel:
    """A `ModelZoo` loader for tests of what runs the models (app, study pool), not of the trained
    weights: a small random-weight model per checkpoint name; a name with no shipped checkpoint is
    not found, as with the real loader."""
    if checkpoint not in MARKER_OF_CHECKPOINT:
        raise CheckpointNotFoundError(f"no checkpoint for {checkpoint!r}")
    return small_checkpoint_model(checkpoint).to(device)
