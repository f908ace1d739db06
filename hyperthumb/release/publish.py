"""Upload the checkpoints to one Hugging Face Hub repository, one subfolder per encoder, in one
commit: the layout `HyperThumbModel.from_pretrained(repo, subfolder=...)` and `load_model` (with
HYPERTHUMB_HUB_REPO) read. One checkpoint to a repository of its own is the mixin's `push_to_hub`."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

from hyperthumb.errors import HyperThumbError
from hyperthumb.models.pretrained import CONFIG_NAME, STATE_NAME, WEIGHTS_NAME, is_checkpoint
from hyperthumb.release.model_card import CARD_NAME
from hyperthumb.training.train import LOG_NAME

PUBLISHED_FILES = [CONFIG_NAME, WEIGHTS_NAME, CARD_NAME, STATE_NAME, LOG_NAME]  # never optimiser state or pickles


def checkpoint_folders(weights: Union[str, os.PathLike]) -> list[Path]:
    """The subfolders of `weights` that hold a complete checkpoint."""
    return sorted(p for p in Path(weights).iterdir() if is_checkpoint(p))


def publish(weights: Union[str, os.PathLike], repo_id: str, revision: Optional[str] = None) -> list[str]:
    """Uploads every checkpoint folder under `weights` to `repo_id` (on branch `revision`, created if
    missing); returns the encoder names uploaded. The token comes from HF_TOKEN or `hf auth login`."""
    from huggingface_hub import HfApi

    names = [folder.name for folder in checkpoint_folders(weights)]
    if not names:
        raise FileNotFoundError(f"no folder under {weights} holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    api = HfApi()
    try:
        api.create_repo(repo_id, exist_ok=True)
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=weights, revision=revision,
                          allow_patterns=[f"{name}/{file}" for name in names for file in PUBLISHED_FILES],
                          commit_message=f"Upload the checkpoints {', '.join(names)}")
    except Exception as exc:  # the Hub client raises HTTP, network and auth errors of many types
        raise HyperThumbError(f"could not publish to the Hub repository {repo_id!r} "
                              f"({type(exc).__name__}: {exc})") from None
    return names
