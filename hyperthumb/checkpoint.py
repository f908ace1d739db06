"""Checkpoints: a folder of `config.json` + `model.safetensors`, local or on the Hugging Face Hub.

`load_model` looks, in order, at an explicit local folder, the repo's embedded `weights/<encoder>`,
and the Hub repository named by HYPERTHUMB_HUB_REPO (one subfolder per encoder). safetensors only.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional, Union

import torch
from safetensors.torch import load_file, save_file

from .errors import CheckpointNotFoundError
from .model import HyperThumbConfig, HyperThumbModel

EMBEDDED_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
HUB_REPO_ENV = "HYPERTHUMB_HUB_REPO"
HUB_REVISION_ENV = "HYPERTHUMB_HUB_REVISION"


def save_checkpoint(model: HyperThumbModel, folder: Union[str, os.PathLike], extra: Optional[dict] = None) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_type": "hyperthumb", **model.config.to_dict(), **(extra or {})}
    (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items() if v.numel() > 0}
    save_file(state, str(folder / WEIGHTS_NAME))


def read_checkpoint(config_path: Path, weights_path: Path) -> HyperThumbModel:
    fields = json.loads(config_path.read_text())
    known = set(HyperThumbConfig.__dataclass_fields__)
    model = HyperThumbModel(HyperThumbConfig.from_dict({k: v for k, v in fields.items() if k in known}))
    state = load_file(str(weights_path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    # The entropy coder's CDF tables are only filled by compressai's update(); they are unused here.
    missing = [k for k in missing if not k.startswith("rate_model.bottleneck._")]
    if missing or unexpected:
        raise CheckpointNotFoundError(f"checkpoint does not match the model: missing {missing}, unexpected {unexpected}")
    return model


def _local_checkpoint(folder: Path) -> Optional[tuple[Path, Path]]:
    config, weights = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    return (config, weights) if config.is_file() and weights.is_file() else None


def _hub_checkpoint(encoder: str) -> Optional[tuple[Path, Path]]:
    repo = os.environ.get(HUB_REPO_ENV)
    if not repo:
        return None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    revision = os.environ.get(HUB_REVISION_ENV)
    try:
        paths = [Path(hf_hub_download(repo, name, subfolder=encoder, revision=revision))
                 for name in (CONFIG_NAME, WEIGHTS_NAME)]
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        raise CheckpointNotFoundError(
            f"could not fetch {encoder!r} from the Hub repository {repo!r} ({type(exc).__name__}: {exc})") from None
    return paths[0], paths[1]


def resolve_checkpoint(encoder: str, source: Optional[Union[str, os.PathLike]] = None) -> tuple[Path, Path]:
    """Returns (config.json, model.safetensors) paths, or raises CheckpointNotFoundError."""
    if source is not None:
        found = _local_checkpoint(Path(source))
        if found is None:
            raise CheckpointNotFoundError(f"{source} holds no {CONFIG_NAME} and {WEIGHTS_NAME}")
        return found
    found = _local_checkpoint(EMBEDDED_WEIGHTS / encoder) or _hub_checkpoint(encoder)
    if found is None:
        raise CheckpointNotFoundError(
            f"no checkpoint for {encoder!r}: none in {EMBEDDED_WEIGHTS / encoder} and no Hub repository "
            f"set in {HUB_REPO_ENV}")
    return found


def load_checkpoint(encoder: str, source: Optional[Union[str, os.PathLike]] = None,
                    device: Union[str, torch.device] = "cpu") -> HyperThumbModel:
    return read_checkpoint(*resolve_checkpoint(encoder, source)).to(device)


def checkpoint_summary(encoder: str, source: Optional[Union[str, os.PathLike]] = None) -> dict:
    """What a page says about the checkpoint `load_model` would use: its training steps and time
    (None where its config predates them); raises CheckpointNotFoundError like `load_checkpoint`."""
    config = json.loads(resolve_checkpoint(encoder, source)[0].read_text())
    return {"encoder": encoder, "trained_steps": config.get("trained_steps"),
            "train_seconds": config.get("train_seconds")}
