"""A thumbnail names the exact encoder that made it: every decoder trained against that encoder
reads it, a checkpoint with another encoder refuses it with a sentence, and files written before
the identifier still decode."""
from __future__ import annotations

import json
import struct
from dataclasses import replace

import pyarrow.parquet as pq
import pytest

from hyperthumb.codec.thumbnail_codec import HyperThumbCodec
from hyperthumb.errors import EncoderMismatchError, InvalidThumbnailError
from hyperthumb.jpeg.marker import _MARKER_ID, find_marker
from hyperthumb.library import convert_library, restore_library
from hyperthumb.zoo import ModelZoo, use_zoo
from tests.conftest import photo_like, small_checkpoint_loader, small_model
from tests.test_robustness import with_marker


def without_identifier(jpeg: bytes) -> bytes:
    """The file as HyperThumb wrote it before the marker named the encoder."""
    start = jpeg.index(b"\xff\xeb")
    length = struct.unpack(">H", jpeg[start + 2:start + 4])[0]
    payload = json.loads(jpeg[start + 4 + len(_MARKER_ID):start + 2 + length])
    payload.pop("id")
    body = _MARKER_ID + json.dumps(payload).encode()
    return jpeg[:start] + b"\xff\xeb" + struct.pack(">H", len(body) + 2) + body + jpeg[start + 2 + length:]


@pytest.fixture(scope="module")
def codecs():
    made = HyperThumbCodec(small_model("rdbunet", seed=0), name="rdbunet")
    retrained = HyperThumbCodec(small_model("rdbunet", seed=1), name="rdbunet")
    model = small_model("rdbunet", seed=0)
    fast = HyperThumbCodec(model.with_decoder(replace(model.config.decoder, hr_blocks=1)), name="rdbunet-fast",
                           marker="rdbunet")
    return made, retrained, fast


@pytest.fixture(scope="module")
def jpeg(codecs) -> bytes:
    return codecs[0].encode(photo_like(120, 88, seed=6), target_bpp=0.6).jpeg


def test_the_marker_names_the_encoder_that_made_the_file(codecs, jpeg):
    made, retrained, fast = codecs
    assert find_marker(jpeg).encoder_id == made.encoder_id != retrained.encoder_id
    assert fast.encoder_id == made.encoder_id  # a decoder trained against it: the same encoder, QPM, rate model
    assert fast.decode(jpeg).size == made.decode(jpeg).size == (120, 88)


def test_a_checkpoint_with_another_encoder_refuses_the_file_and_says_what_it_needs(codecs, jpeg):
    made, retrained, _ = codecs
    with pytest.raises(EncoderMismatchError) as refused:
        retrained.decode(jpeg)
    message = str(refused.value)
    assert made.encoder_id in message and retrained.encoder_id in message
    assert "HYPERTHUMB_HUB_REVISION" in message and "source=FOLDER" in message
    # A marker edited to name another model is refused too, where before it decoded at a lower PSNR.
    other = HyperThumbCodec(small_model("transformer"), name="transformer")
    with pytest.raises(EncoderMismatchError):
        other.decode(with_marker(jpeg, encoder="transformer"))


def test_a_file_written_before_the_identifier_still_decodes(codecs, jpeg):
    old = without_identifier(jpeg)
    assert find_marker(old).encoder_id is None
    assert codecs[1].decode(old).size == (120, 88)  # nothing to check it against: as before


@pytest.mark.parametrize("identifier", ["ABCDEF012345", "12345", 7, "0123456789abcdef"])
def test_a_damaged_identifier_is_refused(jpeg, identifier):
    with pytest.raises(InvalidThumbnailError, match="encoder identifier"):
        find_marker(with_marker(jpeg, id=identifier))


def test_convert_and_restore_record_the_encoder_in_the_manifest(tmp_path):
    photo_like(96, 64, seed=1).save(tmp_path / "a.png")
    with use_zoo(ModelZoo(loader=small_checkpoint_loader)):
        made = convert_library([str(tmp_path / "a.png")], tmp_path / "thumbs", encoder="rdbunet")
        restored = restore_library([str(tmp_path / "thumbs")], tmp_path / "restored")
    identifier = find_marker((tmp_path / "thumbs" / "a.jpg").read_bytes()).encoder_id
    assert identifier and pq.read_table(made.manifest).to_pylist()[0]["encoder_id"] == identifier
    assert pq.read_table(restored.manifest).to_pylist()[0]["encoder_id"] == identifier
