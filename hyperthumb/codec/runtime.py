"""How the networks run at inference: precision, memory layout, compilation and tile batching.

Defaults follow measurement (`python -m hyperthumb bench`). On CUDA: bf16 autocast (fp16 where bf16
is missing), channels-last, batches of four tiles. On CPUs, channels-last always and one tile at a
time; bf16 autocast where bf16 is native (AMX or AVX512-BF16), else fp32, as emulated bf16 is slow.
On a 2-core AMD EPYC, the one-block decoder network at 6144x4096 took 1.48 s in fp32 channels-last
against 2.65 s NCHW (1.20 s against 2.16 s with oneDNN held to AVX2, `ONEDNN_MAX_CPU_ISA=AVX2`), the
Transformer's full decoder 7.2 s against 15.3 s. Only inputs change layout: the weights are left
as they are, because a codec may share its model with a training loop, and autocast casts them
per call anyway.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
from dataclasses import dataclass
from typing import Callable, Optional, Union

import torch
from torch import nn

from hyperthumb.errors import InvalidSettingError


def checked_device(device: Union[str, torch.device]) -> torch.device:
    """`device` as a torch.device this machine has, or a plain error instead of torch's traceback
    from deep inside the first tensor moved there."""
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise InvalidSettingError(f"unknown device {device!r}: use cpu or cuda") from None
    if device.type not in ("cpu", "cuda"):
        raise InvalidSettingError(f"device {device} is not supported: use cpu or cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidSettingError("no CUDA GPU is usable on this machine: use the CPU (device cpu)")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise InvalidSettingError(f"there is no {device}: this machine has {torch.cuda.device_count()} GPU(s)")
    return device


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
_HEAP_ALLOCATION_MAX = 32 * 2**20  # the largest that glibc lets its heap serve
_KEPT_FREE = 256 * 2**20


@functools.lru_cache(maxsize=1)
def _glibc() -> Optional[ctypes.CDLL]:
    """The C library where it is glibc (it has mallopt), else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def keep_freed_memory() -> bool:
    """Has glibc serve every allocation up to 32 MB from its heap and keep up to 256 MB of what is
    freed there for the next ones. By default it gives the heap's free top back to the system as
    soon as it passes twice the largest buffer freed so far, so the activations of the encoder's
    tiles and the decoder's bands are faulted in afresh, page by page, again and again: a 6K
    RDBUnet bf16 encode took 8.4-9.0 s with 2 million page faults, and 6.1-6.6 s with this, its
    peak 0.1-0.3 GB higher; the codec gives the memory back after each encode and decode
    (`release_freed_memory`). Process-wide, so the app and the command line ask for it, not the
    library. False where the C library is not glibc."""
    libc = _glibc()
    return bool(libc and libc.mallopt(_M_MMAP_THRESHOLD, _HEAP_ALLOCATION_MAX)
                and libc.mallopt(_M_TRIM_THRESHOLD, _KEPT_FREE))


def release_freed_memory() -> None:
    """Gives the heap's free memory (kept, or in holes between live buffers) back to the system, so
    that the next work's peak is its own: given back after each encode and decode, the app's 6K
    peak went from 2.18 to 1.95 GB (the decoder's bands 64 rows)."""
    libc = _glibc()
    if libc:
        libc.malloc_trim(0)


def cpu_has_native_bf16() -> bool:
    return torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()


@dataclass(frozen=True)
class Runtime:
    autocast_dtype: Optional[torch.dtype] = None  # None: fp32
    channels_last: bool = False
    compile: bool = False  # torch.compile: slow first call, faster after; pays off on a GPU
    batch: int = 1  # tiles per forward pass

    @classmethod
    def for_device(cls, device: torch.device, compile: bool = False, reduced_precision: bool = True) -> "Runtime":
        """The measured best for `device`; `reduced_precision=False` keeps fp32 (`bench --fp32`)."""
        if device.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return cls(dtype if reduced_precision else None, channels_last=True, compile=compile, batch=4)
        dtype = torch.bfloat16 if reduced_precision and cpu_has_native_bf16() else None
        return cls(dtype, channels_last=True, compile=compile)

    def prepare(self, network: nn.Module) -> Callable[..., torch.Tensor]:
        """What to call for `network`: itself, or its compiled form (the module is not changed)."""
        return torch.compile(network) if self.compile else network

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x
