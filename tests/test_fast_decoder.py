"""The fast decoders and the decoder's output path.

- Every decoder adds its bicubic upscale as phases before the pixel shuffle: exactly the upscale.
- A fast decoder is trained alone (`train --decoder-only --hr-blocks 1`) against a frozen encoder
  and QPM, so the shipped fast checkpoints share every non-decoder weight with their encoder's
  checkpoint, write the very same files, and read each other's.
- A lite model pairs the lite encoder with a fast decoder of the same shape.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import hyperthumb
from hyperthumb.errors import InvalidSettingError, InvalidThumbnailError
from hyperthumb.evaluation.metrics import lpips_available, lpips_distance, psnr
from hyperthumb.models import decoder as decoder_module
from hyperthumb.models.decoder import BicubicPhases, DecoderConfig, FrequencyAwareDecoder
from hyperthumb.models.model import HyperThumbModel
from hyperthumb.models.pretrained import STATE_NAME
from hyperthumb.release.model_card import write_model_card
from hyperthumb.training.options import TrainOptions
from hyperthumb.training.train import train
from hyperthumb.zoo import (
    DECODERS_OF,
    ENCODER_METHODS,
    FAST_DECODER_OF,
    LITE_METHODS,
    METHODS,
    decoder_checkpoint,
    encoder_options,
    load_checkpoint,
)
from tests.conftest import photo_like, small_model
from tools.golden import GOLDEN_THUMBNAIL, PIXELS_CROP, centre_crop


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("size", [(1, 1), (2, 5), (13, 7)])
def test_bicubic_phases_are_the_bicubic_upscale(scale, size):
    x = torch.rand(2, 3, *size)
    expected = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)
    assert torch.allclose(F.pixel_shuffle(BicubicPhases(scale)(x), scale), expected, atol=1e-5)


def test_bicubic_phases_stay_fp32_under_autocast():
    x = torch.rand(1, 3, 16, 16)
    with torch.autocast("cpu", torch.bfloat16):
        phases = BicubicPhases(4)(x)
    assert phases.dtype == torch.float32
    assert torch.allclose(phases, BicubicPhases(4)(x))


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("hr_blocks, band_rows", [(1, 64), (3, 64), (3, 8)])
def test_inference_streams_the_image_in_bands_exactly(channels_last, hr_blocks, band_rows, monkeypatch):
    """Without autograd the HR branch runs over bands of thumbnail rows: 136 rows make three bands of
    64, the last one short; bands of 8 rows are too few for eight convolutions, which take 16."""
    monkeypatch.setattr(decoder_module, "_BAND_ROWS", band_rows)
    torch.manual_seed(0)
    decoder = FrequencyAwareDecoder(DecoderConfig(features=8, coefficient_blocks=1, hr_blocks=hr_blocks), 4).eval()
    torch.nn.init.normal_(decoder.upsample[0].weight, 0, 0.05)
    coefficients, thumbnail = torch.randn(1, 192, 17, 9), torch.rand(1, 3, 136, 72)
    if channels_last:
        decoder = decoder.to(memory_format=torch.channels_last)
        coefficients, thumbnail = (x.contiguous(memory_format=torch.channels_last) for x in (coefficients, thumbnail))
    whole = decoder(coefficients, thumbnail).detach()  # the training path: each layer over the whole image
    with torch.inference_mode():
        banded = decoder(coefficients, thumbnail)
    assert banded.shape == whole.shape == (1, 3, 544, 288)
    assert torch.allclose(banded, whole, atol=1e-5)
    assert banded.is_contiguous(memory_format=torch.channels_last) == channels_last


@pytest.mark.parametrize("in_bands", [True, False], ids=["bands (CPU)", "whole (GPU)"])
def test_inference_writes_8_bit_pixels_into_the_callers_image(monkeypatch, in_bands):
    """With `out`, the decoder rounds its HR into an (N,H,W,3) uint8 array, band by band on a CPU
    and whole on a GPU, the very pixels that rounding its float output gives."""
    monkeypatch.setattr(decoder_module, "_streams", lambda thumbnail: in_bands)
    torch.manual_seed(1)
    decoder = FrequencyAwareDecoder(DecoderConfig(features=8, coefficient_blocks=1, hr_blocks=1), 4).eval()
    torch.nn.init.normal_(decoder.upsample[0].weight, 0, 0.05)
    coefficients, thumbnail = torch.randn(1, 192, 17, 9), torch.rand(1, 3, 136, 72)
    pixels = np.zeros((1, 544, 288, 3), np.uint8)
    with torch.inference_mode():
        floats = decoder(coefficients, thumbnail)
        written = decoder(coefficients, thumbnail, out=torch.from_numpy(pixels).permute(0, 3, 1, 2))
    expected = (floats.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert written.dtype == torch.uint8 and np.array_equal(pixels, expected)
    assert pixels.std() > 10  # a picture, not a flat field


def test_shallower_decoder_keeps_the_first_blocks_and_everything_else():
    model = small_model("rdbunet")
    fast = model.with_decoder(replace(model.config.decoder, hr_blocks=1))
    assert fast.config.decoder.hr_blocks == 1 and len(fast.decoder.hr_branch) == 2
    state = model.state_dict()
    for name, value in fast.state_dict().items():
        assert torch.equal(value, state[name]), name  # the first block and every other layer copied


def test_narrower_hr_branch_starts_new_and_keeps_the_rest(tmp_path):
    model = small_model("rdbunet")
    narrow = model.with_decoder(replace(model.config.decoder, hr_blocks=1, hr_features=8))
    assert narrow.decoder.hr_branch[0].out_channels == 8 and narrow.decoder.upsample[0].in_channels == 8
    state = model.state_dict()
    for name, value in narrow.state_dict().items():
        if not name.startswith(("decoder.hr_branch.", "decoder.upsample.")):
            assert torch.equal(value, state[name]), name
    narrow.save_pretrained(tmp_path)
    loaded = HyperThumbModel.from_pretrained(tmp_path)
    assert loaded.config.decoder == narrow.config.decoder
    coefficients, thumbnail = torch.randn(1, 192, 4, 4), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.decoder(coefficients, thumbnail), narrow.decoder(coefficients, thumbnail))


@pytest.mark.training
def test_decoder_only_training_moves_the_decoder_alone(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for seed in range(2):
        photo_like(160, 128, seed=seed).save(photos / f"{seed}.png")
    small_model("transformer").save_pretrained(tmp_path / "start")
    out = train(TrainOptions(encoder="transformer", data=[str(photos)], out=str(tmp_path / "fast"), steps=3,
                             batch=2, patch=64, val_every=1000, init_from=str(tmp_path / "start"), hr_blocks=1,
                             decoder_only=True))
    start, fast = HyperThumbModel.from_pretrained(tmp_path / "start"), HyperThumbModel.from_pretrained(out)
    assert fast.config.decoder.hr_blocks == 1
    start_state = start.state_dict()
    moved = {name for name, value in fast.state_dict().items()
             if name not in start_state or not torch.equal(value, start_state[name])}
    assert moved and all(name.startswith("decoder.") for name in moved)
    with pytest.raises(ValueError, match="not 'rdbunet'"):
        train(TrainOptions(encoder="rdbunet", data=[str(photos)], out=str(tmp_path / "wrong"), steps=1,
                           init_from=str(tmp_path / "start")))


def _rdbunet_run(tmp_path, seed: int, out: str) -> dict:
    """Options of a two-step run on one small photo."""
    photos = tmp_path / "photos"
    photos.mkdir()
    photo_like(160, 128, seed=seed).save(photos / "0.png")
    return dict(encoder="rdbunet", data=[str(photos)], val=str(photos), out=str(tmp_path / out), steps=2,
                batch=2, patch=64, val_every=1000)


@pytest.mark.training
def test_a_whole_checkpoint_resumed_decoder_only_keeps_its_history_and_encoder(tmp_path):
    options = _rdbunet_run(tmp_path, 3, "run")
    before = HyperThumbModel.from_pretrained(train(TrainOptions(**options))).state_dict()
    out = train(TrainOptions(**options, decoder_only=True))  # the joint run's Adam state is not reused
    after = HyperThumbModel.from_pretrained(out).state_dict()
    moved = {name for name in after if not torch.equal(after[name], before[name])}
    assert moved and all(name.startswith("decoder.") for name in moved)
    card = write_model_card(out).read_text()
    assert "trained for 4 steps, the last 2 of them of the decoder alone" in card
    assert "fast decoder" not in card and "fast=True" not in card


@pytest.mark.training
def test_encoder_from_moves_a_fast_decoder_onto_a_retrained_encoder(tmp_path):
    whole = _rdbunet_run(tmp_path, 4, "whole")
    first = tmp_path / "whole-first"
    shutil.copytree(train(TrainOptions(**whole)), first)
    fast = dict(whole, out=str(tmp_path / "fast"), decoder_only=True)
    train(TrainOptions(**fast, init_from=str(first), hr_blocks=1))
    retrained = train(TrainOptions(**whole))  # the whole checkpoint trains on: a new encoder and QPM
    before = HyperThumbModel.from_pretrained(tmp_path / "fast").state_dict()
    with pytest.raises(ValueError, match="--decoder-only"):
        train(TrainOptions(**dict(fast, decoder_only=False), encoder_from=str(retrained)))
    moved = HyperThumbModel.from_pretrained(train(TrainOptions(**fast, encoder_from=str(retrained)))).state_dict()
    new_encoder = HyperThumbModel.from_pretrained(retrained).state_dict()
    shared = [name for name in moved if not name.startswith("decoder.")]
    assert all(torch.equal(moved[name], new_encoder[name]) for name in shared)
    assert any(not torch.equal(moved[name], before[name]) for name in shared)
    assert any(not torch.equal(moved[name], before[name]) for name in moved if name.startswith("decoder."))
    state = json.loads((tmp_path / "fast" / STATE_NAME).read_text())
    assert state["initialised_from"] == {"checkpoint": str(retrained), "step": 4,
                                         "earlier": [{"checkpoint": str(first), "step": 2, "until_step": 2}]}
    assert (f"4 steps of the decoder alone from `{retrained}` at step 4 (its first 2 steps against `{first}` at "
            "step 2)") in write_model_card(tmp_path / "fast").read_text()
    small_model("transformer").save_pretrained(tmp_path / "transformer")
    with pytest.raises(ValueError, match="different encoder"):
        train(TrainOptions(**fast, encoder_from=str(tmp_path / "transformer")))


@pytest.mark.parametrize("encoder, kind", [(encoder, kind) for encoder in ENCODER_METHODS
                                           for kind in DECODERS_OF[encoder]])
def test_shipped_decoders_share_every_weight_but_the_decoders_with_their_encoder(encoder, kind):
    """Retraining an encoder without its fast and sharp decoders would break their decoding of its files."""
    full, other = load_checkpoint(encoder).state_dict(), load_checkpoint(DECODERS_OF[encoder][kind]).state_dict()
    shared = [name for name in full if not name.startswith("decoder.")]
    assert shared and all(torch.equal(full[name], other[name]) for name in shared)
    depth = load_checkpoint(DECODERS_OF[encoder][kind]).config.decoder.hr_blocks
    full_depth = load_checkpoint(encoder).config.decoder.hr_blocks
    assert depth < full_depth if kind == "fast" else depth == full_depth  # the sharp one: the full decoder


def test_a_sharp_decode_of_the_golden_thumbnail_is_closer_to_the_eye_for_little_psnr():
    """The golden thumbnail (tools/golden.py) through the sharp decoder: the same file, a photo that
    LPIPS-AlexNet (which it did not train on) finds closer, at most 1.5 dB of HR PSNR below the
    faithful decoder's, still well above the thumbnail upscaled."""
    jpeg, photo = GOLDEN_THUMBNAIL.read_bytes(), centre_crop(PIXELS_CROP)
    faithful, sharp = hyperthumb.decode(jpeg), hyperthumb.decode(jpeg, decoder="sharp")
    assert sharp.size == faithful.size == photo.size
    assert psnr(faithful, photo) - 1.5 <= psnr(sharp, photo) < psnr(faithful, photo) + 0.5
    upscaled = Image.open(GOLDEN_THUMBNAIL).convert("RGB").resize(photo.size, Image.BICUBIC)
    assert psnr(sharp, photo) > psnr(upscaled, photo) + 1
    if not lpips_available():
        pytest.skip("LPIPS weights missing: python -m hyperthumb lpips-weights")
    assert lpips_distance(sharp, photo) < lpips_distance(faithful, photo)  # a smooth sky: 0.0195 against 0.0209


def test_fast_and_full_decoders_read_the_same_files():
    photo = centre_crop(256)
    full, fast = hyperthumb.load_model("rdbunet"), hyperthumb.load_model("rdbunet-fast")
    thumbnail = full.encode(photo, target_bpp=0.3)
    assert fast.encode(photo, target_bpp=0.3).jpeg == thumbnail.jpeg
    restored = fast.decode(thumbnail.jpeg)
    assert np.array_equal(np.asarray(hyperthumb.decode(thumbnail.jpeg, fast=True)), np.asarray(restored))
    upscaled = thumbnail.image.resize(photo.size, Image.BICUBIC)
    assert psnr(restored, photo) > psnr(upscaled, photo)
    assert psnr(full.decode(thumbnail.jpeg), photo) > psnr(upscaled, photo)


def test_baseline_without_a_fast_decoder_says_so():
    thumbnail = hyperthumb.load_model("bicubic-sr").encode(photo_like(64, 64), target_bpp=0.5)
    with pytest.raises(InvalidThumbnailError, match="no fast decoder"):
        hyperthumb.decode(thumbnail.jpeg, fast=True)
    with pytest.raises(InvalidThumbnailError, match="no sharp decoder"):
        hyperthumb.decode(thumbnail.jpeg, decoder="sharp")
    with pytest.raises(InvalidSettingError, match="decoder must be one of faithful, fast, sharp"):
        hyperthumb.decode(thumbnail.jpeg, decoder="pretty")


def test_each_decoder_kind_names_its_checkpoint():
    assert decoder_checkpoint("rdbunet") == "rdbunet" and decoder_checkpoint("rdbunet", "fast") == "rdbunet-fast"
    assert decoder_checkpoint("rdbunet-lite", "fast") == "rdbunet-lite"  # its own decoder is a fast one
    assert DECODERS_OF == {"rdbunet": {"fast": "rdbunet-fast", "sharp": "rdbunet-sharp"},
                           "transformer": {"fast": "transformer-fast", "sharp": "transformer-sharp"}}
    assert decoder_checkpoint("transformer", "sharp") == "transformer-sharp"


@pytest.mark.cli
def test_cli_decodes_with_the_fast_decoder(tmp_path):
    photo = photo_like(128, 96, seed=5)
    (tmp_path / "thumb.jpg").write_bytes(hyperthumb.load_model("transformer").encode(photo, target_bpp=0.3).jpeg)
    done = subprocess.run([sys.executable, "-m", "hyperthumb", "decode", str(tmp_path / "thumb.jpg"), "-o",
                           str(tmp_path / "restored.png"), "--fast"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    expected = hyperthumb.decode(tmp_path / "thumb.jpg", fast=True)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "restored.png")), np.asarray(expected))


@pytest.mark.parametrize("lite", LITE_METHODS)
def test_shipped_lite_model_has_the_lite_encoder_and_a_fast_decoder(lite):
    model = load_checkpoint(lite)
    assert model.config.encoder_options == encoder_options(model.config.encoder, "lite")
    assert model.config.decoder == load_checkpoint(FAST_DECODER_OF[METHODS[lite].lite_of]).config.decoder
