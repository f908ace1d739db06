"""Where `load_model` finds a checkpoint, in order: an explicit folder, the repo's embedded
`weights/<name>`, then the Hub repository named by HYPERTHUMB_HUB_REPO (subfolder `<name>`, revision
HYPERTHUMB_HUB_REVISION). Reading it is `HyperThumbModel.from_pretrained`'s (`pretrained.py`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional, Union

import torch
from huggingface_hub.errors import HFValidationError

from .errors import CheckpointNotFoundError
from .model import HyperThumbModel
from .pretrained import CONFIG_NAME, STATE_NAME, WEIGHTS_NAME, fetch_checkpoint, is_checkpoint

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
