"""Training: the loss falls, the thumbnail floor and the learning-rate schedule act as stated, the
log has its columns, a resumed run continues the step count, the curves page draws the log, and a
run started from a checkpoint at another preset trains a new encoder beside the trained rest."""
from __future__ import annotations

import csv
import json
import shlex
from dataclasses import asdict, fields, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from hyperthumb.cli import build_parser, main
from hyperthumb.codec.image_io import to_tensor
from hyperthumb.evaluation.metrics import lpips_available, lpips_network
from hyperthumb.models.model import HyperThumbModel
from hyperthumb.models.pixels import bicubic_downscale
from hyperthumb.models.pretrained import CONFIG_NAME, STATE_NAME
from hyperthumb.training.adversarial import DISCRIMINATOR_NAME, PatchDiscriminator
from hyperthumb.training.curves import read_log, write_curves
from hyperthumb.training.options import TrainOptions, parse_command_line
from hyperthumb.training.train import LOG_COLUMNS, LOG_NAME, learning_rate_factor, loss_terms, train
from hyperthumb.zoo import encoder_options
from tests.conftest import photo_like, small_model

pytestmark = pytest.mark.training
WEIGHTS = Path(__file__).resolve().parent.parent / "weights"


def test_loss_falls_over_a_few_dozen_steps():
    torch.manual_seed(0)
    model = small_model("rdbunet")
    hr = to_tensor(photo_like(64, 64, seed=1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(40):
        loss, _, _, _ = loss_terms(model, hr, torch.zeros(1), thumbnail_weight=0.6)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])


def test_thumbnail_floor_charges_only_the_encoder_departure_past_it():
    torch.manual_seed(0)
    model = small_model("rdbunet").eval()
    hr = to_tensor(photo_like(64, 64, seed=3))
    t = torch.zeros(1)
    # A fresh encoder is exactly bicubic: nothing to charge, whatever the floor.
    assert loss_terms(model, hr, t, 0.6, 60.0, 50.0)[0].item() == pytest.approx(loss_terms(model, hr, t, 0.6)[0].item())
    with torch.no_grad():
        for parameter in model.encoder.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
        departure = (model.encoder(hr) - bicubic_downscale(hr, 4)).pow(2).mean().item()
    assert departure > 1e-4
    floor_db = -10 * np.log10(departure / 2)  # a floor the thumbnail misses by half its MSE
    charged = loss_terms(model, hr, t, 0.6, floor_db, 50.0)[0].item() - loss_terms(model, hr, t, 0.6)[0].item()
    assert charged == pytest.approx(50.0 * departure / 2, rel=1e-3)
    loose = loss_terms(model, hr, t, 0.6, -10 * np.log10(departure * 2), 50.0)[0].item()
    assert loose == pytest.approx(loss_terms(model, hr, t, 0.6)[0].item())


def test_the_perceptual_term_adds_lpips_vgg_and_reaches_only_the_decoder():
    """The sharp decoders' loss: the real LPIPS-VGG distance, weighted, on top of the faithful loss;
    with the encoder frozen (decoder-only), its gradient reaches the decoder and no frozen weight."""
    vgg = lpips_network("vgg")
    if vgg is None:
        pytest.skip("LPIPS VGG16 weights are not provisioned")
    torch.manual_seed(0)
    model = small_model("rdbunet")
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name.startswith("decoder."))
    hr, t = to_tensor(photo_like(64, 64, seed=4)), torch.zeros(1)
    torch.manual_seed(1)  # the same quantization noise in both
    plain = loss_terms(model, hr, t, 0.6)[0]
    torch.manual_seed(1)
    loss, _, parts, _ = loss_terms(model, hr, t, 0.6, perceptual=vgg, perceptual_weight=2.0)
    assert 0 < parts["perceptual"] < 1
    assert loss.item() == pytest.approx(plain.item() + 2.0 * parts["perceptual"], rel=1e-5)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.decoder.parameters())
    assert all(p.grad is None for p in vgg.parameters())


def test_the_adversarial_term_moves_the_decoder_and_the_discriminator_learns_apart():
    torch.manual_seed(0)
    model = small_model("rdbunet")
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name.startswith("decoder."))
    discriminator = PatchDiscriminator(features=8)
    hr, t = to_tensor(photo_like(64, 64, seed=4)), torch.zeros(1)
    torch.manual_seed(1)
    plain = loss_terms(model, hr, t, 0.6)[0]
    torch.manual_seed(1)
    loss, _, parts, judged = loss_terms(model, hr, t, 0.6, discriminator=discriminator, adversarial_weight=0.5)
    assert loss.item() == pytest.approx(plain.item() + 0.5 * parts["adversarial"], rel=1e-5)
    assert judged.item() > 0
    judged.backward()  # the discriminator's loss reads detached restorations: the decoder gets nothing
    assert all(p.grad is None for p in model.decoder.parameters())
    assert all(p.grad is not None for p in discriminator.parameters())
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.decoder.parameters())


def test_an_adversarial_run_resumes_with_its_discriminator(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    photo_like(160, 128, seed=6).save(photos / "0.png")
    small_model("rdbunet").save_pretrained(tmp_path / "start")
    options = TrainOptions(encoder="rdbunet", data=[str(photos)], out=str(tmp_path / "run"), steps=1, batch=2,
                           patch=64, val_every=1000, init_from=str(tmp_path / "start"), decoder_only=True,
                           adversarial_weight=0.01)
    run = train(options)
    saved = load_file(str(run / DISCRIMINATOR_NAME))
    train(options)
    resumed = load_file(str(run / DISCRIMINATOR_NAME))
    assert saved.keys() == resumed.keys()
    assert any(not torch.equal(saved[key], resumed[key]) for key in saved)  # it went on learning
    assert json.loads((run / STATE_NAME).read_text())["step"] == 2


def test_cosine_schedule_anneals_each_run_to_zero():
    assert [learning_rate_factor("cosine", p) for p in (0.0, 0.5, 1.0, 1.5)] == pytest.approx([1.0, 0.5, 0.0, 0.0])
    assert learning_rate_factor("none", 0.7) == 1.0
    with pytest.raises(ValueError, match="schedule"):
        learning_rate_factor("step", 0.5)


@pytest.fixture(scope="module")
def trained_twice(tmp_path_factory) -> Path:
    """3 steps, then 2 more resumed, on two 160x128 photos; validated every 2 steps on a third."""
    root = tmp_path_factory.mktemp("training")
    for folder, seeds in (("data", (0, 1)), ("val", (2,))):
        (root / folder).mkdir()
        for seed in seeds:
            photo_like(160, 128, seed=seed).save(root / folder / f"photo{seed}.png")
    options = TrainOptions(encoder="rdbunet", data=str(root / "data"), val=str(root / "val"), out=str(root / "run"),
                           steps=3, batch=2, patch=64, val_every=2, command="first run")
    train(options)
    train(replace(options, steps=2, command="resumed run"))
    return root / "run"


def test_log_has_the_columns_and_resume_continues_the_steps(trained_twice):
    with (trained_twice / LOG_NAME).open(newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == LOG_COLUMNS
    assert [int(r["step"]) for r in rows] == [0, 2, 3, 4, 5]  # start, every 2 steps, end of each run
    seconds = [float(r["seconds"]) for r in rows]
    assert seconds == sorted(seconds)
    assert all(float(r["bpp"]) > 0 and float(r["psnr_hr"]) > 0 and float(r["psnr_lr"]) > 0 for r in rows)
    assert all((r["lpips_rgb"] != "") == lpips_available() for r in rows)
    state = json.loads((trained_twice / STATE_NAME).read_text())
    assert state["step"] == 5 and state["commands"] == ["first run", "resumed run"]
    assert datetime.fromisoformat(state["saved"]).tzinfo is not None  # the date a page shows
    assert "trained_steps" not in json.loads((trained_twice / CONFIG_NAME).read_text())  # training facts: the state
    assert HyperThumbModel.from_pretrained(trained_twice).config.encoder == "rdbunet"


def test_curves_page_draws_every_run(trained_twice, tmp_path):
    other = tmp_path / "transformer"
    other.mkdir()
    (other / LOG_NAME).write_text((trained_twice / LOG_NAME).read_text())
    page = write_curves([trained_twice, other], tmp_path / "curves.html").read_text()
    assert "plotly" in page and '"name":"run"' in page and '"name":"transformer"' in page
    assert len(read_log(other)) == 5


def test_another_preset_starts_a_new_encoder_beside_the_trained_rest(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    photo_like(160, 128, seed=5).save(photos / "0.png")
    start = small_model("rdbunet")
    start.save_pretrained(tmp_path / "start")
    options = dict(encoder="rdbunet", data=[str(photos)], steps=1, batch=2, patch=64, val_every=1000,
                   init_from=str(tmp_path / "start"))
    kept = HyperThumbModel.from_pretrained(train(TrainOptions(**options, out=str(tmp_path / "same"))))
    assert kept.config.encoder_options == start.config.encoder_options  # no preset: the checkpoint's encoder

    lite = start.with_encoder_options(encoder_options("rdbunet", "lite"))
    assert lite.config.encoder_options == encoder_options("rdbunet", "lite")
    start_state = start.state_dict()
    for name, value in lite.state_dict().items():
        if not name.startswith("encoder."):
            assert torch.equal(value, start_state[name]), name
    hr = torch.rand(1, 3, 64, 64)
    with torch.no_grad():  # the new encoder's head is zero: it starts as the bicubic thumbnail
        assert torch.equal(lite.make_thumbnail(hr), bicubic_downscale(hr, 4))
    trained = HyperThumbModel.from_pretrained(train(TrainOptions(**options, out=str(tmp_path / "lite"), preset="lite")))
    assert trained.config.encoder_options == encoder_options("rdbunet", "lite")


def parsed(command: str) -> TrainOptions:
    """A recorded `python -m hyperthumb train ...` line through the real command line's parsers."""
    words = shlex.split(command)
    assert words[:4] == ["python", "-m", "hyperthumb", "train"]
    return parse_command_line(build_parser().parse_args(words[3:]).options)


@pytest.mark.parametrize("options", [
    TrainOptions(encoder="rdbunet", data=["a dir", "b"], out="runs/x", val="v", minutes=1.3, batch=32, patch=256,
                 val_every=1_000_000, device="cuda", bf16=True),
    TrainOptions(encoder="transformer", data=["a"], out="o", minutes=0.5, decoder_only=True, lr=1e-4,
                 encoder_from="runs/x", thumbnail_floor_db=None, preset="lite"),
])
def test_a_runs_command_line_makes_the_same_options(options):
    assert parsed(options.command_line()) == options


def recorded_runs() -> list[tuple[str, dict]]:
    """(command, resolved options) of every run the shipped checkpoints recorded: `runs` holds the
    options of the last len(runs) `commands` (the first commands predate that record)."""
    pairs = []
    for path in sorted(WEIGHTS.glob("*/training_state.json")):
        state = json.loads(path.read_text())
        pairs += [pytest.param(command, run, id=f"{path.parent.name}-{index}") for index, (command, run)
                  in enumerate(zip(state["commands"][-len(state["runs"]):], state["runs"]))]
    return pairs


# Defaults changed since: a run that left these out recorded the value then in force.
FORMER_DEFAULTS = {"preset": "cpu", "thumbnail_floor_db": 32.0, "thumbnail_floor_weight": 50.0}


@pytest.mark.parametrize("command, run", recorded_runs())
def test_every_recorded_command_line_parses_into_its_recorded_options(command, run):
    stated = {word[2:].replace("-", "_") for word in shlex.split(command) if word.startswith("--")}
    expected = {}
    for item in fields(TrainOptions):
        if item.name in ("command", "extra"):
            continue
        if item.name not in run:  # an option added after the run: it ran as the option's default does
            expected[item.name] = item.default
        elif item.name not in stated and run[item.name] == FORMER_DEFAULTS.get(item.name):
            expected[item.name] = item.default
        else:
            expected[item.name] = run[item.name]
    options = asdict(parsed(command))
    assert {name: options[name] for name in expected} == expected


def test_the_help_lists_every_flag_and_a_wrong_flag_is_refused(capsys):
    with pytest.raises(SystemExit) as help_exit:
        main(["train", "--help"])
    shown = capsys.readouterr().out
    assert help_exit.value.code == 0
    flagless = {"rate_lr", "grad_clip", "val_crop", "seed", "command", "extra"}
    for item in fields(TrainOptions):
        assert (f"--{item.name.replace('_', '-')} " in shown) == (item.name not in flagless), item.name
    for wrong in (["--data"], ["--data", "a", "--seed", "3"], ["--data", "a", "--bf16", "yes"]):
        with pytest.raises(SystemExit) as refused:
            parse_command_line(["--encoder", "rdbunet", "--out", "o", *wrong])
        assert refused.value.code == 2


def test_options_without_a_flag_are_refused():
    with pytest.raises(ValueError, match="seed"):
        TrainOptions(encoder="rdbunet", data=["a"], out="o", seed=3).command_line()
