"""The file size the target-bpp search computes in memory, against files that libjpeg writes."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hyperthumb.codec.image_io import to_tensor
from hyperthumb.jpeg.file import write_thumbnail
from hyperthumb.jpeg.marker import ThumbnailMarker
from hyperthumb.jpeg.size import optimal_code_lengths, symbol_counts, thumbnail_file_bytes
from hyperthumb.jpeg.standard_tables import ijg_tables
from hyperthumb.models import differentiable_jpeg
from hyperthumb.models.pixels import pad_to_multiple

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PHOTOS = {"textured": "plasma_Path.jpg", "smooth": "Bridge_by_Sander_Klootwijk.jpg"}  # forest; sky and cables
QUALITIES = (10, 50, 90, 100)


def _thumbnail_file(kind: str, shrink: int, quality: int) -> tuple[np.ndarray, ThumbnailMarker, bytes]:
    """(quantized coefficients, marker, the real file) of a photo shrunk `shrink` times at IJG `quality`."""
    photo = Image.open(EXAMPLES / PHOTOS[kind]).convert("RGB")
    thumbnail = photo.resize((photo.width // shrink, photo.height // shrink), Image.BICUBIC)
    tables = ijg_tables(torch.tensor([float(quality)]))
    luma, chroma = tables[:, :64], tables[:, 64:]
    coefficients = differentiable_jpeg.image_to_coefficients(pad_to_multiple(to_tensor(thumbnail), 8))
    quantized = differentiable_jpeg.quantize(coefficients, differentiable_jpeg.component_tables(luma, chroma), differentiable=False)
    quantized = quantized[0].numpy().astype(np.int16)
    marker = ThumbnailMarker("rdbunet", shrink, photo.width, photo.height)
    jpeg = write_thumbnail(quantized, luma.reshape(8, 8).numpy(), chroma.reshape(8, 8).numpy(), marker)
    return quantized, marker, jpeg


CASES = [(kind, shrink, quality) for kind in PHOTOS for shrink in (1, 4) for quality in QUALITIES]


def _code_lengths_in_file(jpeg: bytes) -> list[np.ndarray]:
    """Each DHT table's code length per symbol, in file order (libjpeg writes one table per segment)."""
    tables, pos = [], 2
    while jpeg[pos + 1] != 0xDA:
        length = struct.unpack(">H", jpeg[pos + 2:pos + 4])[0]
        if jpeg[pos + 1] == 0xC4:
            segment = jpeg[pos + 4:pos + 2 + length]
            per_length = np.frombuffer(segment[1:17], np.uint8)
            symbols = np.frombuffer(segment[17:17 + int(per_length.sum())], np.uint8)
            lengths = np.zeros(256 if segment[0] >> 4 else 16, np.int64)
            lengths[symbols] = np.repeat(np.arange(1, 17), per_length)
            tables.append(lengths)
        pos += 2 + length
    return tables


@pytest.mark.parametrize("kind, shrink, quality", CASES)
def test_code_lengths_are_the_ones_libjpeg_writes(kind, shrink, quality):
    quantized, _, jpeg = _thumbnail_file(kind, shrink, quality)
    counts, _ = symbol_counts(quantized)
    expected = _code_lengths_in_file(jpeg)
    assert len(expected) == 4
    for table, lengths in zip(counts, expected):
        assert np.array_equal(optimal_code_lengths(table), lengths)


def test_size_is_within_one_percent_of_the_real_file():
    errors = {}
    for case in CASES:
        quantized, marker, jpeg = _thumbnail_file(*case)
        errors[case] = thumbnail_file_bytes(quantized, len(marker.to_bytes())) / len(jpeg) - 1
    assert max(abs(e) for e in errors.values()) < 0.01, errors


def test_code_lengths_stay_within_sixteen_bits_and_leave_the_all_ones_code():
    counts = np.zeros(256, np.int64)
    counts[:30] = [int(1.6 ** i) + 1 for i in range(30)]  # skewed enough for codes past 16 bits
    lengths = optimal_code_lengths(counts)
    assert lengths[:30].min() >= 1 and lengths.max() == 16 and not lengths[30:].any()
    assert np.sum(2.0 ** -lengths[:30]) < 1  # a complete code would give some symbol all ones
