"""The HyperThumb marker and the file's header: what a thumbnail says about itself before its scan.

The marker is an APP11 segment with a short JSON payload: format version, model name, scale, the
exact HR size and, in files written since it was added, the identifier of the encoder (with its
QPM and rate model) that made the file, so that only decoders trained against that very encoder
read it. Version 2 files state the thumbnail's exact size, ceil(HR / scale), in their frame
header, while their 8x8 blocks still cover the padded grid the decoder reads; version 1 files
stated the padded size.
"""
from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from typing import Iterator, Optional

from hyperthumb.errors import InvalidThumbnailError
from hyperthumb.limits import MAX_PIXELS

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # 1: the frame header stated the padded size
_APP11 = b"\xff\xeb"
_MARKER_ID = b"HyperThumb\x00"
_MAX_MARKER_BYTES = 1024
# The name picks a checkpoint folder or Hub subfolder: no separators, no "..".
_MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_ENCODER_ID = re.compile(r"[0-9a-f]{12}")

@dataclass(frozen=True)
class ThumbnailMarker:
    """What the file must say for the decoder to restore the HR photo at its exact size."""

    encoder: str
    scale: int
    width: int
    height: int
    version: int = FORMAT_VERSION
    encoder_id: Optional[str] = None  # HyperThumbModel.encoder_id of the encoder that wrote it; None in older files

    @property
    def block_grid(self) -> tuple[int, int]:
        """(rows, columns) of 8x8 blocks: the thumbnail of the HR photo padded to whole blocks."""
        block = self.scale * 8
        return -(-self.height // block), -(-self.width // block)

    @property
    def padded_size(self) -> tuple[int, int]:
        """(width, height) of the block grid in pixels: what the decoder reads."""
        rows, columns = self.block_grid
        return columns * 8, rows * 8

    @property
    def thumbnail_size(self) -> tuple[int, int]:
        """(width, height) the file states and a viewer shows: ceil(HR / scale) (the padded size in
        version 1 files)."""
        if self.version == 1:
            return self.padded_size
        return -(-self.width // self.scale), -(-self.height // self.scale)

    def to_bytes(self) -> bytes:
        payload = _MARKER_ID + json.dumps(
            {"v": self.version, "encoder": self.encoder, "scale": self.scale,
             "width": self.width, "height": self.height, **({"id": self.encoder_id} if self.encoder_id else {})},
            separators=(",", ":"),
        ).encode()
        return _APP11 + struct.pack(">H", len(payload) + 2) + payload

    @classmethod
    def from_payload(cls, payload: bytes) -> "ThumbnailMarker":
        try:
            fields = json.loads(payload[len(_MARKER_ID):].decode())
            numbers = {key: fields[key] for key in ("v", "scale", "width", "height")}
            encoder, encoder_id = fields["encoder"], fields.get("id")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise InvalidThumbnailError(
                "the HyperThumb marker is damaged (not the JSON fields HyperThumb writes)") from None
        if not all(type(value) is int for value in numbers.values()):
            raise InvalidThumbnailError("the HyperThumb marker is damaged (sizes must be integers)")
        if not isinstance(encoder, str) or not _MODEL_NAME.fullmatch(encoder):
            raise InvalidThumbnailError("the HyperThumb marker names no valid model")
        if encoder_id is not None and not (isinstance(encoder_id, str) and _ENCODER_ID.fullmatch(encoder_id)):
            raise InvalidThumbnailError("the HyperThumb marker is damaged (its encoder identifier)")
        marker = cls(encoder=encoder, scale=numbers["scale"], width=numbers["width"], height=numbers["height"],
                     version=numbers["v"], encoder_id=encoder_id)
        if marker.version not in READABLE_VERSIONS:
            raise InvalidThumbnailError(f"thumbnail format version {marker.version} is not supported (this "
                                        f"HyperThumb reads versions {', '.join(map(str, READABLE_VERSIONS))})")
        if not (marker.scale >= 1 and 1 <= marker.width <= MAX_PIXELS and 1 <= marker.height <= MAX_PIXELS):
            raise InvalidThumbnailError("the HyperThumb marker gives an impossible size")
        if marker.width * marker.height > MAX_PIXELS:
            raise InvalidThumbnailError(
                f"the marker claims a {marker.width}x{marker.height} photo "
                f"({marker.width * marker.height / 1e6:.0f} MP), over the limit of {MAX_PIXELS / 1e6:g} MP")
        return marker


# Start-of-frame markers of arithmetic-coded JPEG (ITU T.81, Table B.1), which jpeglib's libjpeg
# does not read.
ARITHMETIC_FRAMES = {0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def header_segments(jpeg: bytes) -> Iterator[tuple[int, bytes]]:
    """(marker kind, payload) of each segment before the first scan."""
    if jpeg[:2] != b"\xff\xd8":
        raise InvalidThumbnailError("not a JPEG file (no start-of-image marker)")
    pos = 2
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF and jpeg[pos + 1] != 0xDA:
        length = struct.unpack(">H", jpeg[pos + 2:pos + 4])[0]
        yield jpeg[pos + 1], jpeg[pos + 4:pos + 2 + length]
        pos += 2 + length


def find_marker(jpeg: bytes) -> ThumbnailMarker:
    """Walks the header segments up to the first scan and returns our marker."""
    for kind, payload in header_segments(jpeg):
        if kind == 0xEB and payload.startswith(_MARKER_ID):
            if len(payload) + 2 > _MAX_MARKER_BYTES:
                raise InvalidThumbnailError("the HyperThumb marker is implausibly long")
            return ThumbnailMarker.from_payload(payload)
    raise InvalidThumbnailError(
        "this JPEG has no HyperThumb marker: it was not made by HyperThumb, or the marker was stripped")




# Baseline, extended and progressive Huffman frames (ITU T.81, Table B.1): the segments whose payload
# is precision (1 byte), height and width (2 bytes each), then the components.
_SIZED_FRAMES = {0xC0, 0xC1, 0xC2}


def with_frame_size(jpeg: bytes, width: int, height: int) -> bytes:
    """The same file with its frame header stating `width` x `height`. Every other byte is kept, so
    a size within the same 8x8 block grid (4:4:4) leaves the scan valid: the writer states the
    exact thumbnail size over the padded grid it coded, and a decoder of pixels that must see the
    whole grid (the codec's pixel route) is handed the padded size."""
    pos = 2
    for kind, payload in header_segments(jpeg):
        if kind in _SIZED_FRAMES:
            at = pos + 5  # marker (2), length (2), precision (1)
            return jpeg[:at] + struct.pack(">HH", height, width) + jpeg[at + 4:]
        pos += 4 + len(payload)
    raise InvalidThumbnailError("the thumbnail has no frame header")
