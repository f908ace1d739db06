"""Upload the checkpoints to one Hugging Face Hub repository, one subfolder per encoder: the layout
`checkpoint.load_checkpoint` fetches from when HYPERTHUMB_HUB_REPO names that repository."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

from .checkpoint import CONFIG_NAME, WEIGHTS_NAME
from .errors import HyperThumbError
from .train import LOG_NAME

PUBLISHED_FILES = [CONFIG_NAME, WEIGHTS_NAME, "README.md", LOG_NAME]  # never optimiser state or pickles


def checkpoint_folders(weights: Union[str, os.PathLike]) -> list[Path]:
    """The subfolders of `weights` that hold a complete checkpoint."""
    return sorted(p for p in Path(weights).iterdir()
                  if (p / CONFIG_NAME).is_file() and (p / WEIGHTS_NAME).is_file())


def publish(weights: Union[str, os.PathLike], repo_id: str, revision: Optional[str] = None) -> list[str]:
    """Uploads every checkpoint folder under `weights` to `repo_id` (on branch `revision`, created if
    missing); returns the encoder names uploaded. The token comes from HF_TOKEN or `hf auth login`."""
    from huggingface_hub import HfApi

    folders = checkpoint_folders(weights)
    if not folders:
        raise FileNotFoundError(f"no folder under {weights} holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    api = HfApi()
    try:
        api.create_repo(repo_id, exist_ok=True)
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        for folder in folders:
            api.upload_folder(repo_id=repo_id, folder_path=folder, path_in_repo=folder.name, revision=revision,
                              allow_patterns=PUBLISHED_FILES, commit_message=f"Upload the {folder.name} checkpoint")
    except Exception as exc:  # the Hub client raises HTTP, network and auth errors of many types
        raise HyperThumbError(f"could not publish to the Hub repository {repo_id!r} "
                              f"({type(exc).__name__}: {exc})") from None
    return [folder.name for folder in folders]
