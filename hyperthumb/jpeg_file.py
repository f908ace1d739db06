"""The thumbnail as a real baseline JPEG file: exact coefficients, our tables, and a marker.

libjpeg (through jpeglib) writes and reads the quantized coefficients losslessly, so the file holds
exactly what the model produced. The HyperThumb marker is an APP11 segment with a short JSON
payload: format version, encoder name, scale and the exact HR size.
"""
from __future__ import annotations

import ctypes
import io
import json
import os
import re
import struct
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator

import jpeglib
from jpeglib._bind import CJpegLib
import numpy as np
import simplejpeg
from PIL import Image

from .errors import InvalidThumbnailError
from .image_io import MAX_PIXELS

FORMAT_VERSION = 1
_APP11 = b"\xff\xeb"
_MARKER_ID = b"HyperThumb\x00"
_MAX_MARKER_BYTES = 1024
# The name picks a checkpoint folder or Hub subfolder: no separators, no "..".
_MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
# jpeglib's high-level calls are not safe in two threads at once (its header reader keeps the
# markers it saw in C globals, cjpeglib_common_markers.cpp: two concurrent reads crashed the process
# with a bus error), so writes hold this lock; reads call its C readers without markers
# (`_read_coefficients`), which keep all their state on the stack and so run in parallel.
_JPEGLIB_LOCK = threading.Lock()


@dataclass(frozen=True)
class ThumbnailMarker:
    """What the file must say for the decoder to restore the HR photo at its exact size."""

    encoder: str
    scale: int
    width: int
    height: int
    version: int = FORMAT_VERSION

    @property
    def thumbnail_size(self) -> tuple[int, int]:
        """(width, height) of the thumbnail this marker implies: the HR size / scale, in whole blocks."""
        block = self.scale * 8
        return -(-self.width // block) * 8, -(-self.height // block) * 8

    def to_bytes(self) -> bytes:
        payload = _MARKER_ID + json.dumps(
            {"v": self.version, "encoder": self.encoder, "scale": self.scale,
             "width": self.width, "height": self.height},
            separators=(",", ":"),
        ).encode()
        return _APP11 + struct.pack(">H", len(payload) + 2) + payload

    @classmethod
    def from_payload(cls, payload: bytes) -> "ThumbnailMarker":
        try:
            fields = json.loads(payload[len(_MARKER_ID):].decode())
            numbers = {key: fields[key] for key in ("v", "scale", "width", "height")}
            encoder = fields["encoder"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise InvalidThumbnailError(
                "the HyperThumb marker is damaged (not the JSON fields HyperThumb writes)") from None
        if not all(type(value) is int for value in numbers.values()):
            raise InvalidThumbnailError("the HyperThumb marker is damaged (sizes must be integers)")
        if not isinstance(encoder, str) or not _MODEL_NAME.fullmatch(encoder):
            raise InvalidThumbnailError("the HyperThumb marker names no valid model")
        marker = cls(encoder=encoder, scale=numbers["scale"], width=numbers["width"], height=numbers["height"],
                     version=numbers["v"])
        if marker.version != FORMAT_VERSION:
            raise InvalidThumbnailError(
                f"thumbnail format version {marker.version} is not supported (expected {FORMAT_VERSION})")
        if not (marker.scale >= 1 and 1 <= marker.width <= MAX_PIXELS and 1 <= marker.height <= MAX_PIXELS):
            raise InvalidThumbnailError("the HyperThumb marker gives an impossible size")
        if marker.width * marker.height > MAX_PIXELS:
            raise InvalidThumbnailError(
                f"the marker claims {marker.width}x{marker.height} pixels, over the limit of {MAX_PIXELS}")
        return marker


@dataclass
class ThumbnailFile:
    """The parsed contents of a thumbnail file."""

    marker: ThumbnailMarker
    coefficients: np.ndarray  # int16 (3, blocks_h, blocks_w, 8, 8): Y, Cb, Cr
    luma_table: np.ndarray  # (8, 8) natural order
    chroma_table: np.ndarray  # (8, 8) natural order
    image: Image.Image  # the thumbnail as any JPEG viewer decodes it


def _insert_after_app0(jpeg: bytes, segment: bytes) -> bytes:
    """Keeps the JFIF APP0 first (as JFIF requires) and puts our segment right after it."""
    pos = 2
    if jpeg[2:4] == b"\xff\xe0":
        pos = 4 + struct.unpack(">H", jpeg[4:6])[0]
    return jpeg[:pos] + segment + jpeg[pos:]


def write_thumbnail(coefficients: np.ndarray, luma_table: np.ndarray, chroma_table: np.ndarray,
                    marker: ThumbnailMarker) -> bytes:
    """Quantized coefficients (3, bh, bw, 8, 8) and integer tables -> baseline JPEG bytes."""
    coefficients = np.asarray(coefficients)
    if coefficients.min() < -2047 or coefficients.max() > 2047:
        raise ValueError("quantized coefficients exceed the baseline JPEG range")
    tables = np.stack([luma_table, chroma_table]).astype(np.uint16)
    if tables.min() < 1 or tables.max() > 255:
        raise ValueError("quantization tables must lie in 1..255 for baseline JPEG")
    y, cb, cr = (np.ascontiguousarray(c, dtype=np.int16) for c in coefficients)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "thumb.jpg")
        with _JPEGLIB_LOCK:
            jpeglib.from_dct(Y=y, Cb=cb, Cr=cr, qt=tables, quant_tbl_no=[0, 1, 1]).write_dct(
                path, flags=["+OPTIMIZE_CODING"])
        with open(path, "rb") as f:
            jpeg = f.read()
    return _insert_after_app0(jpeg, marker.to_bytes())


# Start-of-frame markers of arithmetic-coded JPEG (ITU T.81, Table B.1), which jpeglib's libjpeg
# does not read.
_ARITHMETIC_FRAMES = {0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _header_segments(jpeg: bytes) -> Iterator[tuple[int, bytes]]:
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
    for kind, payload in _header_segments(jpeg):
        if kind == 0xEB and payload.startswith(_MARKER_ID):
            if len(payload) + 2 > _MAX_MARKER_BYTES:
                raise InvalidThumbnailError("the HyperThumb marker is implausibly long")
            return ThumbnailMarker.from_payload(payload)
    raise InvalidThumbnailError(
        "this JPEG has no HyperThumb marker: it was not made by HyperThumb, or the marker was stripped")


def _decode_pixels(jpeg: bytes) -> Image.Image:
    """The thumbnail as a viewer shows it, and the check of its entropy-coded data: libjpeg only
    warns about a scan cut short or damaged and fills in what is missing, which Pillow and jpeglib
    accept, so such a file would restore to a grey or noisy photo without a word; simplejpeg's
    strict decode (libjpeg-turbo, the same pixels as Pillow's) refuses it."""
    try:
        return Image.fromarray(simplejpeg.decode_jpeg(jpeg, colorspace="RGB", strict=True), "RGB")
    except Exception as exc:  # libjpeg's errors and, strict, its warnings
        raise InvalidThumbnailError(f"the thumbnail JPEG is damaged ({exc})") from None


def _read_coefficients(jpeg: bytes, blocks: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Y, Cb, Cr coefficients (3, *blocks, 8, 8), the four table slots, each component's slot).

    Two calls into jpeglib's C library, neither touching its globals: the first has libjpeg check
    the whole file and give the block grid it will write, so the buffers fit whatever the file
    claims, and the second, now sure to read the header it accepted, fills them. (The second
    alone must not meet a bad header: its error path closes an uninitialised file pointer.)
    """
    library, refused = CJpegLib.get(), "the thumbnail's coefficients cannot be read (libjpeg refused the file)"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "thumb.jpg")
        with open(path, "wb") as f:
            f.write(jpeg)
        source = ctypes.c_char_p(path.encode())
        # Room for libjpeg's most components (MAX_COMPONENTS, 10): the file may claim any number.
        block_dims, sampling, components = np.zeros(20, np.intc), np.zeros(20, np.intc), np.zeros(3, np.intc)
        scans = ctypes.c_int(0)
        if not library.read_jpeg_info(source, _pointer(block_dims, ctypes.c_int), None,
                                      _pointer(components, ctypes.c_int), _pointer(sampling, ctypes.c_int),
                                      None, None, None, None, None, ctypes.byref(scans), None):
            raise InvalidThumbnailError(refused)
        grids = block_dims.reshape(10, 2)[:3]
        if components[0] != 3 or (sampling[:6] != 1).any() or (grids != grids[0]).any():
            raise InvalidThumbnailError("the thumbnail must be a 3-component 4:4:4 JPEG")
        if tuple(grids[0]) != blocks:
            raise InvalidThumbnailError("the thumbnail's block grid does not match its size")
        coefficients = np.empty((3, *blocks, 8, 8), np.int16)
        tables = np.zeros((4, 8, 8), np.uint16)
        table_of = np.zeros(4, np.int16)
        if not library.read_jpeg_dct(source, *(_pointer(c, ctypes.c_short) for c in coefficients), None,
                                     _pointer(tables, ctypes.c_ushort), _pointer(table_of, ctypes.c_short)):
            raise InvalidThumbnailError(refused)
    return coefficients, tables, table_of[:3]


def _pointer(array: np.ndarray, kind: type) -> "ctypes._Pointer":
    return array.ctypes.data_as(ctypes.POINTER(kind))


@dataclass(frozen=True)
class ThumbnailHeader:
    """A thumbnail file's header, checked, before any of its entropy-coded data is decoded."""

    marker: ThumbnailMarker
    luma_table: np.ndarray  # (8, 8) natural order
    chroma_table: np.ndarray
    image: Image.Image  # opened by Pillow, not yet decoded


def _checked_tables(tables, slots) -> tuple[np.ndarray, np.ndarray]:
    """(luma, chroma) 8x8 tables from the file's table slots and each component's slot."""
    if slots[1] != slots[2]:
        raise InvalidThumbnailError("the two chroma components must share one quantization table")
    try:
        luma, chroma = (np.asarray(tables[slot], np.int64).reshape(8, 8) for slot in slots[:2])
    except (KeyError, IndexError, ValueError):
        raise InvalidThumbnailError("the thumbnail lacks a quantization table that a component uses") from None
    if min(luma.min(), chroma.min()) < 1 or max(luma.max(), chroma.max()) > 255:
        raise InvalidThumbnailError("quantization tables outside the baseline range 1..255")
    return luma, chroma


def read_thumbnail_header(jpeg: bytes) -> ThumbnailHeader:
    """Checks the marker, the frame and the tables; raises InvalidThumbnailError on anything amiss.
    Enough for a decoder of the pixels elsewhere (the codec's pixel route, nvJPEG on a GPU)."""
    if not jpeg:
        raise InvalidThumbnailError("the thumbnail file is empty")
    marker = find_marker(jpeg)
    if any(kind in _ARITHMETIC_FRAMES for kind, _ in _header_segments(jpeg)):
        raise InvalidThumbnailError("the thumbnail uses arithmetic coding, which HyperThumb does not read; "
                                    "HyperThumb writes Huffman-coded files")
    if not jpeg.endswith(b"\xff\xd9"):  # whatever Pillow's global LOAD_TRUNCATED_IMAGES says
        raise InvalidThumbnailError("the thumbnail JPEG is truncated (no end-of-image marker)")
    expected_w, expected_h = marker.thumbnail_size
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(jpeg))
            if image.format != "JPEG" or image.size != (expected_w, expected_h):
                raise InvalidThumbnailError(
                    f"the thumbnail is {image.size[0]}x{image.size[1]} but its marker implies "
                    f"{expected_w}x{expected_h}")
            if image.mode != "RGB":
                raise InvalidThumbnailError(f"the thumbnail has colour mode {image.mode}, expected RGB")
    except InvalidThumbnailError:
        raise
    except Exception as exc:  # Pillow raises many types for broken files
        raise InvalidThumbnailError(f"the thumbnail JPEG cannot be decoded ({exc})") from None
    components = getattr(image, "layer", [])  # (id, horizontal and vertical sampling, table slot) each
    if len(components) != 3 or any((h, v) != (1, 1) for _, h, v, _ in components):
        raise InvalidThumbnailError("the thumbnail must be a 3-component 4:4:4 JPEG")
    luma, chroma = _checked_tables(image.quantization, [slot for *_, slot in components])
    return ThumbnailHeader(marker, luma, chroma, image)


def read_thumbnail(jpeg: bytes) -> ThumbnailFile:
    """Parses and validates a thumbnail file; raises InvalidThumbnailError on anything amiss."""
    header = read_thumbnail_header(jpeg)
    width, height = header.image.size
    # libjpeg-turbo decodes the pixels (what a viewer shows, and the check of the entropy-coded
    # data) while jpeglib's libjpeg reads the coefficients: both release the GIL, so they overlap.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pixels = pool.submit(_decode_pixels, jpeg)
        try:
            coefficients, qt, table_of = _read_coefficients(jpeg, (height // 8, width // 8))
        finally:
            image = pixels.result()  # a damaged file reports the strict decode's error first
    luma, chroma = _checked_tables(qt, table_of)  # the tables libjpeg read with the coefficients
    return ThumbnailFile(marker=header.marker, coefficients=coefficients, luma_table=luma,
                         chroma_table=chroma, image=image)
