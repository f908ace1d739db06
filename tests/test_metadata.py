"""Nothing of the photo lost: its EXIF (GPS included) and a wide-gamut ICC profile travel in the
thumbnail and come back with the restored photo; the marker and the pixels do not depend on them."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from hyperthumb import cli
from hyperthumb.codec.image_io import load_image, save_options
from hyperthumb.evaluation.methods import method_codec, run_method
from hyperthumb.jpeg.marker import find_marker
from hyperthumb.jpeg.metadata import ICC_ID, PhotoMetadata, read_metadata
from hyperthumb.training.train import validate
from tests.conftest import photo_like, small_model

GPS = 0x8825


# Display P3's primaries adapted to D50, as Apple's Display P3 profile states them (rXYZ, gXYZ, bXYZ).
P3_COLORANTS = {b"rXYZ": (0.5151, 0.2412, -0.0011), b"gXYZ": (0.2920, 0.6922, 0.0419),
                b"bXYZ": (0.1571, 0.0666, 0.7841)}


def wide_gamut_profile() -> bytes:
    """A Display P3 profile as a phone writes one: LittleCMS's sRGB profile (a valid profile) with
    its colorant tags set to P3's primaries."""
    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    count = int.from_bytes(data[128:132], "big")
    for index in range(count):
        signature, offset = bytes(data[132 + 12 * index:136 + 12 * index]), 136 + 12 * index
        if signature in P3_COLORANTS:
            start = int.from_bytes(data[offset:offset + 4], "big") + 8  # after the 'XYZ ' type and reserved bytes
            for axis, value in enumerate(P3_COLORANTS[signature]):
                data[start + 4 * axis:start + 4 * axis + 4] = round(value * 65536).to_bytes(4, "big", signed=True)
    assert data[16:20] == b"RGB "
    return bytes(data)


def phone_photo(tmp_path, orientation: int = 6, icc: bytes = b"") -> str:
    """A JPEG as a phone saves it: rotated by EXIF, with capture data and GPS, and a profile."""
    exif = Image.Exif()
    exif[0x0112], exif[0x010F], exif[0x0132] = orientation, "HyperPhone", "2026:12:06 12:00:00"
    gps = exif.get_ifd(GPS)
    gps[1], gps[2] = "N", (48.0, 51.0, 24.0)
    path = tmp_path / "phone.jpg"
    photo_like(96, 64, seed=5).save(path, quality=95, exif=exif.tobytes(), icc_profile=icc or None)
    return str(path)


def test_the_metadata_kept_drops_the_orientation_and_profiles_of_other_colour_spaces(tmp_path):
    icc = wide_gamut_profile()
    photo = load_image(phone_photo(tmp_path, icc=icc))
    assert photo.size == (64, 96)  # upright
    kept = PhotoMetadata.of_image(photo)
    exif = Image.Exif()
    exif.load(kept.exif)
    assert 0x0112 not in exif and exif[0x010F] == "HyperPhone" and exif.get_ifd(GPS)[1] == "N"
    assert kept.icc_profile == icc
    gray = Image.new("L", (8, 8))
    gray.info["icc_profile"] = icc[:16] + b"GRAY" + icc[20:]
    assert PhotoMetadata.of_image(gray).icc_profile is None  # it no longer fits the RGB pixels
    big = PhotoMetadata(icc_profile=bytes(range(256)) * 600)  # 150 KB: three APP2 chunks
    assert read_metadata(b"\xff\xd8" + big.segments() + b"\xff\xda").icc_profile == big.icc_profile
    assert big.segments().count(b"\xff\xe2") == 3 and big.segments().count(ICC_ID) == 3


def test_a_thumbnail_carries_exif_and_profile_to_the_restored_photo(small_codec, tmp_path):
    icc = wide_gamut_profile()
    source = phone_photo(tmp_path, icc=icc)
    thumb = small_codec.encode(source, target_bpp=0.8)
    plain = small_codec.encode(source, target_bpp=0.8, keep_metadata=False)
    carried = read_metadata(thumb.jpeg)
    assert carried.icc_profile == icc and b"HyperPhone" in carried.exif
    assert read_metadata(plain.jpeg) == PhotoMetadata()
    assert find_marker(thumb.jpeg) == find_marker(plain.jpeg)  # the marker does not depend on them
    viewer = Image.open(io.BytesIO(thumb.jpeg))
    assert viewer.info["icc_profile"] == icc and viewer.getexif().get(0x0112) is None  # any viewer sees them
    assert abs(thumb.bpp - plain.bpp) < 0.1 * plain.bpp + len(PhotoMetadata.of_image(load_image(source))
                                                               .segments()) * 8 / (64 * 96)
    restored = small_codec.decode(thumb.jpeg)
    assert np.array_equal(np.asarray(restored), np.asarray(small_codec.decode(
        thumb.jpeg.replace(PhotoMetadata(carried.exif, carried.icc_profile).segments(), b""))))
    png = tmp_path / "restored.png"
    restored.save(png, **save_options(restored))
    reopened = Image.open(png)
    assert reopened.info["icc_profile"] == icc
    exif = reopened.getexif()
    assert exif[0x010F] == "HyperPhone" and exif.get_ifd(GPS)[2] == (48.0, 51.0, 24.0)


@pytest.mark.parametrize("mode", ["CMYK", "L"])
def test_a_photo_without_an_rgb_profile_gives_a_thumbnail_without_one(small_codec, tmp_path, mode):
    path = tmp_path / "photo.jpg"
    space = b"CMYK" if mode == "CMYK" else b"GRAY"
    photo_like(64, 64).convert(mode).save(path, icc_profile=wide_gamut_profile()[:16] + space + bytes(108))
    assert read_metadata(small_codec.encode(str(path), target_bpp=0.8).jpeg).icc_profile is None


def test_compared_methods_store_pixels_only_while_the_apps_encode_keeps_the_metadata(tmp_path):
    """`evaluate` compares what pixels cost: a photo's EXIF must not be charged to the thumbnail alone
    (the full-size files carry none); the app's encode, through the same class, keeps it."""
    photo = load_image(phone_photo(tmp_path, icc=wide_gamut_profile()))
    bare = Image.fromarray(np.asarray(photo))
    compared = run_method("rdbunet", photo, 0.8)
    assert read_metadata(compared.jpeg) == PhotoMetadata()
    assert compared.jpeg == run_method("rdbunet", bare, 0.8).jpeg
    kept, _ = method_codec("rdbunet").encode(photo, 0.8)
    assert b"HyperPhone" in read_metadata(kept.jpeg).exif


def test_the_cli_says_when_the_metadata_alone_keeps_a_target_out_of_reach(tmp_path, capsys):
    source = phone_photo(tmp_path, icc=wide_gamut_profile())  # 96x64: the profile alone is about 0.5 bpp
    assert cli.main(["encode", source, "-o", str(tmp_path / "thumb.jpg"), "--bpp", "0.05"]) in (0, None)
    assert "the photo's EXIF and colour profile alone take" in capsys.readouterr().out


def test_validation_measures_the_bpp_of_the_pixels(tmp_path):
    """The validation crops keep their photo's metadata; their files' bpp must not count it."""
    photo = load_image(phone_photo(tmp_path, icc=wide_gamut_profile()))
    model = small_model("rdbunet")
    bare = Image.fromarray(np.asarray(photo))
    with_metadata, without = (validate(model, [crop], -1.0, "cpu")["bpp"] for crop in (photo, bare))
    assert with_metadata == without
