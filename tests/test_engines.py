"""The exported engines restore what torch fp32 restores (within 0.05 dB), and torch stands in where
an engine is missing."""
from __future__ import annotations

import importlib.util

import pytest
import torch

from hyperthumb.codec import engines, runtime
from hyperthumb.codec.runtime import Runtime
from hyperthumb.codec.thumbnail_codec import HyperThumbCodec
from hyperthumb.evaluation.metrics import psnr
from tests.conftest import photo_like, small_model

EXPORTED = [pytest.param(engine, marks=pytest.mark.skipif(not engines.engine_available(engine),
                                                          reason=str(engines.unavailable_reason(engine))))
            for engine in engines.ENGINES[1:]]


@pytest.fixture(scope="module")
def export_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("exports")


@pytest.fixture(autouse=True)
def _isolated(export_cache, monkeypatch):
    """Exports go to a folder of this module's; no engine is forced."""
    monkeypatch.setenv("HYPERTHUMB_CACHE", str(export_cache))
    monkeypatch.delenv(engines.ENGINE_ENV, raising=False)


def _lively_model(encoder: str, seed: int = 3):
    """A small model whose zero-initialised output layers are given weights, so that the encoder and
    decoder do more than bicubic resampling and a wrong export would show."""
    model = small_model(encoder, seed)
    with torch.no_grad():
        model.encoder.head.weight.normal_(0, 0.02)
        model.decoder.upsample[0].weight.normal_(0, 0.02)
    return model


@pytest.mark.parametrize("encoder", ["rdbunet", "transformer"])
@pytest.mark.parametrize("engine", EXPORTED)
def test_engine_matches_torch_fp32(engine, encoder):
    """Odd sizes (padding, windows that do not divide) and tiles of two shapes through one export."""
    model, photo = _lively_model(encoder), photo_like(517, 389, seed=7)
    reference = HyperThumbCodec(model, encoder, runtime=Runtime(), tile=256, halo=64, decode_tile=256)
    exported = HyperThumbCodec(model, encoder, engine=engine, tile=256, halo=64)
    assert exported.engine == engine
    thumb = reference.encode(photo, target_bpp=None, rate_t=0.0)
    reference_db = psnr(reference.decode(thumb.jpeg), photo)
    restored = exported.decode(thumb.jpeg)
    assert restored.size == photo.size
    assert abs(psnr(restored, photo) - reference_db) <= 0.05
    own = exported.encode(photo, target_bpp=None, rate_t=0.0)
    assert abs(own.bpp - thumb.bpp) <= 0.02 * thumb.bpp
    assert abs(psnr(exported.decode(own.jpeg), photo) - reference_db) <= 0.05


@pytest.mark.parametrize("engine", EXPORTED)
def test_exports_are_cached_by_weights(engine, export_cache):
    model = _lively_model("rdbunet", seed=4)  # weights no other test exported
    first = engines.ExportedNetwork(model.decoder, engine, engines.decoder_example())
    path = first.export_path()
    assert path.parent.parent == export_cache and not path.exists()
    first(*engines.decoder_example())
    written = path.stat().st_mtime_ns
    engines.ExportedNetwork(model.decoder, engine, engines.decoder_example())(*engines.decoder_example())
    assert path.stat().st_mtime_ns == written  # read back, not exported again
    with torch.no_grad():
        model.decoder.upsample[0].bias.add_(0.1)
    assert engines.ExportedNetwork(model.decoder, engine, engines.decoder_example()).export_path() != path


def _without(monkeypatch, *missing: str) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in missing else find_spec(name, *a))


def test_missing_engine_falls_back_to_torch(monkeypatch):
    _without(monkeypatch, "onnxscript")
    assert not engines.engine_available("onnxruntime")  # it could not be exported
    _without(monkeypatch, "onnxruntime", "openvino")
    with pytest.warns(UserWarning, match="openvino is not installed"):
        codec = HyperThumbCodec(small_model(), engine="openvino")
    assert codec.engine == "torch"
    photo = photo_like(96, 64)
    assert codec.decode(codec.encode(photo, target_bpp=0.5).jpeg).size == photo.size


def test_openvino_stands_aside_where_the_instruction_set_is_capped(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert not engines.engine_available("openvino")
    with pytest.warns(UserWarning, match="openvino gives wrong pixels when ONEDNN_MAX_CPU_ISA caps"):
        assert HyperThumbCodec(small_model(), engine="openvino").engine == "torch"


def test_torch_runs_both_networks_unless_another_engine_is_named(monkeypatch):
    monkeypatch.setattr(engines, "unavailable_reason", lambda engine: None)
    monkeypatch.delenv(engines.ENGINE_ENV, raising=False)
    assert HyperThumbCodec(small_model()).engine == "torch"
    monkeypatch.setenv(engines.ENGINE_ENV, "onnxruntime")
    assert engines.resolve_engine(None, torch.device("cpu")) == "onnxruntime"
    assert engines.resolve_engine(None, torch.device("cuda")) == "torch"  # the variable is the CPU's
    assert engines.resolve_engine("openvino", torch.device("cpu")) == "openvino"


def test_torch_runs_channels_last_on_every_cpu_and_bf16_only_where_native(monkeypatch):
    cpu = torch.device("cpu")
    for native, dtype in ((True, torch.bfloat16), (False, None)):
        monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda native=native: native)
        assert Runtime.for_device(cpu) == Runtime(dtype, channels_last=True)
        assert Runtime.for_device(cpu, reduced_precision=False) == Runtime(channels_last=True)


def test_engine_choice_is_checked(monkeypatch):
    with pytest.raises(ValueError, match="CPU only"):
        engines.resolve_engine("onnxruntime", torch.device("cuda"))
    with pytest.raises(ValueError, match="unknown engine"):
        engines.resolve_engine("tensorrt", torch.device("cpu"))
    assert HyperThumbCodec(small_model(), runtime=Runtime()).engine == "torch"  # a runtime is torch's
    monkeypatch.setenv(engines.ENGINE_ENV, "torch")
    assert HyperThumbCodec(small_model()).engine == "torch"
