"""The codec core: the real file, the marker, the differentiable JPEG, gradients, target bpp."""
from __future__ import annotations

import io
import math
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import jpeglib
import numpy as np
import pytest
import torch
from PIL import Image

from hyperthumb.codec.image_io import to_tensor
from hyperthumb.codec.runtime import Runtime
from hyperthumb.codec.thumbnail_codec import COEFFICIENT_SOURCES, HyperThumbCodec
from hyperthumb.errors import InvalidThumbnailError
from hyperthumb.evaluation.metrics import psnr
from hyperthumb.jpeg.file import read_thumbnail
from hyperthumb.jpeg.marker import find_marker, with_frame_size
from hyperthumb.models import differentiable_jpeg
from hyperthumb.models.model import QuantizedThumbnail
from hyperthumb.models.pixels import pad_to_multiple
from tests.conftest import photo_like, small_model
from tests.test_robustness import with_marker
from tools.golden import centre_crop, fp32_codec


def test_round_trip_keeps_odd_size(small_codec, odd_photo):
    thumb = small_codec.encode(odd_photo, target_bpp=0.3)
    assert thumb.image.size == (130, 98)  # ceil(517 / 4) x ceil(389 / 4): no padding shown
    restored = small_codec.decode(thumb.jpeg)
    assert restored.size == odd_photo.size


@pytest.mark.parametrize("decode_tile", [None, 256], ids=["whole", "tiled"])
def test_decode_tensor_holds_the_decoded_photos_pixels(odd_photo, decode_tile):
    """`decode_tensor` (what a GPU pipeline takes) and `decode` (a PIL image) give the same pixels."""
    codec = HyperThumbCodec(small_model("rdbunet", seed=3), name="rdbunet", halo=64, decode_tile=decode_tile)
    thumb = codec.encode(odd_photo, target_bpp=0.3)
    pixels = codec.decode_tensor(thumb.jpeg)
    assert pixels.dtype == torch.uint8 and pixels.shape == (3, odd_photo.height, odd_photo.width)
    assert np.array_equal(pixels.permute(1, 2, 0).numpy(), np.asarray(codec.decode(thumb.jpeg)))


def test_decode_stream_restores_each_file_in_order_and_stops_at_a_bad_one():
    """The streaming decode (parsing ahead in threads) gives `decode_tensor`'s pixels, file by file."""
    codec = HyperThumbCodec(small_model("rdbunet", seed=4), name="rdbunet")
    files = [codec.encode(photo_like(96 + 8 * i, 64, seed=i), target_bpp=0.3).jpeg for i in range(5)]
    restored = list(codec.decode_stream(iter(files), workers=2))  # more files than are parsed ahead
    assert len(restored) == len(files)
    for jpeg, pixels in zip(files, restored):
        assert torch.equal(pixels, codec.decode_tensor(jpeg))
    stream = codec.decode_stream([files[0], b"not a jpeg", files[1]], workers=2)
    assert torch.equal(next(stream), restored[0])
    with pytest.raises(InvalidThumbnailError, match="not a JPEG"):
        next(stream)


def test_files_read_and_written_from_many_threads_at_once():
    """jpeglib's `read_dct` crashed the process (bus error) when two threads read at once, as
    `decode_stream`'s workers do: reads now bypass its globals and writes take turns, and every
    thread still gets its own file's contents."""
    codec = HyperThumbCodec(small_model("rdbunet", seed=5), name="rdbunet")
    photos = [photo_like(128, 96, seed=i) for i in range(4)]
    files = [codec.encode(photo, target_bpp=0.3).jpeg for photo in photos]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(10):
            parsed = list(pool.map(read_thumbnail, files * 4))
            assert list(pool.map(lambda photo: codec.encode(photo, target_bpp=0.3).jpeg, photos)) == files
            for jpeg, thumbnail in zip(files * 4, parsed):
                assert np.array_equal(thumbnail.coefficients, read_thumbnail(jpeg).coefficients)


def test_coefficients_read_as_jpeglib_reads_them(small_codec, odd_photo, tmp_path):
    """`read_thumbnail` calls jpeglib's C readers directly; its public reader is the reference."""
    path = tmp_path / "thumb.jpg"
    path.write_bytes(small_codec.encode(odd_photo, target_bpp=0.4).jpeg)
    parsed, reference = read_thumbnail(path.read_bytes()), jpeglib.read_dct(str(path))
    assert np.array_equal(parsed.coefficients, np.stack([reference.Y, reference.Cb, reference.Cr]))
    assert np.array_equal(parsed.luma_table, reference.qt[reference.quant_tbl_no[0]])
    assert np.array_equal(parsed.chroma_table, reference.qt[reference.quant_tbl_no[1]])


def test_file_is_baseline_jpeg_with_predicted_tables(small_codec, odd_photo):
    thumb = small_codec.encode(odd_photo, target_bpp=0.25)
    image = Image.open(io.BytesIO(thumb.jpeg))
    assert image.format == "JPEG" and image.mode == "RGB"
    assert image.info.get("progressive") is None
    assert image.layer == [(0, 1, 1, 0), (1, 1, 1, 1), (2, 1, 1, 1)]  # 4:4:4, luma table 0, chroma 1
    assert list(image.quantization[0]) == thumb.luma_table.flatten().tolist()
    assert list(image.quantization[1]) == thumb.chroma_table.flatten().tolist()
    assert 1 <= thumb.luma_table.min() and thumb.chroma_table.max() <= 255


def test_marker_survives(small_codec, odd_photo):
    marker = find_marker(small_codec.encode(odd_photo, target_bpp=0.2).jpeg)
    assert (marker.encoder, marker.scale, marker.width, marker.height) == ("rdbunet", 4, 517, 389)


@pytest.mark.skipif(shutil.which("djpeg") is None, reason="djpeg (libjpeg-turbo-progs) not installed")
def test_other_decoders_open_the_file_at_its_exact_size(small_codec, tmp_path):
    """A 1037x643 photo's thumbnail is 260x161 (ceil of a quarter) to Pillow and to djpeg alike,
    with the same pixels: the padding the decoder reads stays in the file's blocks, out of sight."""
    path = tmp_path / "thumb.jpg"
    small_codec.encode(photo_like(1037, 643, seed=3), target_bpp=0.2).save(path)
    ppm = subprocess.run(["djpeg", str(path)], capture_output=True, check=True).stdout
    theirs = Image.open(io.BytesIO(ppm))
    ours = Image.open(path)
    assert ours.size == theirs.size == (260, 161)
    assert np.array_equal(np.asarray(ours.convert("RGB")), np.asarray(theirs))


@pytest.mark.parametrize("source", COEFFICIENT_SOURCES)
def test_a_version_1_file_stating_the_padded_size_restores_the_same_photo(small_codec, odd_photo, source):
    """Files made before the exact size (format 1) state the padded grid; they decode as before, on
    both routes (the pixel route decodes the whole grid of an exact-size file)."""
    jpeg = small_codec.encode(odd_photo, target_bpp=0.3).jpeg
    marker = find_marker(jpeg)
    version_1 = with_frame_size(with_marker(jpeg, v=1), *marker.padded_size)
    assert Image.open(io.BytesIO(version_1)).size == (136, 104)
    codec = HyperThumbCodec(small_codec.model, "rdbunet", coefficients_from=source)
    assert np.array_equal(np.asarray(codec.decode(version_1)), np.asarray(codec.decode(jpeg)))


def test_differentiable_jpeg_matches_the_real_decoder(small_codec, odd_photo):
    """The simulation that training sees equals what a JPEG decoder shows, within one gray level."""
    thumb = small_codec.encode(odd_photo, target_bpp=0.3)
    parsed = read_thumbnail(thumb.jpeg)
    tables = torch.from_numpy(np.stack([parsed.luma_table, parsed.chroma_table]).astype(np.float32))
    hr = pad_to_multiple(to_tensor(odd_photo), 32)
    with torch.no_grad():
        coefficients = differentiable_jpeg.image_to_coefficients(small_codec.model.encoder(hr))
        component = differentiable_jpeg.component_tables(tables[0].reshape(1, 64), tables[1].reshape(1, 64))
        simulated = differentiable_jpeg.coefficients_to_image(differentiable_jpeg.quantize(coefficients, component, True) * component)
    pillow = np.asarray(Image.open(io.BytesIO(thumb.jpeg)).convert("RGB"), dtype=np.float64)
    ours = simulated[0].permute(1, 2, 0).numpy()[:pillow.shape[0], :pillow.shape[1]] * 255.0  # the stated size
    assert np.abs(ours - pillow).mean() < 1.0
    assert np.array_equal(differentiable_jpeg.quantize(coefficients, component, False)[0].numpy().astype(np.int16),
                          parsed.coefficients)


def test_the_file_holds_what_the_model_compresses(odd_photo):
    """The codec adds only the file: its integers are `model.compress`'s, its restoration `model.decompress`'s."""
    codec = HyperThumbCodec(small_model("rdbunet", seed=2), name="rdbunet", runtime=Runtime())  # fp32 networks
    thumb = codec.encode(odd_photo, target_bpp=None, rate_t=0.5)
    parsed = read_thumbnail(thumb.jpeg)
    with torch.no_grad():
        quantized = codec.model.compress(pad_to_multiple(to_tensor(odd_photo), 32), torch.tensor([0.5]))
        restored = codec.model.decompress(quantized)[1][0].permute(1, 2, 0).numpy()
    assert np.array_equal(quantized.coefficients[0].numpy(), parsed.coefficients)
    assert np.array_equal(quantized.luma_table.reshape(8, 8).numpy(), parsed.luma_table)
    assert np.array_equal(quantized.chroma_table.reshape(8, 8).numpy(), parsed.chroma_table)
    expected = np.rint(np.clip(restored[:odd_photo.height, :odd_photo.width], 0, 1) * 255)
    assert np.array_equal(np.asarray(codec.decode(thumb.jpeg)), expected)


def test_gradients_reach_encoder_from_hr_loss_and_qpm_from_rate():
    model = small_model("rdbunet")
    hr = to_tensor(photo_like(64, 64, seed=3))
    result = model(hr, torch.zeros(1))
    (result.restored - hr).abs().mean().backward(retain_graph=True)
    assert model.encoder.head.weight.grad.abs().sum() > 0
    model.zero_grad()
    result.bits.sum().backward()
    qpm_grads = [p.grad for p in model.table_predictor.parameters()]
    assert all(g is not None for g in qpm_grads) and sum(g.abs().sum() for g in qpm_grads) > 0


@pytest.mark.parametrize("encoder", ["rdbunet", "transformer"])
def test_both_encoders_share_the_contract(encoder):
    model = small_model(encoder)
    codec = HyperThumbCodec(model, name=encoder)
    photo = photo_like(200, 136, seed=1)
    thumb = codec.encode(photo, target_bpp=0.3)
    assert codec.decode(thumb.jpeg).size == photo.size


def test_the_stem_is_a_conv_over_the_unshuffled_photo():
    """UnshuffledConv runs as one strided conv over the HR; its weights keep their meaning."""
    from hyperthumb.models.encoders.stem import UnshuffledConv

    torch.manual_seed(0)
    stem, hr = UnshuffledConv(4, 16), torch.rand(2, 3, 64, 96)
    reference = torch.nn.functional.conv2d(torch.nn.functional.pixel_unshuffle(hr, 4), stem.weight, stem.bias,
                                           padding=1)
    assert torch.allclose(stem(hr), reference, atol=1e-5)


def test_the_pixel_route_restores_within_0_05_db_of_the_files_integers():
    """The route a GPU takes (nvJPEG's pixels, transformed and quantized again), run here with
    libjpeg-turbo's pixels: the same photo within 0.05 dB at low and high rates, whole or in tiles."""
    photo, model = centre_crop(256), fp32_codec("rdbunet-lite").model
    codecs = {(source, tile): HyperThumbCodec(model, "rdbunet-lite", runtime=Runtime(), coefficients_from=source,
                                              halo=32, decode_tile=tile)
              for source in COEFFICIENT_SOURCES for tile in (None, 128)}
    for target in (0.1, 0.8):
        thumb = codecs["file", None].encode(photo, target_bpp=target)
        restored = {key: codec.decode(thumb.jpeg) for key, codec in codecs.items()}
        assert abs(psnr(restored["pixels", None], photo) - psnr(restored["file", None], photo)) <= 0.05, target
        assert psnr(restored["pixels", 128], restored["file", 128]) > 45, target
    with pytest.raises(ValueError, match="coefficients_from"):
        HyperThumbCodec(model, coefficients_from="jpeg")


def test_target_bpp_is_met_by_the_shipped_model():
    import hyperthumb

    codec = hyperthumb.load_model("rdbunet", device="cpu")
    photo = photo_like(384, 256, seed=2)
    for target in (0.15, 0.3, 0.5):
        thumb = codec.encode(photo, target_bpp=target)
        assert abs(len(thumb.jpeg) * 8 / (384 * 256) - target) <= 0.05 * target, (target, thumb.bpp)
        assert thumb.reached_target


def _sizes(bpp_at, tables_at):
    """A stand-in for the codec's sizing of a try at rate setting t, counting the tries."""
    tries = []

    def sized(t):
        tries.append(t)
        table = torch.full((1, 64), tables_at(t), dtype=torch.int16)
        return QuantizedThumbnail(torch.zeros(1, 3, 1, 1, 8, 8), table, table), bpp_at(t)
    return sized, tries


def test_search_lands_within_a_percent_in_a_few_tries():
    """log(bpp) close to linear in t, as the QPM's tables make it: secant steps land in 3 tries."""
    sized, tries = _sizes(lambda t: 0.3 * math.exp(-0.9 * t + 0.05 * math.sin(3 * t)), lambda t: 40)
    t, quantized = HyperThumbCodec._search(sized, 0.45)
    assert abs(0.3 * math.exp(-0.9 * t + 0.05 * math.sin(3 * t)) - 0.45) <= 0.01 * 0.45
    assert len(tries) <= 4 and quantized is not None


def test_search_stops_where_no_table_can_grow_the_file():
    """A target above the largest file (every table at 1) ends the search at that file."""
    largest = 0.8
    sized, tries = _sizes(lambda t: min(largest, 0.3 * math.exp(-t)),
                          lambda t: 1 if 0.3 * math.exp(-t) >= largest else 9)
    t, _ = HyperThumbCodec._search(sized, 1.5)
    assert 0.3 * math.exp(-t) >= largest and len(tries) <= 6


@pytest.mark.cli
@pytest.mark.parametrize("encoder", ["transformer", "rdbunet-lite"])
def test_cli_round_trip(tmp_path, encoder):
    source = tmp_path / "photo.png"
    photo_like(300, 200, seed=4).save(source)
    thumb, restored = tmp_path / "thumb.jpg", tmp_path / "restored.png"
    for args in (["encode", str(source), "-o", str(thumb), "--encoder", encoder, "--bpp", "0.3"],
                 ["decode", str(thumb), "-o", str(restored)]):
        done = subprocess.run([sys.executable, "-m", "hyperthumb", *args], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert find_marker(thumb.read_bytes()).encoder == encoder  # decode found the model the file names
    assert Image.open(restored).size == (300, 200)


def test_decode_reads_the_named_checkpoint_folder(tmp_path):
    """`decode --weights`: a checkpoint outside weights/, as an installed package without a checkout needs."""
    from hyperthumb.cli import main

    model = small_model("rdbunet", seed=7)
    model.save_pretrained(tmp_path / "rdbunet")
    codec = HyperThumbCodec(model, name="rdbunet")
    (tmp_path / "thumb.jpg").write_bytes(codec.encode(photo_like(96, 64), target_bpp=0.5).jpeg)
    assert main(["decode", str(tmp_path / "thumb.jpg"), "-o", str(tmp_path / "restored.png"),
                 "--weights", str(tmp_path / "rdbunet"), "--device", "cpu"]) == 0
    expected = codec.decode(tmp_path / "thumb.jpg")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "restored.png")), np.asarray(expected))


def test_decoder_stays_small():
    from hyperthumb.models.model import parameter_counts

    assert parameter_counts(small_model())["decoder"] < 600_000


_REUSE_SCRIPT = """
import ctypes, resource, sys, torch
from hyperthumb.codec.runtime import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
else:  # what glibc does with large buffers: map each afresh and hand it back when freed
    ctypes.CDLL("libc.so.6").mallopt(-3, 2**20)  # M_MMAP_THRESHOLD
def churn():  # eight 16 MB buffers, as a layer's activations, all freed
    buffers = [torch.ones(4 * 2**20) for _ in range(8)]
    del buffers
churn(), churn()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
churn()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_kept_memory_is_reused_without_page_faults():
    """A buffer handed back to the system is faulted in afresh, page by page, when allocated
    again; kept (`keep_freed_memory`), it is reused."""
    faults = {mode: int(subprocess.run([sys.executable, "-c", _REUSE_SCRIPT, mode], capture_output=True,
                                       text=True, check=True).stdout)
              for mode in ("handed back", "keep")}
    assert faults["handed back"] > 24_000 and faults["keep"] < 8_000, faults  # 128 MB are 32,768 pages
