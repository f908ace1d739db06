"""A checkpoint folder, read and written by huggingface_hub's `PyTorchModelHubMixin`.

    config.json           the model's constructor argument: its config dataclass, nothing else
    model.safetensors     the weights
    training_state.json   what training recorded: steps, seconds, commands, resolved options (train.py)
    README.md             the model card (model_card.py)

`save_pretrained` and `push_to_hub` are the mixin's. `from_pretrained` is too, with three changes:
- `subfolder=`: our Hub repository holds one checkpoint per encoder, one subfolder each
  (`publish.py`), and the mixin reads only a repository's root;
- a Hub repository is fetched with `snapshot_download` (safetensors only: the mixin would fall back
  to unpickling `pytorch_model.bin`) and loaded as a local folder;
- the weights load strictly (the mixin's default ignores missing keys, which would leave random
  weights), and the config dataclass is rebuilt from its JSON, ignoring unknown keys as the mixin
  does: the checkpoints written before this layout also held `trained_steps` and `train_seconds`.
The rate model's entropy-coder CDF tables are non-persistent buffers (`rate_model.py`): empty and
unused, they are neither written nor expected, so `model.safetensors` keeps the keys it always had.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Union

from huggingface_hub import PyTorchModelHubMixin, snapshot_download
from huggingface_hub.constants import CONFIG_NAME
from huggingface_hub.constants import SAFETENSORS_SINGLE_FILE as WEIGHTS_NAME
from safetensors.torch import load_model

from hyperthumb.errors import CheckpointNotFoundError

STATE_NAME = "training_state.json"
_HUB_OPTIONS = ("revision", "cache_dir", "force_download", "local_files_only", "token")
# What save_pretrained writes where no card exists yet; `python -m hyperthumb card` writes the full one.
CARD_TEMPLATE = """---
{{ card_data }}
---

A HyperThumb checkpoint ([HyperThumbnail]({{ paper_url }}), Qi et al., CVPR 2023): a photo becomes an ordinary
JPEG thumbnail, 4x smaller per side, from which the model restores the full-resolution photo. Load it with
`hyperthumb.models.HyperThumbModel.from_pretrained`. `python -m hyperthumb card <folder>` replaces this text
with the card written from the folder's training records.
"""


def is_checkpoint(folder: Union[str, os.PathLike]) -> bool:
    return (Path(folder) / CONFIG_NAME).is_file() and (Path(folder) / WEIGHTS_NAME).is_file()


def fetch_checkpoint(folder_or_repo_id: Union[str, os.PathLike], subfolder: str = "", **hub_options) -> Path:
    """The local checkpoint folder at `subfolder` of a folder or of a Hub repository (then in the Hub
    cache, which serves it offline too); fetches only what loading and the training record need."""
    root = Path(folder_or_repo_id)
    if not root.is_dir():
        patterns = [str(Path(subfolder, name)) for name in (CONFIG_NAME, WEIGHTS_NAME, STATE_NAME)]
        root = Path(snapshot_download(str(folder_or_repo_id), allow_patterns=patterns, **hub_options))
    if not is_checkpoint(root / subfolder):
        raise CheckpointNotFoundError(f"{folder_or_repo_id} holds no {CONFIG_NAME} and {WEIGHTS_NAME}"
                                      + (f" in its folder {subfolder!r}" if subfolder else ""))
    return root / subfolder


class HyperThumbHubMixin(PyTorchModelHubMixin, library_name="hyperthumb", license="mit",
                         pipeline_tag="image-to-image", paper_url="https://arxiv.org/abs/2304.01064",
                         tags=["image-compression", "jpeg", "image-rescaling", "super-resolution", "hyperthumbnail"],
                         model_card_template=CARD_TEMPLATE):
    """`PyTorchModelHubMixin` for a model whose one constructor argument is `config`, an instance of
    its class attribute `config_class` (a dataclass with `from_dict`)."""

    config_class: ClassVar[type]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Union[str, os.PathLike], *, subfolder: str = "",
                        **kwargs):
        """A local folder or a Hub repository id (with `revision` and the mixin's cache options), and
        `subfolder`; `map_location` places the model."""
        hub_options = {key: kwargs.pop(key) for key in _HUB_OPTIONS if key in kwargs}
        return super().from_pretrained(fetch_checkpoint(pretrained_model_name_or_path, subfolder, **hub_options),
                                       **kwargs)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, config: dict, map_location: str = "cpu", revision, cache_dir,
                         force_download, local_files_only, token):
        """`model_id` is the local folder `from_pretrained` fetched, so the Hub options are spent."""
        fields = {key: value for key, value in config.items() if key in cls.config_class.__dataclass_fields__}
        model = cls(cls.config_class.from_dict(fields))
        try:
            load_model(model, str(Path(model_id) / WEIGHTS_NAME), strict=True)
        except RuntimeError as exc:  # missing, unexpected or misshapen weights
            raise CheckpointNotFoundError(f"{model_id} does not match its {CONFIG_NAME}: {exc}") from None
        return model.to(map_location).eval()
