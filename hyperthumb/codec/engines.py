"""CPU inference engines for the two networks: PyTorch, ONNX Runtime and OpenVINO.

The encoder and the decoder are exported once per set of weights into the cache
(`$HYPERTHUMB_CACHE`, default `~/.cache/hyperthumb`): `onnx/<sha>.onnx` for ONNX Runtime,
`openvino/<sha>.xml` + `.bin` for OpenVINO, named by the SHA-256 of the network's class and weights,
so a retrained checkpoint never meets a stale export. Height and width stay dynamic, so tiles and
whole photos of any size share one export. An `ExportedNetwork` is called like the torch module
(tensors in, an fp32 tensor out), which lets `HyperThumbCodec` swap it in for either network; the
JPEG steps around the networks stay in torch fp32.

OpenVINO converts from the torch module (its PyTorch frontend), not from the ONNX file: OpenVINO
2026.4's ONNX frontend ignores the antialias of the encoder's bicubic downscale (thumbnail off by
up to 0.56 on a 0-1 scale), while its PyTorch frontend matches torch to 2e-7.

Both packages are optional and imported only when used; a missing one falls back to torch.
`HYPERTHUMB_ENGINE` names the engine that codecs without an explicit one use instead of torch.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import inspect
import os
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np
import torch
from torch import nn

from hyperthumb.cache import cache_dir
from hyperthumb.errors import InvalidSettingError

ENGINES = ("torch", "onnxruntime", "openvino")
ENGINE_ENV = "HYPERTHUMB_ENGINE"
# What each engine needs installed: ONNX Runtime's export is torch.onnx's, which needs onnx and onnxscript.
_PACKAGES = {"torch": (), "onnxruntime": ("onnxruntime", "onnx", "onnxscript"), "openvino": ("openvino",)}
# Bump when the export or a network's forward changes (2: the decoder adds its bicubic as phases;
# 3: residual blocks add in place).
_FORMAT_VERSION = b"hyperthumb-export-3"

def unavailable_reason(engine: str) -> Optional[str]:
    """Why `engine` cannot run here, or None where it can (torch always can)."""
    if engine not in ENGINES:
        raise InvalidSettingError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    if not all(importlib.util.find_spec(package) is not None for package in _PACKAGES[engine]):
        return f"{engine} is not installed"
    # With ONEDNN_MAX_CPU_ISA=AVX2 on an AVX-512 CPU (how this project tests the AVX2 kernels),
    # OpenVINO 2026.4's CPU plugin mixes kernels of both and its decode fell to 4.8 dB where torch's
    # gave 17.6 dB (tests/test_engines.py); it ran right without the cap.
    if engine == "openvino" and os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper() != "ALL":
        return "openvino gives wrong pixels when ONEDNN_MAX_CPU_ISA caps the instruction set"
    return None


def engine_available(engine: str) -> bool:
    """Whether `engine` can run here (torch always can)."""
    return unavailable_reason(engine) is None


def resolve_engine(requested: Optional[str], device: torch.device) -> str:
    """`requested`, else (on a CPU) `$HYPERTHUMB_ENGINE`, else torch; torch, with a warning, where
    the named engine cannot run (`unavailable_reason`).

    Torch is the default because it measured fastest for every network on the development CPU (a
    2-core AMD EPYC with native bf16; figures in docs/speed.md). With native bf16 at 2048x1536
    (`python -m hyperthumb bench --repeats 3`, decode s, RDBUnet / Transformer / their fast
    decoders): torch bf16 0.32 / 0.36 / 0.11 / 0.13, OpenVINO 0.38 / 0.38 / 0.15 / 0.17, ONNX Runtime
    0.77 / 0.77 / 0.22 / 0.25. In fp32 (`--fp32`, the path of CPUs without native bf16) at 6144x4096,
    once torch decoded whole photos in bands: torch channels-last 6.04 / 5.91 s for the full
    decoders against OpenVINO's 6.28 / 6.34 (which had led with 6.40 / 6.31 against 8.39 / 6.48 in
    2048-pixel tiles). The exported encoders are also prepared anew for each input size (their
    antialiased downscale), and nearly every photo is a new size: OpenVINO's first encode took 10-17 s
    for a 2 MP photo against torch's 3.5 s. A GPU always uses torch: these engines run on CPUs.
    """
    if requested is None and device.type == "cpu":
        requested = os.environ.get(ENGINE_ENV) or None
    if requested is None:
        return "torch"
    if requested != "torch" and device.type != "cpu":
        raise InvalidSettingError(f"the {requested} engine runs on the CPU only, not on {device}")
    reason = unavailable_reason(requested)
    if reason:
        warnings.warn(f"{reason}; running the networks with torch instead", stacklevel=3)
        return "torch"
    return requested


def weights_digest(network: nn.Module) -> str:
    """SHA-256 of the network's class and weights: the name of its exports."""
    digest = hashlib.sha256(_FORMAT_VERSION + type(network).__qualname__.encode())
    for name, tensor in network.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def write_atomically(final: Path, write: Callable[[Path], None]) -> None:
    """`write` into a temporary folder beside `final`, then move in, so that a concurrent reader
    never sees a half-written export."""
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=final.parent) as folder:
        staged = Path(folder) / final.name
        write(staged)
        for path in sorted(Path(folder).iterdir(), key=lambda p: p.suffix == final.suffix):
            os.replace(path, final.with_suffix(path.suffix))  # OpenVINO's .bin before its .xml


class ExportedNetwork:
    """A torch network run by ONNX Runtime or OpenVINO, with the module's calling contract.

    `example` gives inputs of the right ranks and channels (small: they are traced, not timed).
    `fp32` keeps OpenVINO from its bf16 on CPUs that have it (ONNX Runtime runs fp32 anyway): the
    path of CPUs without native bf16, measurable on one with it.
    The export and the engine's session are made on the first call, not at construction, so a
    codec costs nothing until it runs; the weights are read then, and later changes to them are
    not seen (a model that keeps training should use the torch engine).
    """

    def __init__(self, network: nn.Module, engine: str, example: tuple[torch.Tensor, ...],
                 threads: Optional[int] = None, fp32: bool = False):
        if engine not in ENGINES[1:]:
            raise ValueError(f"ExportedNetwork runs onnxruntime or openvino, not {engine!r}")
        self.network, self.engine, self.example = network, engine, example
        self.threads, self.fp32 = threads or torch.get_num_threads(), fp32
        self._run: Optional[Callable[[list[np.ndarray]], np.ndarray]] = None
        self.precision: Optional[str] = None  # the arithmetic the engine chose, known once loaded
        self._lock = threading.Lock()

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self._run is None:
            with self._lock, torch.inference_mode(False):  # exporting traces; the codec calls in inference mode
                if self._run is None:
                    self._run = self._load_onnxruntime() if self.engine == "onnxruntime" else self._load_openvino()
        arrays = [np.ascontiguousarray(x.detach().cpu().float().numpy()) for x in inputs]
        return torch.from_numpy(self._run(arrays))

    def export_path(self) -> Path:
        folder, suffix = ("onnx", ".onnx") if self.engine == "onnxruntime" else ("openvino", ".xml")
        return cache_dir() / folder / f"{weights_digest(self.network)}{suffix}"

    def _load_onnxruntime(self) -> Callable[[list[np.ndarray]], np.ndarray]:
        import onnxruntime

        path = self.export_path()
        if not path.exists():
            write_atomically(path, self._export_onnx)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.precision = "fp32"
        names = [node.name for node in session.get_inputs()]
        return lambda arrays: session.run(None, dict(zip(names, arrays)))[0]

    def _export_onnx(self, path: Path) -> None:
        dynamic = {2: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC}
        # what dynamic_shapes is keyed by: the inputs the example gives (not the decoder's `out`)
        names = list(inspect.signature(self.network.forward).parameters)[:len(self.example)]
        with quiet_eval(self.network):
            torch.onnx.export(self.network, self.example, str(path), dynamo=True, external_data=False,
                              verbose=False, input_names=names, output_names=["output"],
                              dynamic_shapes={name: dynamic for name in names})

    def _load_openvino(self) -> Callable[[list[np.ndarray]], np.ndarray]:
        import openvino

        path = self.export_path()
        if not path.exists():
            write_atomically(path, self._export_openvino)
        core = openvino.Core()
        # OpenVINO prepares a network anew for each input size (for the encoder's antialiased downscale,
        # 10 s and 0.6 GB on a new 2 MP photo on the development CPU) and by default keeps every size's
        # preparation, so a server grew by that much with each new photo size. Capacity 0 keeps only the
        # size in use; all tiles of a photo share one.
        config = {"INFERENCE_NUM_THREADS": self.threads, "PERFORMANCE_HINT": "LATENCY",
                  "CPU_RUNTIME_CACHE_CAPACITY": 0}
        if self.fp32:
            config["INFERENCE_PRECISION_HINT"] = "f32"
        compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        self.precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        # A request per call: calls may come from several threads (the app's queue).
        return lambda arrays: compiled.create_infer_request().infer(arrays, share_inputs=True)[0].copy()

    def _export_openvino(self, path: Path) -> None:
        import openvino

        shapes = [openvino.PartialShape([-1, x.shape[1], -1, -1]) for x in self.example]
        with quiet_eval(self.network), torch.no_grad():
            model = openvino.convert_model(self.network, example_input=self.example, input=shapes)
        openvino.save_model(model, str(path), compress_to_fp16=False)


@contextlib.contextmanager
def quiet_eval(network: nn.Module) -> Iterator[None]:
    """The network in eval mode, and the exporters' and tracer's notes on shape arithmetic silenced."""
    was_training = network.training
    network.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        network.train(was_training)


def encoder_example(hr_multiple: int) -> tuple[torch.Tensor]:
    """An HR input whose sides (3 and 5 multiples) leave padding to the windows of any encoder."""
    return (torch.rand(1, 3, 3 * hr_multiple, 5 * hr_multiple),)


def decoder_example() -> tuple[torch.Tensor, torch.Tensor]:
    """Coefficient channels at 1/8 of the thumbnail and the thumbnail itself, 3x5 JPEG blocks."""
    return torch.randn(1, 192, 3, 5) * 64, torch.rand(1, 3, 3 * 8, 5 * 8)
