"""Whole libraries, on real files with small random-weight models: a folder tree (subfolders, a
broken photo, a non-image, a phone's HEIC) into thumbnails at the same relative paths with a
manifest; a second run skips what is done and retries what failed; an interrupted run leaves a
readable manifest and the next one finishes only the rest; any number of workers gives the same
bytes; restore, file:// URLs and globs, HEIC through the one door for photos, and the command line's
errors. One test runs the shipped rdbunet-lite through the command line."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from hyperthumb.cli import main
from hyperthumb.codec import HyperThumbCodec
from hyperthumb.codec.image_io import load_image, probe_image
from hyperthumb.errors import ImageSizeError
from hyperthumb.jpeg.marker import find_marker
from hyperthumb.library import convert_library, restore_library
from hyperthumb.library.convert import MANIFEST_NAME, RESTORE_MANIFEST_NAME
from hyperthumb.zoo import ModelZoo, checkpoint_summary, use_zoo
from tests.conftest import photo_like, small_checkpoint_loader

ENCODER = "rdbunet-lite"
# thumbnail -> the photo's upright size (the HEIC photo's EXIF orientation turns it a quarter)
SIZES = {"a.jpg": (160, 120), "2024/b.jpg": (128, 96), "2024/summer/c.jpg": (136, 104), "2024/phone.jpg": (88, 120)}
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "plasma_Path.jpg"
UNREADABLE = "the file is not a readable image (damaged, or not a photo format)"


def _save_heic(image: Image.Image, path: Path, orientation: int = 1) -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    exif = Image.Exif()
    exif[0x0112] = orientation
    image.save(path, format="HEIF", exif=exif.tobytes(), quality=95)


@pytest.fixture(autouse=True)
def small_models():
    with use_zoo(ModelZoo(loader=small_checkpoint_loader)) as zoo:
        yield zoo


@pytest.fixture
def library(tmp_path) -> Path:
    root = tmp_path / "library"
    (root / "2024" / "summer").mkdir(parents=True)
    photo_like(160, 120, seed=1).save(root / "a.png")
    photo_like(128, 96, seed=2).save(root / "2024" / "b.jpg", quality=90)
    photo_like(136, 104, seed=3).save(root / "2024" / "summer" / "c.webp")
    _save_heic(photo_like(120, 88, seed=4), root / "2024" / "phone.heic", orientation=6)
    (root / "2024" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a JPEG")
    (root / "notes.txt").write_text("not a photo")
    return root


class Calls(list):
    interrupt_after = None


@pytest.fixture
def encodes(monkeypatch) -> Calls:
    """Every encode of this test, counted; set `encodes.interrupt_after` to raise KeyboardInterrupt then."""
    calls = Calls()
    original = HyperThumbCodec.encode

    def counted(codec, *args, **kwargs):
        if calls.interrupt_after is not None and len(calls) >= calls.interrupt_after:
            raise KeyboardInterrupt
        calls.append(1)
        return original(codec, *args, **kwargs)

    monkeypatch.setattr(HyperThumbCodec, "encode", counted)
    return calls


def _rows(manifest: Path, root: Path) -> dict[str, dict]:
    return {Path(row["source"]).relative_to(root).as_posix(): row for row in pq.read_table(manifest).to_pylist()}


def _thumbnails(out: Path) -> dict[str, bytes]:
    return {path.relative_to(out).as_posix(): path.read_bytes() for path in sorted(out.rglob("*.jpg"))}


def test_a_tree_becomes_thumbnails_at_the_same_paths_with_a_row_each(library, tmp_path):
    out = tmp_path / "thumbs"
    summary = convert_library([str(library)], out, encoder=ENCODER, bpp=0.3)
    assert (summary.done, summary.skipped, summary.failed) == (4, 0, 1)
    thumbnails = _thumbnails(out)
    assert set(thumbnails) == set(SIZES)
    rows = _rows(summary.manifest, library)
    assert set(rows) == {"a.png", "2024/b.jpg", "2024/summer/c.webp", "2024/phone.heic", "2024/broken.jpg"}
    broken = rows.pop("2024/broken.jpg")
    assert (broken["status"], broken["error"], broken["output"]) == ("failed", UNREADABLE, None)
    assert broken["sha256"] == hashlib.sha256((library / "2024" / "broken.jpg").read_bytes()).hexdigest()
    step = checkpoint_summary(ENCODER)["trained_steps"]
    for source, row in rows.items():
        jpeg = thumbnails[row["output"]]
        marker = find_marker(jpeg)
        width, height = SIZES[row["output"]]
        assert row["status"] == "done" and row["error"] is None
        assert row["source_bytes"] == (library / source).stat().st_size
        assert row["sha256"] == hashlib.sha256((library / source).read_bytes()).hexdigest()
        assert row["output_bytes"] == len(jpeg) and row["bpp"] == pytest.approx(len(jpeg) * 8 / (width * height))
        assert (marker.encoder, marker.width, marker.height) == (ENCODER, width, height)
        assert (row["model"], row["checkpoint_step"], row["target_bpp"]) == (ENCODER, step, 0.3)
        assert row["seconds"] > 0


def test_a_second_run_skips_what_is_done_and_redoes_what_failed_or_changed(library, tmp_path, encodes):
    out = tmp_path / "thumbs"
    convert_library([str(library)], out, encoder=ENCODER)
    written = {path: path.stat().st_mtime_ns for path in out.rglob("*.jpg")}
    photo_like(96, 96, seed=5).save(library / "2024" / "broken.jpg")  # fixed
    photo_like(160, 120, seed=6).save(library / "a.png")  # changed
    encodes.clear()
    summary = convert_library([str(library)], out, encoder=ENCODER)
    assert (summary.done, summary.skipped, summary.failed, len(encodes)) == (2, 3, 0, 2)
    assert {path: path.stat().st_mtime_ns for path in written if path.name != "a.jpg"} == \
        {path: mtime for path, mtime in written.items() if path.name != "a.jpg"}
    rows = _rows(summary.manifest, library)
    assert {row["status"] for row in rows.values()} == {"done"} and (out / "2024" / "broken.jpg").is_file()
    assert rows["a.png"]["sha256"] == hashlib.sha256((library / "a.png").read_bytes()).hexdigest()
    encodes.clear()
    assert convert_library([str(library)], out, encoder=ENCODER, bpp=0.5).done == 5  # other settings: all again
    assert len(encodes) == 5


def test_an_interrupted_run_leaves_a_readable_manifest_and_the_next_finishes_the_rest(library, tmp_path, encodes,
                                                                                      capsys):
    out = tmp_path / "thumbs"
    encodes.interrupt_after = 2
    with pytest.raises(SystemExit) as stopped:  # Ctrl-C through the command line
        main(["convert", str(library), "--out", str(out), "--encoder", ENCODER, "--workers", "1"])
    assert stopped.value.code == 130 and "run the same command again" in capsys.readouterr().err
    rows = _rows(out / MANIFEST_NAME, library)
    done = {source for source, row in rows.items() if row["status"] == "done"}
    assert len(done) == 2 and all((out / rows[source]["output"]).is_file() for source in done)
    assert not list(out.glob("*.partial"))
    encodes.interrupt_after, finished = None, len(encodes)
    summary = convert_library([str(library)], out, encoder=ENCODER)
    assert (summary.done, summary.skipped, len(encodes) - finished) == (2, 2, 2)
    assert set(_thumbnails(out)) == set(SIZES)


def test_two_workers_write_the_same_bytes_as_one(library, tmp_path):
    for workers in (1, 2):
        torch.set_num_threads(2)  # one worker gets both threads, each of two workers one
        try:
            convert_library([str(library)], tmp_path / str(workers), encoder=ENCODER, workers=workers)
        finally:
            torch.set_num_threads(1)
    one, two = _thumbnails(tmp_path / "1"), _thumbnails(tmp_path / "2")
    assert set(one) == set(SIZES) and one == two


def test_restore_writes_the_photos_at_their_sizes_as_pngs(library, tmp_path):
    thumbs, photos = tmp_path / "thumbs", tmp_path / "photos"
    convert_library([str(library)], thumbs, encoder=ENCODER)
    photo_like(64, 64).save(thumbs / "plain.jpg")  # a JPEG, but no HyperThumb
    summary = restore_library([str(thumbs)], photos, workers=2)
    assert (summary.done, summary.failed) == (4, 1)
    for thumbnail, size in SIZES.items():
        assert Image.open(photos / Path(thumbnail).with_suffix(".png")).size == size
    rows = _rows(photos / RESTORE_MANIFEST_NAME, thumbs)
    assert rows["plain.jpg"]["status"] == "failed" and "no HyperThumb marker" in rows["plain.jpg"]["error"]
    assert rows["a.jpg"]["model"] == ENCODER and rows["a.jpg"]["target_bpp"] is None
    converted = _rows(thumbs / MANIFEST_NAME, library)
    assert rows["a.jpg"]["bpp"] == pytest.approx(converted["a.png"]["bpp"])


def test_restore_takes_the_decoder_asked_for(library, tmp_path):
    thumbs = tmp_path / "thumbs"
    convert_library([str(library)], thumbs, encoder="rdbunet")
    fast = restore_library([str(thumbs)], tmp_path / "fast", decoder="fast")
    assert fast.failed == 0 and _rows(fast.manifest, thumbs)["a.jpg"]["model"] == "rdbunet-fast"
    sharp = restore_library([str(thumbs)], tmp_path / "sharp", decoder="sharp")
    assert sharp.failed == 0 and _rows(sharp.manifest, thumbs)["a.jpg"]["model"] == "rdbunet-sharp"
    lite = tmp_path / "lite"
    convert_library([str(library)], lite, encoder="rdbunet-lite")
    refused = restore_library([str(lite)], tmp_path / "lite-sharp", decoder="sharp")  # a lite model has none
    assert refused.done == 0 and all("no sharp decoder" in row["error"]
                                     for row in _rows(refused.manifest, lite).values())


def test_file_urls_and_globs_keep_paths_relative_to_what_named_them(library, tmp_path):
    out = tmp_path / "thumbs"
    summary = convert_library([f"file://{library}/2024", f"{library}/*.png"], out, encoder=ENCODER)
    assert set(_thumbnails(out)) == {"b.jpg", "summer/c.jpg", "phone.jpg", "a.jpg"}
    assert summary.failed == 1 and set(_rows(summary.manifest, library)) >= {"a.png", "2024/b.jpg"}


def test_two_photos_for_one_thumbnail_path_the_second_fails_and_the_run_goes_on(tmp_path):
    photo_like(96, 64, seed=1).save(tmp_path / "x.png")
    photo_like(96, 64, seed=2).save(tmp_path / "x.webp")
    summary = convert_library([str(tmp_path)], tmp_path / "out", encoder=ENCODER)
    rows = _rows(summary.manifest, tmp_path)
    assert rows["x.png"]["status"] == "done"
    assert rows["x.webp"]["error"] == f"its output x.jpg is taken by {tmp_path / 'x.png'}"


def test_the_output_folder_inside_the_library_is_not_read_as_photos(library):
    assert convert_library([str(library)], library / "thumbs", encoder=ENCODER).done == 4
    assert convert_library([str(library)], library / "thumbs", encoder=ENCODER).skipped == 4


def test_heic_comes_through_the_one_door_upright_and_checked(tmp_path):
    halves = np.zeros((64, 96, 3), np.uint8)
    halves[:, :48] = (220, 30, 30)
    halves[:, 48:] = (30, 30, 220)
    exif = Image.Exif()
    exif[0x0112] = 6  # turned a quarter clockwise to view
    _save_heic(Image.fromarray(halves), tmp_path / "photo.heic", orientation=6)
    Image.fromarray(halves).save(tmp_path / "photo.jpg", quality=95, exif=exif.tobytes())
    heic, jpeg = (np.asarray(load_image(tmp_path / f"photo.{kind}"), np.float32) for kind in ("heic", "jpg"))
    assert heic.shape == jpeg.shape == (96, 64, 3)
    assert np.abs(heic - jpeg).mean() < 8  # the same picture, the same way up
    assert sorted(probe_image(tmp_path / "photo.heic")) == [64, 96]
    assert load_image((tmp_path / "photo.heic").read_bytes()).size == (64, 96)
    _save_heic(photo_like(40, 24), tmp_path / "tiny.heic")
    with pytest.raises(ImageSizeError, match="at least"):
        load_image(tmp_path / "tiny.heic")
    with pytest.raises(ImageSizeError, match="over the limit"):
        probe_image(tmp_path / "photo.heic", max_pixels=1000)


@pytest.mark.parametrize("arguments, message", [
    (["missing"], "no such file or folder"),
    (["empty"], "no .bmp, .heic, .heif, .jpeg, .jpg, .png, .tif, .tiff, .webp files in"),
    (["library", "--out", "library/a.png/thumbs"], "cannot write into"),
    (["library", "--workers", "0"], "workers must be at least 1"),
    (["unknown://bucket/photos"], "Protocol not known"),
])
def test_a_wrong_command_says_why_in_one_line(library, tmp_path, monkeypatch, capsys, arguments, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no photos here")
    command = ["convert", *arguments] + ([] if "--out" in arguments else ["--out", "thumbs"])
    assert main(command) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error and error.count("\n") == 1


@pytest.mark.cli
def test_the_shipped_lite_model_converts_and_restores_through_the_command_line(tmp_path):
    """Two crops of a real photo: each thumbnail near its target, each photo restored better than the
    bicubic upscale of its thumbnail (by 0.77 and 0.54 dB when this test was written)."""
    library, thumbs, photos = tmp_path / "library", tmp_path / "thumbs", tmp_path / "photos"
    (library / "trip").mkdir(parents=True)
    example = Image.open(EXAMPLE).convert("RGB")
    originals = {"one.png": example.crop((400, 200, 656, 392)), "trip/two.png": example.crop((800, 400, 992, 560))}
    for name, photo in originals.items():
        photo.save(library / name)
    for command in (["convert", str(library), "--out", str(thumbs), "--encoder", ENCODER, "--bpp", "0.3",
                     "--workers", "2"], ["restore", str(thumbs), "--out", str(photos)]):
        done = subprocess.run([sys.executable, "-m", "hyperthumb", *command], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("2 ") and "0 failed" in done.stdout

    def psnr(image: Image.Image, reference: Image.Image) -> float:
        error = np.asarray(image, np.float64) - np.asarray(reference, np.float64)
        return 10 * np.log10(255 ** 2 / np.mean(error ** 2))

    rows = _rows(thumbs / MANIFEST_NAME, library)
    for name, photo in originals.items():
        assert rows[name]["bpp"] == pytest.approx(0.3, rel=0.05)
        thumbnail = Image.open(thumbs / rows[name]["output"]).convert("RGB")
        restored = Image.open(photos / Path(name).with_suffix(".png"))
        assert psnr(restored, photo) > psnr(thumbnail.resize(photo.size, Image.BICUBIC), photo) + 0.25
