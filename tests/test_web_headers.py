"""web/hyperthumb.js's reading of a thumbnail's headers, run by Node on real files: the marker and the
tables the Python reader finds, and one sentence for each file it must refuse. (The restore itself
runs in Chromium: tests/test_web_restore.py.)"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hyperthumb.jpeg.file import read_thumbnail_header
from hyperthumb.jpeg.marker import find_marker
from tests.conftest import photo_like

MODULE = Path(__file__).resolve().parents[1] / "web" / "hyperthumb.js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")

_READ = """
import { readThumbnail } from %s;
import { readFileSync } from "node:fs";
const out = {};
for (const path of process.argv.slice(1)) {
  try {
    const header = readThumbnail(readFileSync(path));
    out[path] = { marker: header.marker, blocks: header.blocks, luma: [...header.luma], chroma: [...header.chroma] };
  } catch (error) {
    out[path] = { error: error.name, message: error.message };
  }
}
console.log(JSON.stringify(out));
"""


def read_in_node(*paths: Path) -> dict:
    script = _READ % json.dumps(MODULE.as_uri())
    done = subprocess.run([NODE, "--input-type=module", "-e", script, *map(str, paths)],
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def thumbnail(tmp_path_factory, small_codec) -> Path:
    path = tmp_path_factory.mktemp("web") / "thumb.jpg"
    small_codec.encode(photo_like(200, 136, seed=3), target_bpp=0.5).save(path)
    return path


def test_the_module_reads_the_marker_and_tables_the_python_reader_does(thumbnail):
    jpeg = thumbnail.read_bytes()
    read = read_in_node(thumbnail)[str(thumbnail)]
    marker, header = find_marker(jpeg), read_thumbnail_header(jpeg)
    assert read["marker"] == {"version": marker.version, "model": marker.encoder, "scale": marker.scale,
                              "width": marker.width, "height": marker.height, "encoderId": marker.encoder_id}
    assert read["blocks"] == list(marker.block_grid)
    np.testing.assert_array_equal(read["luma"], np.asarray(header.luma_table).reshape(64))
    np.testing.assert_array_equal(read["chroma"], np.asarray(header.chroma_table).reshape(64))


def test_the_module_refuses_what_is_not_a_whole_hyperthumb_file_with_one_sentence(thumbnail, tmp_path):
    jpeg = thumbnail.read_bytes()
    marker_at = jpeg.index(b"HyperThumb\x00")
    files = {
        "plain": (tmp_path / "plain.jpg", "no HyperThumb marker"),
        "cut": (tmp_path / "cut.jpg", "cut short"),
        "text": (tmp_path / "notes.jpg", "not a JPEG image"),
        "marker": (tmp_path / "marker.jpg", "marker is damaged"),
    }
    photo_like(64, 48).save(files["plain"][0], quality=90)
    files["cut"][0].write_bytes(jpeg[:len(jpeg) * 2 // 3])
    files["text"][0].write_text("not a photo")
    files["marker"][0].write_bytes(jpeg[:marker_at + 11] + b"x" + jpeg[marker_at + 12:])  # its JSON broken
    read = read_in_node(*(path for path, _ in files.values()))
    for path, words in files.values():
        result = read[str(path)]
        assert result.get("error") == "ThumbnailError" and words in result["message"], (path.name, result)
        assert result["message"].endswith(".") and result["message"].count(". ") == 0  # one sentence
