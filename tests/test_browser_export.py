"""The browser's graphs (hyperthumb/release/browser_export.py) restore what PyTorch restores, and the
files the page loads are the ones it should.

Default tier (about 15 s, one small export): a small model's graph, run by onnxruntime, gives the
uint8 pixels its `BrowserDecoder` gives in torch and what the codec's own decode gives from the
file's integers; the page's tiling (hyperthumb.js, emulated here in numpy) agrees with one whole run;
the manifest and its digests (with a stand-in export); the onnxruntime-web files `install_runtime`
places, from a tarball made in the test or the one npm's cache already holds.

Quality tier (about a minute): every shipped checkpoint exported once into a temporary folder and run
the same way, the faithful graphs of rdbunet and transformer on real thumbnails of real photos
against `zoo.decode`, the manifest's encoder identifiers, and a second export that writes nothing.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hyperthumb import zoo
from hyperthumb.cache import cache_dir
from hyperthumb.codec.thumbnail_codec import HyperThumbCodec
from hyperthumb.evaluation.metrics import psnr
from hyperthumb.jpeg.file import read_thumbnail_header
from hyperthumb.jpeg.marker import with_frame_size
from hyperthumb.release import browser_export, web_runtime
from hyperthumb.release.browser_export import HALO_BLOCKS, TILE_BLOCKS, BrowserDecoder, export_for_browser
from tests.conftest import example_crop, photo_like, small_checkpoint_model, small_model

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install '.[engines]')")

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "web" / "package-lock.json"
NPM_CACHE = cache_dir() / "npm"  # before any test points the cache elsewhere
SMALL_TILE_BLOCKS = 8  # forces several tiles on a 768x512 photo (its thumbnail is 24x16 blocks)


# -- What the page does, in numpy --------------------------------------------------------------

def grid_pixels(jpeg: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What hyperthumb.js hands a graph: the thumbnail's RGBA pixels over its whole block grid
    (the frame rewritten to the padded size, decoded by libjpeg-turbo as the browser's is) and the
    two tables in natural order, float32 (64,)."""
    header = read_thumbnail_header(jpeg)
    width, height = header.marker.padded_size
    with Image.open(io.BytesIO(with_frame_size(jpeg, width, height))) as image:
        rgba = np.asarray(image.convert("RGBA"))[None]
    assert rgba.shape == (1, height, width, 4)
    return rgba, *(table.reshape(64).astype(np.float32) for table in (header.luma_table, header.chroma_table))


def session_of(graph) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # the machine is shared; the inputs are small
    source = str(graph) if isinstance(graph, Path) else graph
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def run_graph(session, rgba: np.ndarray, luma: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    (restored,) = session.run(None, {"rgba": np.ascontiguousarray(rgba), "luma_table": luma, "chroma_table": chroma})
    return restored


def run_tiled(session, rgba: np.ndarray, luma: np.ndarray, chroma: np.ndarray, scale: int, size: tuple[int, int],
              tile_blocks: int, halo_blocks: int) -> np.ndarray:
    """hyperthumb.js's `restore` loop: tiles of `tile_blocks` on a grid from the top left, each run with
    `halo_blocks` of context on its inner sides, and only the tile's own part kept (no blending),
    cut to the photo's `size` (width, height). Returns the RGBA photo (H, W, 4)."""
    width, height = size
    rows, columns = rgba.shape[1:3]
    tile, halo = tile_blocks * 8, halo_blocks * 8
    out = np.zeros((height, width, 4), np.uint8)
    for y in range(0, rows, tile):
        for x in range(0, columns, tile):
            y0, x0 = max(y - halo, 0), max(x - halo, 0)
            y1, x1 = min(y + tile + halo, rows), min(x + tile + halo, columns)
            restored = run_graph(session, rgba[:, y0:y1, x0:x1], luma, chroma)[0]
            assert restored.shape == ((y1 - y0) * scale, (x1 - x0) * scale, 4)
            top, bottom = y * scale, min((y + tile) * scale, height)
            left, right = x * scale, min((x + tile) * scale, width)
            out[top:bottom, left:right] = restored[top - y0 * scale:bottom - y0 * scale,
                                                   left - x0 * scale:right - x0 * scale]
    return out


def crop(restored: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A graph's (1, sH, sW, 4) output cut to the photo, RGB."""
    width, height = size
    return restored[0, :height, :width, :3]


def torch_graph(model, rgba: np.ndarray, luma: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return BrowserDecoder(model.eval())(torch.from_numpy(rgba), torch.from_numpy(luma),
                                            torch.from_numpy(chroma)).numpy()


def assert_same_pixels(got: np.ndarray, want: np.ndarray, at_least_db: float, what: str) -> float:
    assert got.shape == want.shape and got.dtype == want.dtype == np.uint8, what
    db = psnr(got[..., :3], want[..., :3])
    assert db >= at_least_db, f"{what}: {db:.2f} dB, {np.abs(got.astype(int) - want).max()} at most"
    if got.shape[-1] == 4:
        assert (got[..., 3] == 255).all(), f"{what}: alpha is not opaque"
    return db


# -- Default tier: a small model's graph ----------------------------------------------------------

def _lively_model(encoder: str = "rdbunet", seed: int = 5):
    """A small model whose zero-initialised output layers get weights, so that its decoder does
    more than resample (a wrong graph would show)."""
    model = small_model(encoder, seed)
    with torch.no_grad():
        model.encoder.head.weight.normal_(0, 0.02)
        model.decoder.upsample[0].weight.normal_(0, 0.02)
    return model.eval()


@pytest.fixture(scope="module")
def small_graph(tmp_path_factory):
    """(model, its codec, its graph's session, a thumbnail of a 768x512 photo-like image, the photo)."""
    model = _lively_model()
    path = tmp_path_factory.mktemp("graph") / "small.onnx"
    browser_export.export_graph(model, path)
    codec = HyperThumbCodec(model, "rdbunet")
    photo = photo_like(768, 512, seed=4)
    thumbnail = codec.encode(photo, target_bpp=None, rate_t=0.0, keep_metadata=False)
    return model, codec, session_of(path), thumbnail.jpeg, photo


def test_small_graph_gives_torchs_pixels(small_graph):
    """Odd block counts (and a tile's shape) through the one export: uint8 in, uint8 out, the same
    pixels torch gives (float32 rounding flips a value by one at most, here and there)."""
    model, _, session, jpeg, _ = small_graph
    rgba, luma, chroma = grid_pixels(jpeg)
    for rows, columns in [(3, 5), (16, 24), (7, 13)]:
        part = rgba[:, :rows * 8, :columns * 8]
        got = run_graph(session, part, luma, chroma)
        want = torch_graph(model, part, luma, chroma)
        assert got.shape == (1, rows * 32, columns * 32, 4)
        assert_same_pixels(got[0], want[0], 55.0, f"{rows}x{columns} blocks")
        assert np.abs(got.astype(int) - want).max() <= 1


def test_small_graph_agrees_with_the_codecs_decode(small_graph):
    """The graph finds the file's integers again from the pixels: its photo is the one the codec
    restores from the integers libjpeg reads, within 0.05 dB of the photo's PSNR."""
    _, codec, session, jpeg, photo = small_graph
    rgba, luma, chroma = grid_pixels(jpeg)
    got = crop(run_graph(session, rgba, luma, chroma), photo.size)
    want = np.asarray(codec.decode(jpeg))
    assert_same_pixels(got, want, 45.0, "graph vs codec")
    assert abs(psnr(got, photo) - psnr(want, photo)) <= 0.05


def test_small_graph_tiles_as_the_page_does(small_graph):
    """The page's tiling (whole blocks, halo of the manifest's size, no blending) gives the whole
    run's photo; a tile of 8 blocks makes 3x2 tiles of the 24x16-block thumbnail."""
    _, _, session, jpeg, photo = small_graph
    rgba, luma, chroma = grid_pixels(jpeg)
    whole = crop(run_graph(session, rgba, luma, chroma), photo.size)
    tiled = run_tiled(session, rgba, luma, chroma, 4, photo.size, SMALL_TILE_BLOCKS, HALO_BLOCKS)
    assert_same_pixels(tiled[..., :3], whole, 50.0, "tiled vs whole")
    # With no halo the seams show: the test would see a wrong halo.
    seamed = run_tiled(session, rgba, luma, chroma, 4, photo.size, SMALL_TILE_BLOCKS, 0)
    assert psnr(seamed[..., :3], whole) < psnr(tiled[..., :3], whole)


# -- Default tier: the manifest, with a stand-in export -----------------------------------------

@pytest.fixture
def stand_in_export(monkeypatch):
    """Small random-weight checkpoints (each built once), and an export that writes the decoder's
    digest instead of a graph; returns (the files exported, the checkpoints built)."""
    exported, models = [], {}

    def load(name, *_, **__):
        if name not in models:
            models[name] = small_checkpoint_model(name)
        return models[name]

    def export(model, path):
        exported.append(path.name)
        path.write_text(browser_export.weights_digest(model.decoder))

    monkeypatch.setattr(zoo, "load_checkpoint", load)
    monkeypatch.setattr(browser_export, "export_graph", export)
    return exported, models


def _assert_manifest(manifest: dict, folder: Path, load) -> None:
    assert manifest == json.loads((folder / browser_export.MANIFEST_NAME).read_text())
    assert manifest["version"] == browser_export.MANIFEST_VERSION
    assert (manifest["tile_blocks"], manifest["halo_blocks"]) == (TILE_BLOCKS, HALO_BLOCKS)
    markers = {zoo.MARKER_OF_CHECKPOINT[c] for c in zoo.CHECKPOINTS}
    assert set(manifest["models"]) == markers
    for marker, entry in manifest["models"].items():
        assert entry["encoder_id"] == load(marker).encoder_id(), marker
        assert entry["scale"] == 4
        kinds = {"full": marker, **{page: zoo.DECODERS_OF.get(marker, {})[kind]
                                    for page, kind in browser_export.PAGE_DECODERS.items()
                                    if kind in zoo.DECODERS_OF.get(marker, {})}}
        assert {page: graph["file"] for page, graph in entry["decoders"].items()} == \
            {page: f"{checkpoint}.onnx" for page, checkpoint in kinds.items()}, marker
        for page, graph in entry["decoders"].items():
            assert (folder / graph["file"]).stat().st_size == graph["bytes"]
            # Every decoder of a thumbnail model was trained against that model's encoder.
            assert load(kinds[page]).encoder_id() == entry["encoder_id"], (marker, page)
    files = {graph["file"] for entry in manifest["models"].values() for graph in entry["decoders"].values()}
    assert files == {f"{c}.onnx" for c in zoo.CHECKPOINTS}


def test_manifest_and_digests_with_a_stand_in_export(stand_in_export, tmp_path):
    exported, models = stand_in_export
    manifest = export_for_browser(tmp_path)
    _assert_manifest(manifest, tmp_path, zoo.load_checkpoint)
    assert sorted(exported) == sorted(f"{c}.onnx" for c in zoo.CHECKPOINTS)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*exported, browser_export.MANIFEST_NAME])

    exported.clear()
    messages = []
    assert export_for_browser(tmp_path, progress=messages.append) == manifest
    assert exported == [] and messages == []

    with torch.no_grad():  # new weights for one checkpoint: only its graph is made again
        models["rdbunet-sharp"].decoder.upsample[0].weight.add_(0.5)
    (tmp_path / "transformer-lite.onnx").unlink()  # a missing graph is made again
    again = export_for_browser(tmp_path)
    assert sorted(exported) == ["rdbunet-sharp.onnx", "transformer-lite.onnx"]
    assert again["models"]["rdbunet"]["decoders"]["sharp"]["digest"] != \
        manifest["models"]["rdbunet"]["decoders"]["sharp"]["digest"]

    exported.clear()
    assert export_for_browser(tmp_path, ["transformer"])["models"].keys() == {"transformer"}
    assert exported == []
    with pytest.raises(ValueError, match="no such thumbnail model"):
        export_for_browser(tmp_path, ["rdbunet-fast"])  # a decoder, not a thumbnail model


# -- Default tier: onnxruntime-web's files -------------------------------------------------------

def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def _lock(folder: Path, version: str, integrity: str) -> Path:
    lock = folder / "package-lock.json"
    lock.write_text(json.dumps({"packages": {f"node_modules/{web_runtime.PACKAGE}": {
        "version": version, "integrity": integrity}}}))
    return lock


def _fake_tarball() -> bytes:
    """The package's layout with every page file, and files the page does not load."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        files = {f"package/dist/{name}": f"// {name}\n".encode() for name in web_runtime.PAGE_FILES}
        files["package/dist/ort.all.min.mjs"] = b"// not loaded by the page\n"
        files["package/dist/ort-wasm-simd-threaded.jsep.wasm"] = b"\0asm not loaded"
        files["package/package.json"] = json.dumps({"name": "onnxruntime-web", "license": "MIT"}).encode()
        files["package/README.md"] = b"readme\n"
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """A cache folder of the test's, and a registry that answers with `served[0]` (counting asks)."""
    monkeypatch.setenv("HYPERTHUMB_CACHE", str(tmp_path / "cache"))
    served, asked = [b""], []

    class Response(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *_):
            return False

    def urlopen(url, timeout=None):
        asked.append(url)
        return Response(served[0])

    monkeypatch.setattr(web_runtime.urllib.request, "urlopen", urlopen)
    return served, asked


def _placed(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_install_runtime_places_the_page_files_only(offline, tmp_path):
    served, asked = offline
    served[0] = tarball = _fake_tarball()
    lock = _lock(tmp_path, "9.9.9", _integrity(tarball))
    folder = tmp_path / "site" / "vendor" / "onnxruntime-web"
    assert web_runtime.install_runtime(folder, lock) == folder
    # The page's files, the licence, and the stamp that lets a second call keep them.
    assert _placed(folder) == {*web_runtime.PAGE_FILES, "LICENSE.txt", web_runtime._STAMP}
    assert (folder / "ort.wasm.min.mjs").read_text() == "// ort.wasm.min.mjs\n"
    assert "MIT licence" in (folder / "LICENSE.txt").read_text()
    assert folder.stat().st_mode & 0o755 == 0o755, "a web server running as another user could not read it"
    assert len(asked) == 1 and asked[0].endswith("/onnxruntime-web/-/onnxruntime-web-9.9.9.tgz")
    cached = tmp_path / "cache" / "npm" / "onnxruntime-web-9.9.9.tgz"
    assert cached.read_bytes() == tarball

    served[0] = b"the registry is not asked again"
    assert web_runtime.install_runtime(folder, lock) == folder and len(asked) == 1
    (folder / web_runtime.PAGE_FILES[0]).unlink()  # a missing file: placed again, from the cache
    web_runtime.install_runtime(folder, lock)
    assert _placed(folder) == {*web_runtime.PAGE_FILES, "LICENSE.txt", web_runtime._STAMP} and len(asked) == 1
    assert sorted(p.name for p in folder.parent.iterdir()) == ["onnxruntime-web"], "a staging folder was left"


def test_install_runtime_refuses_a_tarball_that_does_not_match(offline, tmp_path):
    served, asked = offline
    tarball = _fake_tarball()
    lock = _lock(tmp_path, "9.9.9", _integrity(tarball))
    cached = tmp_path / "cache" / "npm" / "onnxruntime-web-9.9.9.tgz"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(tarball[:-10] + b"tampered!!")  # a damaged cache is not used...
    served[0] = tarball[:-1] + bytes([tarball[-1] ^ 1])  # ...and neither is a registry's wrong file
    folder = tmp_path / "site" / "onnxruntime-web"
    with pytest.raises(RuntimeError, match="does not match the integrity"):
        web_runtime.install_runtime(folder, lock)
    assert len(asked) == 1 and not folder.exists()
    assert cached.read_bytes().endswith(b"tampered!!"), "a file that does not match was cached"

    served[0] = tarball  # the right file: placed, and cached in place of the damaged one
    web_runtime.install_runtime(folder, lock)
    assert cached.read_bytes() == tarball and (folder / "ort.webgpu.min.mjs").is_file()


def test_install_runtime_from_npms_cached_tarball(offline, tmp_path):
    """The real package at the version web/package-lock.json pins, from the tarball export-web
    fetched before (never downloaded here): the six files the page loads."""
    _, asked = offline
    version, _ = web_runtime.pinned(LOCK)
    real = NPM_CACHE / f"onnxruntime-web-{version}.tgz"
    if not real.is_file():
        pytest.skip(f"{real} is not cached (python -m hyperthumb export-web fetches it)")
    cache = tmp_path / "cache" / "npm"
    cache.mkdir(parents=True)
    (cache / real.name).symlink_to(real)
    folder = web_runtime.install_runtime(tmp_path / "onnxruntime-web", LOCK)
    assert asked == [], "the registry was asked although the cache holds the tarball"
    assert _placed(folder) == {*web_runtime.PAGE_FILES, "LICENSE.txt", web_runtime._STAMP}
    assert (folder / "ort-wasm-simd-threaded.wasm").read_bytes()[:4] == b"\0asm"
    assert f"onnxruntime-web {version}" in (folder / "LICENSE.txt").read_text()


# -- Quality tier: every shipped checkpoint ------------------------------------------------------

@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Every shipped checkpoint's graph and the manifest, exported once (about a minute)."""
    folder = tmp_path_factory.mktemp("models")
    messages = []
    manifest = export_for_browser(folder, progress=messages.append)
    assert sorted(messages) == sorted(f"exporting {c}.onnx" for c in zoo.CHECKPOINTS)
    return folder, manifest


@pytest.fixture(scope="module")
def real_thumbnails(tmp_path_factory):
    """Real thumbnails at 0.3 bpp of 768x512 crops of the two example photos: model -> (the photo's
    path, the file's bytes)."""
    folder = tmp_path_factory.mktemp("photos")
    photos = {"rdbunet": example_crop("Bridge_by_Sander_Klootwijk.jpg", 768, 512, folder),
              "transformer": example_crop("plasma_Path.jpg", 768, 512, folder)}
    return {model: (photo, zoo.load_model(model).encode(photo, target_bpp=0.3).jpeg) for model, photo in photos.items()}


@pytest.mark.quality
def test_manifest_names_every_model_and_its_encoder(exported):
    folder, manifest = exported
    loaded = {}
    _assert_manifest(manifest, folder, lambda name: loaded.setdefault(name, zoo.load_checkpoint(name)))


@pytest.mark.quality
@pytest.mark.parametrize("checkpoint", zoo.CHECKPOINTS)
def test_every_graph_gives_torchs_pixels(exported, real_thumbnails, checkpoint):
    """Each graph on a real thumbnail's pixels (12x19 blocks of it, away from its edges) against its
    checkpoint's `BrowserDecoder` in torch."""
    folder, _ = exported
    _, jpeg = real_thumbnails["transformer" if checkpoint.startswith("transformer") else "rdbunet"]
    rgba, luma, chroma = grid_pixels(jpeg)
    part = rgba[:, 16:16 + 12 * 8, 24:24 + 19 * 8]
    assert part.shape == (1, 96, 152, 4)
    got = run_graph(session_of(folder / f"{checkpoint}.onnx"), part, luma, chroma)
    want = torch_graph(zoo.load_checkpoint(checkpoint), part, luma, chroma)
    assert_same_pixels(got[0], want[0], 50.0, checkpoint)


@pytest.mark.quality
@pytest.mark.parametrize("model", ["rdbunet", "transformer"])
def test_faithful_graph_restores_what_python_restores(exported, real_thumbnails, model):
    """A real thumbnail (the encoder's own file), its pixels decoded over the padded grid as the
    browser decodes them, through the exported graph: the photo `zoo.decode` restores from the
    file's integers, >= 45 dB between the two, and the same PSNR against the original within 0.05 dB."""
    folder, manifest = exported
    photo_path, jpeg = real_thumbnails[model]
    graph = folder / manifest["models"][model]["decoders"]["full"]["file"]
    with Image.open(photo_path) as photo:
        original = np.asarray(photo.convert("RGB"))
    rgba, luma, chroma = grid_pixels(jpeg)
    got = crop(run_graph(session_of(graph), rgba, luma, chroma), (original.shape[1], original.shape[0]))
    want = np.asarray(zoo.decode(jpeg, decoder="faithful"))
    assert_same_pixels(got, want, 45.0, f"{model}: graph vs zoo.decode")
    assert abs(psnr(got, original) - psnr(want, original)) <= 0.05


@pytest.mark.quality
def test_page_tiling_agrees_with_one_whole_run(exported, real_thumbnails):
    """The real rdbunet graph, tiled as the page tiles with the manifest's halo and a small tile
    (3x2 tiles over the 24x16 blocks of a 768x512 photo), against one run over the whole grid: >= 50 dB."""
    folder, manifest = exported
    _, jpeg = real_thumbnails["rdbunet"]
    session = session_of(folder / manifest["models"]["rdbunet"]["decoders"]["full"]["file"])
    rgba, luma, chroma = grid_pixels(jpeg)
    marker = read_thumbnail_header(jpeg).marker
    size = (marker.width, marker.height)
    assert rgba.shape[1:3] == (128, 192)
    whole = crop(run_graph(session, rgba, luma, chroma), size)
    tiled = run_tiled(session, rgba, luma, chroma, manifest["models"]["rdbunet"]["scale"], size,
                      SMALL_TILE_BLOCKS, manifest["halo_blocks"])
    assert_same_pixels(tiled[..., :3], whole, 50.0, "tiled vs whole")


@pytest.mark.quality
def test_a_second_export_writes_nothing(exported):
    folder, manifest = exported
    before = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.onnx")}
    messages = []
    assert export_for_browser(folder, progress=messages.append) == manifest
    assert messages == [], "a graph whose weights did not change was exported again"
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.onnx")} == before
    assert sorted(os.listdir(folder)) == sorted([*before, browser_export.MANIFEST_NAME])
