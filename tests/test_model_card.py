"""The model card is in the Hub's format and states what the training recorded."""
from __future__ import annotations

import csv
import json
from dataclasses import asdict

import yaml

from hyperthumb.evaluation.evaluate import SUMMARY_COLUMNS
from hyperthumb.models.model import HyperThumbConfig, HyperThumbModel
from hyperthumb.models.pretrained import STATE_NAME
from hyperthumb.release.model_card import write_model_card
from hyperthumb.training.options import TrainOptions
from hyperthumb.training.train import LOG_COLUMNS, LOG_NAME
from hyperthumb.zoo import encoder_options
from tests.conftest import small_model

COMMAND = ("python -m hyperthumb train --encoder rdbunet --data ../shared/datasets/photos/train "
           "--val ../shared/datasets/photos/val --out weights/rdbunet --minutes 95 --thumbnail-weight 1.5")


def test_card_states_data_steps_time_machine_command_and_figures(tmp_path):
    folder = tmp_path / "rdbunet"
    HyperThumbModel(HyperThumbConfig(encoder="rdbunet", encoder_options=encoder_options("rdbunet", "cpu"))
                    ).save_pretrained(folder)  # the card names the preset the encoder's size matches
    options = asdict(TrainOptions(encoder="rdbunet", data=["../shared/datasets/photos/train"], out=str(folder),
                                  val="../shared/datasets/photos/val", minutes=95, thumbnail_weight=1.5))
    (folder / STATE_NAME).write_text(json.dumps({"step": 12345, "seconds": 5400.0, "commands": [COMMAND], "runs": [options],
                                                 "device": "CPU (test)"}))
    (folder / LOG_NAME).write_text(",".join(LOG_COLUMNS) + "\n"
                                   "0,0.0,0.2,30.0,35.0,,\n12345,5400.0,0.25,31.5,36.2,0.3,0.2\n")
    summary = tmp_path / "summary.csv"
    figures = {"target_bpp": 0.3, "images": 4, "psnr_hr_y": 29.9, "encode_s": 0.5, "decode_s": 0.4}
    with summary.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        writer.writerow({**figures, "set": "kodak24", "method": "rdbunet", "bpp": 0.301, "psnr_hr": 29.5,
                         "psnr_lr": 33.1, "ssim_hr": 0.81, "lpips_rgb": 0.31, "lpips_y": 0.22, "bd_psnr_db": 1.234,
                         "bd_psnr_photo_db": 1.3, "photos_below_baseline": 0, "bd_rate_pct": -20.5})
        writer.writerow({**figures, "set": "kodak24", "method": "bicubic-jpeg", "bpp": 0.299, "psnr_hr": 28.0,
                         "psnr_lr": 34.0, "ssim_hr": 0.78, "lpips_rgb": 0.35, "lpips_y": 0.25, "bd_psnr_db": 0.0,
                         "bd_psnr_photo_db": 0.0, "photos_below_baseline": 0, "bd_rate_pct": 0.0})
    text = write_model_card(folder, summary=summary).read_text()

    front = yaml.safe_load(text.split("---")[1])
    assert front["library_name"] == "hyperthumb" and front["license"] == "mit" and "rdbunet" in front["tags"]
    for fact in ("../shared/datasets/photos/train", "../shared/datasets/photos/val", "12,345 steps", "1 h 30 min",
                 "CPU (test)", COMMAND, "1,800,000", "`--preset cpu`", "1.5 x thumbnail MSE",
                 "| 0.2500 | 31.50 | 36.20 | 0.3000 | 0.2000 |",
                 "| 0.30 | 0.3010 | 29.50 |", "### kodak24 (4 photos)",
                 "BD-PSNR 1.23 dB (mean of per-photo deltas 1.30 dB), BD-rate -20.5 %"):
        assert fact in text, fact
    assert "28.00" not in text  # only this method's figures


def test_card_names_each_machine_and_every_runs_photos(tmp_path):
    """A checkpoint resumed on a lent GPU from its compact photos: the card names both machines with
    their steps and both photo folders."""
    folder = tmp_path / "rdbunet"
    small_model("rdbunet").save_pretrained(folder)
    cpu_run = {**asdict(TrainOptions(encoder="rdbunet", data=["../shared/datasets/photos/train"], out=str(folder))),
               "first_step": 0, "machine": "CPU (test)"}
    gpu_run = {**cpu_run, "data": ["gpu_data/photos/train"], "batch": 32, "first_step": 1000, "machine": "NVIDIA H200"}
    (folder / STATE_NAME).write_text(json.dumps({"step": 1250, "seconds": 100.0, "commands": [COMMAND, COMMAND],
                                                 "runs": [cpu_run, gpu_run], "device": "NVIDIA H200"}))
    (folder / LOG_NAME).write_text(",".join(LOG_COLUMNS) + "\n1250,100.0,0.25,31.5,36.2,0.3,0.2\n")
    text = write_model_card(folder).read_text()
    assert "CPU (test) (1,000 steps), then NVIDIA H200 (250 steps)" in text
    assert "`../shared/datasets/photos/train`" in text and "`gpu_data/photos/train`" in text


def test_fast_decoder_card_says_which_encoder_each_part_was_trained_against(tmp_path):
    folder = tmp_path / "rdbunet-fast"
    small_model("rdbunet").save_pretrained(folder)
    run = {**asdict(TrainOptions(encoder="rdbunet", data=["../shared/datasets/photos/train"], out=str(folder),
                                 decoder_only=True)), "first_step": 0}
    start = {"checkpoint": "weights/rdbunet", "step": 60203,
             "earlier": [{"checkpoint": "weights/rdbunet", "step": 58545, "until_step": 43626}]}
    (folder / STATE_NAME).write_text(json.dumps({"step": 45000, "seconds": 100.0, "commands": [COMMAND], "runs": [run],
                                                 "device": "CPU (test)", "initialised_from": start}))
    (folder / LOG_NAME).write_text(",".join(LOG_COLUMNS) + "\n45000,100.0,0.25,31.5,36.2,0.3,0.2\n")
    text = write_model_card(folder).read_text()
    assert ("45,000 steps of the decoder alone from `weights/rdbunet` at step 60,203 (its first 43,626 steps "
            "against `weights/rdbunet` at step 58,545)") in text
    start = {"checkpoint": "weights/rdbunet", "step": 80000,
             "earlier": [*start["earlier"], {"checkpoint": "weights/rdbunet", "step": 60203, "until_step": 44000}]}
    (folder / STATE_NAME).write_text(json.dumps({"step": 45000, "seconds": 100.0, "commands": [COMMAND], "runs": [run],
                                                 "device": "CPU (test)", "initialised_from": start}))
    assert ("45,000 steps of the decoder alone from `weights/rdbunet` at step 80,000 (its first 43,626 steps "
            "against `weights/rdbunet` at step 58,545, then to step 44,000 against `weights/rdbunet` at step "
            "60,203)") in write_model_card(folder).read_text()


def test_lite_card_names_its_preset_and_where_the_rest_began(tmp_path):
    folder = tmp_path / "rdbunet-lite"
    small_model("rdbunet").with_encoder_options(encoder_options("rdbunet", "lite")).save_pretrained(folder)
    run = {**asdict(TrainOptions(encoder="rdbunet", data=["../shared/datasets/photos/train"], out=str(folder),
                                 init_from="weights/rdbunet-fast", preset="lite")), "first_step": 0}
    (folder / STATE_NAME).write_text(json.dumps({
        "step": 30000, "seconds": 100.0, "commands": [COMMAND], "runs": [run], "device": "CPU (test)",
        "initialised_from": {"checkpoint": "weights/rdbunet-fast", "step": 65174}}))
    (folder / LOG_NAME).write_text(",".join(LOG_COLUMNS) + "\n30000,100.0,0.25,31.5,36.2,0.3,0.2\n")
    text = write_model_card(folder).read_text()
    assert "`--preset lite`" in text
    assert "30,000 steps, its QPM, rate model and decoder starting from `weights/rdbunet-fast` at step 65,174" in text
