"""Bad input of every kind ends in the library's own error, before anything large is allocated."""
from __future__ import annotations

import io
import json
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

import hyperthumb
from hyperthumb import cli
from hyperthumb.codec.image_io import load_image, probe_image
from hyperthumb.errors import (
    HyperThumbError,
    ImageSizeError,
    InvalidImageError,
    InvalidSettingError,
    InvalidThumbnailError,
)
from hyperthumb.jpeg.marker import _MARKER_ID
from tests.conftest import photo_like


@pytest.fixture(scope="module")
def jpeg(small_codec) -> bytes:
    return small_codec.encode(photo_like(200, 136, seed=2), target_bpp=0.5).jpeg


def with_marker(jpeg: bytes, **fields) -> bytes:
    """The same file with its HyperThumb marker's JSON fields replaced."""
    start = jpeg.index(b"\xff\xeb")
    length = struct.unpack(">H", jpeg[start + 2:start + 4])[0]
    payload = json.loads(jpeg[start + 4 + len(_MARKER_ID):start + 2 + length])
    body = _MARKER_ID + json.dumps({**payload, **fields}).encode()
    return jpeg[:start] + b"\xff\xeb" + struct.pack(">H", len(body) + 2) + body + jpeg[start + 2 + length:]


def with_table_entry(jpeg: bytes, value: int) -> bytes:
    """The same file with the first entry of its first quantization table set to `value` (8-bit)."""
    dqt = jpeg.index(b"\xff\xdb")
    return jpeg[:dqt + 5] + bytes([value]) + jpeg[dqt + 6:]


def with_16bit_table(jpeg: bytes, value: int) -> bytes:
    """The first quantization table rewritten with 16-bit precision, every entry `value`."""
    dqt = jpeg.index(b"\xff\xdb")
    length = struct.unpack(">H", jpeg[dqt + 2:dqt + 4])[0]
    table = bytes([0x10 | jpeg[dqt + 4] & 0x0F]) + struct.pack(">64H", *[value] * 64)
    rest = jpeg[dqt + 4 + 65:dqt + 2 + length]  # any further tables in the same segment
    segment = table + rest
    return jpeg[:dqt] + b"\xff\xdb" + struct.pack(">H", len(segment) + 2) + segment + jpeg[dqt + 2 + length:]


def resaved(jpeg: bytes, mode: str, **options) -> bytes:
    """The thumbnail's pixels saved again by Pillow in `mode` with `options`, its marker kept."""
    start = jpeg.index(b"\xff\xeb")
    segment = jpeg[start:start + 2 + struct.unpack(">H", jpeg[start + 2:start + 4])[0]]
    out = io.BytesIO()
    Image.open(io.BytesIO(jpeg)).convert(mode).save(out, "JPEG", quality=90, **options)
    return out.getvalue()[:2] + segment + out.getvalue()[2:]


def scan_cut_short(jpeg: bytes) -> bytes:
    """The first 20 bytes of the scan, then the end-of-image marker: libjpeg only warns about it."""
    return jpeg[:jpeg.index(b"\xff\xda") + 20] + b"\xff\xd9"


def _scan_bytes_changed(jpeg: bytes) -> bytes:
    """Six bytes of the scan changed: libjpeg decodes on past them with a warning at most. (A change
    that still reads as valid Huffman codes cannot be seen by any decoder: JPEG has no checksum; three
    changed bytes went unseen once the marker grew by the encoder's identifier and the scan moved.)"""
    data, scan = bytearray(jpeg), jpeg.index(b"\xff\xda")
    for offset in (40, 60, 80, 100, 120, 140):
        data[scan + offset] = 0x3C if data[scan + offset] != 0x3C else 0x5A
    return bytes(data)


def _corrupt_scan(jpeg: bytes) -> bytes:
    scan = jpeg.index(b"\xff\xda")
    data = bytearray(jpeg)
    for i in range(scan + 20, len(data) - 2, 7):
        data[i] ^= 0x5A
    return bytes(data)


BAD_THUMBNAILS = {
    "empty": lambda j: b"",
    "not a jpeg": lambda j: b"\x89PNG\r\n\x1a\n" + j[2:],
    "truncated by half": lambda j: j[:len(j) // 2],
    "truncated by two bytes": lambda j: j[:-2],
    "corrupt scan": _corrupt_scan,
    "scan cut short, end marker kept": scan_cut_short,
    "scan bytes changed": _scan_bytes_changed,
    "arithmetic coded": lambda j: j.replace(b"\xff\xc0", b"\xff\xc9", 1),
    "table entry 0": lambda j: with_table_entry(j, 0),
    "chroma subsampled 4:2:0": lambda j: resaved(j, "RGB", subsampling=2),
    "grayscale": lambda j: resaved(j, "L"),
    "CMYK": lambda j: resaved(j, "CMYK"),
    "16-bit table over 255": lambda j: with_16bit_table(j, 300),
    "marker over the pixel limit": lambda j: with_marker(j, width=20000, height=20000),
    "marker bigger than the thumbnail": lambda j: with_marker(j, width=400),
    "marker smaller than the thumbnail": lambda j: with_marker(j, height=60),
    "marker size not an integer": lambda j: with_marker(j, width=1e308),
    "marker with a path as model": lambda j: with_marker(j, encoder="../rdbunet"),
    "marker of another version": lambda j: with_marker(j, v=3),
    "marker stripped": lambda j: j.replace(_MARKER_ID, b"Other\x00Thing"),
}


@pytest.mark.parametrize("case", BAD_THUMBNAILS)
def test_bad_thumbnail_raises_library_error(small_codec, jpeg, case):
    with pytest.raises(InvalidThumbnailError):
        small_codec.decode(BAD_THUMBNAILS[case](jpeg))


@pytest.mark.parametrize("case, reason", [("scan cut short, end marker kept", "damaged"),
                                          ("arithmetic coded", "arithmetic coding")])
def test_what_is_wrong_with_the_scan_is_named(small_codec, jpeg, case, reason):
    with pytest.raises(InvalidThumbnailError, match=reason):
        small_codec.decode(BAD_THUMBNAILS[case](jpeg))


@pytest.mark.parametrize("payload", [b"{not json", b"[1, 2]", b'{"v": 1}'])
def test_a_damaged_marker_says_so_without_python_internals(jpeg, payload):
    start = jpeg.index(b"\xff\xeb")
    end = start + 2 + struct.unpack(">H", jpeg[start + 2:start + 4])[0]
    body = _MARKER_ID + payload
    with pytest.raises(InvalidThumbnailError) as error:
        hyperthumb.decode(jpeg[:start] + b"\xff\xeb" + struct.pack(">H", len(body) + 2) + body + jpeg[end:])
    assert str(error.value) == "the HyperThumb marker is damaged (not the JSON fields HyperThumb writes)"


def test_an_absurd_size_in_the_marker_is_not_echoed(small_codec, jpeg):
    with pytest.raises(InvalidThumbnailError) as error:
        small_codec.decode(with_marker(jpeg, width=10**300))
    assert len(str(error.value)) < 100


@pytest.mark.parametrize("settings", [{"target_bpp": 0}, {"target_bpp": float("nan")},
                                      {"target_bpp": None, "rate_t": 1e9}, {"target_bpp": None}])
def test_encode_settings_out_of_range_are_library_errors(small_codec, settings):
    with pytest.raises(InvalidSettingError):  # a ValueError too, for callers that caught those
        small_codec.encode(photo_like(64, 64), **settings)


@pytest.mark.parametrize("device", ["foo", "cuda:99"])
def test_a_device_this_machine_lacks_is_a_plain_error(device):
    with pytest.raises(InvalidSettingError, match="device|GPU"):
        hyperthumb.load_model("rdbunet", device=device)


def test_the_cli_checks_where_it_will_write_before_working(tmp_path, capsys):
    cases = (("encode", tmp_path / "missing" / "thumb.jpg", "does not exist"),
             ("decode", tmp_path / "photo.xyz", "unknown image file extension"))
    for command, output, reason in cases:  # the input does not exist either: that would be the other error
        assert cli.main([command, str(tmp_path / "absent.jpg"), "-o", str(output)]) == 1
        assert reason in capsys.readouterr().err


def test_a_plain_jpeg_is_refused(small_codec):
    buffer = io.BytesIO()
    photo_like(64, 64).save(buffer, "JPEG")
    with pytest.raises(InvalidThumbnailError, match="no HyperThumb marker"):
        small_codec.decode(buffer.getvalue())


def test_another_models_thumbnail(small_codec, jpeg):
    with pytest.raises(InvalidThumbnailError, match="transformer"):
        small_codec.decode(with_marker(jpeg, encoder="transformer"))
    with pytest.raises(HyperThumbError):  # no such checkpoint anywhere
        hyperthumb.decode(with_marker(jpeg, encoder="no-such-model"))


def test_a_lying_marker_is_refused_before_allocating(small_codec, jpeg):
    lying = with_marker(jpeg, width=9000, height=9000)  # 81 MP claimed, 50x34 thumbnail held
    tracemalloc.start()
    with pytest.raises(InvalidThumbnailError):
        small_codec.decode(lying)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 * 2**20


@pytest.mark.parametrize("decode", ["codec", "library"])
@pytest.mark.parametrize("kind", ["missing", "directory", "empty"])
def test_bad_paths(small_codec, tmp_path, decode, kind):
    path = tmp_path / "thumb.jpg"
    if kind == "directory":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    run = small_codec.decode if decode == "codec" else hyperthumb.decode
    with pytest.raises(InvalidThumbnailError):
        run(path)


@pytest.mark.parametrize("command", ["decode", "encode"])
def test_cli_fails_with_one_line(tmp_path, capsys, command):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    for source in (tmp_path / "missing.jpg", tmp_path, tmp_path / "broken.jpg"):
        assert cli.main([command, str(source), "-o", str(tmp_path / "out.png")]) == 1
        error = capsys.readouterr().err
        assert error.startswith("error: ") and error.count("\n") == 1, error


# Image loading: one door for every photo.

def _saved(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a size in its header and holds no pixels: a decompression bomb's shape."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IEND", b""))


def test_exif_orientation_is_applied():
    array = np.zeros((40, 80, 3), np.uint8)
    array[:, :40] = (255, 0, 0)  # red left, blue right
    array[:, 40:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: the viewer turns it 90 degrees clockwise
    loaded = np.asarray(load_image(_saved(Image.fromarray(array), "JPEG", quality=95, exif=exif)))
    assert loaded.shape == (80, 40, 3)
    assert loaded[5, 20, 0] > 200 and loaded[75, 20, 2] > 200  # red now on top, blue below


def test_alpha_is_composited_on_white():
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[:20] = (0, 0, 0, 0)  # transparent: white
    rgba[20:] = (0, 0, 0, 128)  # half-transparent black: mid grey
    loaded = np.asarray(load_image(_saved(Image.fromarray(rgba, "RGBA"), "PNG")), np.int32)
    assert (loaded[:20] == 255).all() and (abs(loaded[20:] - 127) <= 1).all()
    la = Image.fromarray(rgba[..., [0, 3]], "LA")
    assert (np.asarray(load_image(la))[:20] == 255).all()


def test_16_bit_grayscale():
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (48, 1))
    source = Image.fromarray(ramp)
    assert source.mode.startswith("I;16")
    loaded = np.asarray(load_image(_saved(source, "PNG")), np.int32)
    assert loaded.shape == (48, 64, 3) and (loaded[..., 0] == loaded[..., 2]).all()
    assert abs(loaded[0] [:, 0] - np.rint(ramp[0] / 257)).max() <= 1


def test_grayscale_palette_and_cmyk():
    grey = np.asarray(load_image(Image.new("L", (40, 40), 77)))
    assert (grey == 77).all()
    palette = Image.new("P", (40, 40), 0)
    palette.putpalette([10, 200, 30] + [0] * 765)
    assert tuple(np.asarray(load_image(_saved(palette, "PNG")))[0, 0]) == (10, 200, 30)
    palette.info["transparency"] = 0
    assert tuple(np.asarray(load_image(_saved(palette, "PNG", transparency=0)))[0, 0]) == (255, 255, 255)
    red = np.asarray(load_image(_saved(Image.new("CMYK", (40, 40), (0, 255, 255, 0)), "JPEG", quality=95)), np.int32)
    assert red[..., 0].mean() > 200 and red[..., 1:].mean() < 60


@pytest.mark.parametrize("width, height", [(12000, 10000), (40000, 40000)])
def test_decompression_bombs_are_refused(width, height):
    tracemalloc.start()
    with pytest.raises(InvalidImageError):
        load_image(_png_header_only(width, height))
    assert tracemalloc.get_traced_memory()[1] < 8 * 2**20
    tracemalloc.stop()


def test_pixel_limit_is_a_parameter():
    with pytest.raises(InvalidImageError, match="limit"):
        load_image(photo_like(64, 64), max_pixels=1000)


@pytest.mark.parametrize("source", [b"", b"not an image at all", "missing.png", ".", _saved(Image.new("RGB", (16, 16)), "PNG")])
def test_unusable_images(source):
    with pytest.raises(InvalidImageError):
        load_image(source)
    with pytest.raises(InvalidImageError):  # the header alone tells
        probe_image(source)


def test_a_probe_reads_the_size_from_the_header_alone():
    assert probe_image(_saved(photo_like(80, 48), "JPEG")) == (80, 48)
    with pytest.raises(ImageSizeError, match="over the limit"):
        probe_image(_png_header_only(12_000, 10_000))  # a bomb's header, no pixels to decode
