"""The GPU round runs every step end to end (on the CPU, with tiny budgets) and reports as it goes."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from hyperthumb.zoo import FAST_DECODER_OF
from tests.conftest import photo_like
from tools.gpu_round import EVAL_SETS, ROUND_CHECKPOINTS, TRAIN_SOURCES, gpu_round, prepare_data

pytestmark = pytest.mark.training


def test_prepare_writes_the_datasets_layout_small(tmp_path):
    datasets = tmp_path / "datasets"
    for index, relative in enumerate((*TRAIN_SOURCES, *EVAL_SETS.values())):
        (datasets / relative).mkdir(parents=True)
        photo_like(1600 if index == 0 else 300, 1600 if index == 0 else 200, seed=index).save(
            datasets / relative / "a.png")
    (datasets / "photos" / "LICENSES.md").write_text("licenses")
    (datasets / TRAIN_SOURCES[1] / "ATTRIBUTION.md").write_text("credits")
    pack = prepare_data(datasets, tmp_path / "pack")
    assert (pack / "photos" / "LICENSES.md").read_text() == "licenses"  # the credits travel with the photos
    assert (pack / TRAIN_SOURCES[1] / "ATTRIBUTION.md").read_text() == "credits"
    large = sorted(p.name for p in (pack / TRAIN_SOURCES[0]).iterdir())
    assert large == ["a-crop.jpg", "a.jpg"]  # a large photo also travels as a native-resolution crop
    assert all(any((pack / relative).iterdir()) for relative in (*TRAIN_SOURCES, *EVAL_SETS.values()))


def test_smoke_round_trains_benches_evaluates_and_reports(tmp_path):
    data = tmp_path / "data"
    for index, relative in enumerate((*TRAIN_SOURCES, *EVAL_SETS.values())):
        (data / relative).mkdir(parents=True)
        photo_like(160, 128, seed=index).save(data / relative / f"photo{index}.png")
    out = tmp_path / "round"
    report = gpu_round(out, data, smoke=True).read_text()
    for name in ROUND_CHECKPOINTS:
        state = json.loads((out / "checkpoints" / name / "training_state.json").read_text())
        assert "--device cpu" in state["commands"][-1]
    for architecture, name in FAST_DECODER_OF.items():  # moved onto the round's new encoder
        state = json.loads((out / "checkpoints" / name / "training_state.json").read_text())
        new_encoder = out / "checkpoints" / architecture
        assert state["runs"][-1]["decoder_only"] and state["runs"][-1]["encoder_from"] == str(new_encoder)
        assert f"--encoder-from {new_encoder}" in state["commands"][-1]
        moved, encoder = (load_file(folder / "model.safetensors") for folder in (out / "checkpoints" / name,
                                                                                new_encoder))
        assert all(torch.equal(moved[key], encoder[key]) for key in moved if not key.startswith("decoder."))
    for heading in ("## Training", "## Fast decoders moved", "## Decode speed", "## New against shipped",
                    "Round finished"):
        assert heading in report
    assert (out / "eval-new" / "kodak24" / "results.csv").is_file()


def test_a_rerun_may_run_only_the_bench(tmp_path):
    out = tmp_path / "round"
    report = gpu_round(out, tmp_path / "no-photos-needed", smoke=True, steps=["bench"]).read_text()
    assert "## Decode speed" in report and "## Training" not in report and "--steps bench" in report
    assert "Encode (the photo to its thumbnail file" in report
    pixel_rows = [line for line in report.splitlines() if "| default, coefficients from pixels |" in line]
    assert len(pixel_rows) == 6 and all(line.endswith("| yes |") for line in pixel_rows)  # every checkpoint
    assert not (out / "checkpoints").exists()
    for step in ("fast", "evaluate"):
        with pytest.raises(ValueError, match="checkpoints that train writes"):
            gpu_round(out, tmp_path, smoke=True, steps=[step])
    with pytest.raises(ValueError, match="unknown steps"):
        gpu_round(out, tmp_path, smoke=True, steps=["bench", "deploy"])
