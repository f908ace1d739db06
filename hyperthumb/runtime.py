"""How the networks run at inference: precision, memory layout, compilation and tile batching.

Defaults follow measurement (`python -m hyperthumb bench`). On CUDA: bf16 autocast (fp16 where bf16
is missing), channels-last, batches of four tiles. On a CPU with native bf16 (AMX or AVX512-BF16):
bf16 autocast and channels-last, one tile at a time: on the development machine's Xeon a 6 MP
decode took 1.5 s against 4.2 s in fp32 (3.1 s fp32 channels-last), HR PSNR equal to 0.001 dB;
batching tiles was slower there. Other CPUs keep plain fp32, where bf16 is emulated and slow.
Only inputs change layout: the weights are left as they are, because a codec may share its model
with a training loop, and autocast casts them per call anyway.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn


def cpu_has_native_bf16() -> bool:
    return torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()


@dataclass(frozen=True)
class Runtime:
    autocast_dtype: Optional[torch.dtype] = None  # None: fp32
    channels_last: bool = False
    compile: bool = False  # torch.compile: slow first call, faster after; pays off on a GPU
    batch: int = 1  # tiles per forward pass

    @classmethod
    def for_device(cls, device: torch.device, compile: bool = False) -> "Runtime":
        if device.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return cls(autocast_dtype=dtype, channels_last=True, compile=compile, batch=4)
        if cpu_has_native_bf16():
            return cls(autocast_dtype=torch.bfloat16, channels_last=True, compile=compile)
        return cls(compile=compile)

    def prepare(self, network: nn.Module) -> Callable[..., torch.Tensor]:
        """What to call for `network`: itself, or its compiled form (the module is not changed)."""
        return torch.compile(network) if self.compile else network

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x
