"""The thumbnail as a real baseline JPEG file: exact coefficients, our tables, and a marker.

libjpeg (through jpeglib) writes and reads the quantized coefficients losslessly, so the file holds
exactly what the model produced. The marker (`marker.py`) says which model made it and the HR size.
"""
from __future__ import annotations

import ctypes
import io
import logging
import os
import struct
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import jpeglib
import numpy as np
import simplejpeg
from jpeglib._bind import CJpegLib
from PIL import Image

from hyperthumb.errors import InvalidThumbnailError
from hyperthumb.jpeg.marker import ARITHMETIC_FRAMES, ThumbnailMarker, find_marker, header_segments, with_frame_size
from hyperthumb.jpeg.metadata import PhotoMetadata

log = logging.getLogger(__name__)

# jpeglib's high-level calls are not safe in two threads at once (its header reader keeps the
# markers it saw in C globals, cjpeglib_common_markers.cpp: two concurrent reads crashed the process
# with a bus error), so writes hold this lock; reads call its C readers without markers
# (`_read_coefficients`), which keep all their state on the stack and so run in parallel.
_JPEGLIB_LOCK = threading.Lock()


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
                    marker: ThumbnailMarker, metadata: PhotoMetadata = PhotoMetadata()) -> bytes:
    """Quantized coefficients (3, bh, bw, 8, 8) and integer tables -> baseline JPEG bytes, stating
    the thumbnail's exact size over the padded block grid it codes, with the photo's `metadata`
    (EXIF, ICC profile) and our marker after the JFIF header."""
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
    return _insert_after_app0(with_frame_size(jpeg, *marker.thumbnail_size), metadata.segments() + marker.to_bytes())


def _decode_pixels(jpeg: bytes) -> Image.Image:
    """The thumbnail as a viewer shows it, and the check of its entropy-coded data: libjpeg only
    warns about a scan cut short or damaged and fills in what is missing, which Pillow and jpeglib
    accept, so such a file would restore to a grey or noisy photo without a word; simplejpeg's
    strict decode (libjpeg-turbo, the same pixels as Pillow's) refuses it."""
    try:
        return Image.fromarray(simplejpeg.decode_jpeg(jpeg, colorspace="RGB", strict=True), "RGB")
    except Exception as exc:  # libjpeg's errors and, strict, its warnings: logged, not shown to the user
        log.info("libjpeg refused a thumbnail: %s", exc)
        raise InvalidThumbnailError("the thumbnail JPEG is damaged: its image data is cut short or corrupted") from None


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
    if any(kind in ARITHMETIC_FRAMES for kind, _ in header_segments(jpeg)):
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
    # libjpeg-turbo decodes the pixels (what a viewer shows, and the check of the entropy-coded
    # data) while jpeglib's libjpeg reads the coefficients: both release the GIL, so they overlap.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pixels = pool.submit(_decode_pixels, jpeg)
        try:
            coefficients, qt, table_of = _read_coefficients(jpeg, header.marker.block_grid)
        finally:
            image = pixels.result()  # a damaged file reports the strict decode's error first
    luma, chroma = _checked_tables(qt, table_of)  # the tables libjpeg read with the coefficients
    return ThumbnailFile(marker=header.marker, coefficients=coefficients, luma_table=luma,
                         chroma_table=chroma, image=image)
