"""Fuzzing the decoder: mutated thumbnails decode or raise HyperThumbError, within bounded memory."""
from __future__ import annotations

import tracemalloc
from functools import lru_cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyperthumb.codec.thumbnail_codec import COEFFICIENT_SOURCES, HyperThumbCodec
from hyperthumb.errors import HyperThumbError
from tests.conftest import photo_like, small_model

_MEMORY_BOUND = 32 * 2**20  # the 96x64 photo needs a few MB; a marker that lies must not raise this


@lru_cache(maxsize=2)
def _codec_and_thumbnail(coefficients_from: str = "file") -> tuple[HyperThumbCodec, bytes]:
    codec = HyperThumbCodec(small_model("rdbunet"), name="rdbunet", coefficients_from=coefficients_from)
    return codec, codec.encode(photo_like(96, 64, seed=6), target_bpp=1.0).jpeg


_position = st.integers(min_value=0, max_value=2**16)
_mutation = st.one_of(
    st.tuples(st.just("flip"), _position, st.integers(1, 255)),
    st.tuples(st.just("set"), _position, st.integers(0, 255)),
    st.tuples(st.just("truncate"), _position, st.just(0)),
    st.tuples(st.just("insert"), _position, st.integers(0, 255)),
    st.tuples(st.just("delete"), _position, st.integers(1, 16)),
    st.tuples(st.just("digit"), _position, st.integers(0, 9)),  # rewrites a digit in the marker's JSON
)


def _mutate(data: bytes, mutation: tuple[str, int, int]) -> bytes:
    kind, position, value = mutation
    if not data:
        return data
    i = position % len(data)
    if kind == "flip":
        return data[:i] + bytes([data[i] ^ value]) + data[i + 1:]
    if kind == "set":
        return data[:i] + bytes([value]) + data[i + 1:]
    if kind == "truncate":
        return data[:i]
    if kind == "insert":
        return data[:i] + bytes([value]) + data[i:]
    if kind == "delete":
        return data[:i] + data[i + value:]
    digits = [j for j in range(min(len(data), 200)) if 0x30 <= data[j] <= 0x39]
    if not digits:
        return data
    j = digits[position % len(digits)]
    return data[:j] + str(value).encode() + data[j + 1:]


@pytest.mark.parametrize("coefficients_from", COEFFICIENT_SOURCES)
@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(mutations=st.lists(_mutation, min_size=1, max_size=3))
def test_mutated_thumbnails_decode_or_raise_our_error(coefficients_from, mutations):
    codec, jpeg = _codec_and_thumbnail(coefficients_from)
    for mutation in mutations:
        jpeg = _mutate(jpeg, mutation)
    tracemalloc.start()
    try:
        restored = codec.decode(jpeg)
        assert restored.width <= 96 and restored.height <= 64  # the thumbnail's size bounds any marker
    except HyperThumbError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < _MEMORY_BOUND
