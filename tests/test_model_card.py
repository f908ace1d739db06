"""The model card is in the Hub's format and states what the training recorded."""
from __future__ import annotations

import json

import yaml

from hyperthumb.checkpoint import save_checkpoint
from hyperthumb.evaluate import SUMMARY_COLUMNS
from hyperthumb.model_card import write_model_card
from hyperthumb.train import LOG_COLUMNS, LOG_NAME, STATE_NAME
from tests.conftest import small_model

COMMAND = ("python -m hyperthumb train --encoder rdbunet --data ../shared/datasets/photos/train "
           "--val ../shared/datasets/photos/val --out weights/rdbunet --minutes 95 --thumbnail-weight 1.5")


def test_card_states_data_steps_time_machine_command_and_figures(tmp_path):
    folder = tmp_path / "rdbunet"
    save_checkpoint(small_model("rdbunet"), folder, extra={"trained_steps": 12345, "train_seconds": 5400.0})
    (folder / STATE_NAME).write_text(json.dumps({"step": 12345, "commands": [COMMAND], "device": "CPU (test)"}))
    (folder / LOG_NAME).write_text(",".join(LOG_COLUMNS) + "\n"
                                   "0,0.0,0.2,30.0,35.0,,\n12345,5400.0,0.25,31.5,36.2,0.3,0.2\n")
    summary = tmp_path / "summary.csv"
    summary.write_text(",".join(SUMMARY_COLUMNS) + "\n"
                       "rdbunet,0.3,4,0.301,29.5,29.9,33.1,0.81,0.31,0.22,0.5,0.4,1.234,-20.5\n"
                       "bicubic-jpeg,0.3,4,0.299,28.0,28.4,34.0,0.78,0.35,0.25,0.0,0.0,0.0,0.0\n")
    text = write_model_card(folder, summary=summary).read_text()

    front = yaml.safe_load(text.split("---")[1])
    assert front["library_name"] == "hyperthumb" and front["license"] == "mit" and "rdbunet" in front["tags"]
    for fact in ("../shared/datasets/photos/train", "../shared/datasets/photos/val", "12,345 steps", "1 h 30 min",
                 "CPU (test)", COMMAND, "1,800,000", "`--preset cpu`", "1.5 x thumbnail MSE", "| 0.2500 | 31.50 | 36.20 | 0.3000 | 0.2000 |",
                 "| 0.30 | 0.3010 | 29.50 |", "BD-PSNR 1.23 dB, BD-rate -20.5 %"):
        assert fact in text, fact
    assert "28.00" not in text  # only this method's figures
