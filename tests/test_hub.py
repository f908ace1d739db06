"""Hub loading through the real huggingface_hub, against an offline cache built here in its layout,
and the upload layout of `publish`."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import hyperthumb
from hyperthumb import checkpoint
from hyperthumb.checkpoint import HUB_REPO_ENV, HUB_REVISION_ENV, save_checkpoint
from hyperthumb.errors import CheckpointNotFoundError, HyperThumbError
from hyperthumb.model import HyperThumbModel
from hyperthumb.publish import PUBLISHED_FILES, publish
from tests.conftest import small_model

REPO = "owner/hyperthumb"
MAIN_COMMIT = "a" * 40
BRANCH_COMMIT = "b" * 40


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch) -> Path:
    """An empty offline Hub cache, an empty embedded-weights folder, and HYPERTHUMB_HUB_REPO set.
    huggingface_hub reads its environment at import, so its constants are patched as well."""
    from huggingface_hub import constants

    hf_home = tmp_path / "hf"
    cache = hf_home / "hub"
    cache.mkdir(parents=True)
    (tmp_path / "embedded").mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(checkpoint, "EMBEDDED_WEIGHTS", tmp_path / "embedded")
    monkeypatch.setenv(HUB_REPO_ENV, REPO)
    monkeypatch.delenv(HUB_REVISION_ENV, raising=False)
    hyperthumb._cached_model.cache_clear()
    yield cache
    hyperthumb._cached_model.cache_clear()


def add_snapshot(cache: Path, ref: str, commit: str, encoder: str, model: HyperThumbModel) -> None:
    """What `hf_hub_download` leaves behind: refs/<ref> holding the commit, files under snapshots/<commit>."""
    repo_dir = cache / ("models--" + REPO.replace("/", "--"))
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / ref).write_text(commit)
    save_checkpoint(model, repo_dir / "snapshots" / commit / encoder)


def same_weights(a: HyperThumbModel, b: HyperThumbModel) -> bool:
    state = b.state_dict()
    return all(torch.equal(value, state[key]) for key, value in a.state_dict().items() if value.numel())


def test_load_model_from_the_offline_hub_cache(hub_cache):
    published = small_model("rdbunet", seed=1)
    add_snapshot(hub_cache, "main", MAIN_COMMIT, "rdbunet", published)
    config_path, _ = checkpoint.resolve_checkpoint("rdbunet")
    snapshot = hub_cache / "models--owner--hyperthumb" / "snapshots" / MAIN_COMMIT
    assert config_path == snapshot / "rdbunet" / "config.json"
    codec = hyperthumb.load_model("rdbunet", device="cpu")
    assert same_weights(codec.model, published)


def test_revision_picks_the_branch(hub_cache, monkeypatch):
    add_snapshot(hub_cache, "main", MAIN_COMMIT, "transformer", small_model("transformer", seed=1))
    branch = small_model("transformer", seed=2)
    add_snapshot(hub_cache, "v2", BRANCH_COMMIT, "transformer", branch)
    monkeypatch.setenv(HUB_REVISION_ENV, "v2")
    assert same_weights(checkpoint.load_checkpoint("transformer"), branch)


def test_embedded_weights_come_before_the_hub(hub_cache):
    add_snapshot(hub_cache, "main", MAIN_COMMIT, "rdbunet", small_model("rdbunet", seed=1))
    embedded = small_model("rdbunet", seed=3)
    save_checkpoint(embedded, checkpoint.EMBEDDED_WEIGHTS / "rdbunet")
    assert same_weights(hyperthumb.load_model("rdbunet", device="cpu").model, embedded)


def test_clear_error_when_the_hub_cannot_be_reached(hub_cache):
    with pytest.raises(CheckpointNotFoundError, match=f"'rdbunet' from the Hub repository '{REPO}'"):
        hyperthumb.load_model("rdbunet", device="cpu")


def test_clear_error_without_local_weights_or_hub_repo(hub_cache, monkeypatch):
    monkeypatch.delenv(HUB_REPO_ENV)
    with pytest.raises(CheckpointNotFoundError, match=HUB_REPO_ENV):
        checkpoint.load_checkpoint("transformer")


def test_publish_uploads_one_subfolder_per_checkpoint(tmp_path, monkeypatch):
    calls = []

    class RecordingApi:
        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id))

        def create_branch(self, repo_id, branch, **kwargs):
            calls.append(("create_branch", branch))

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", kwargs))

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    save_checkpoint(small_model("rdbunet"), tmp_path / "rdbunet")
    save_checkpoint(small_model("transformer"), tmp_path / "transformer")
    (tmp_path / "unfinished").mkdir()  # no checkpoint inside: skipped
    assert publish(tmp_path, REPO, revision="v2") == ["rdbunet", "transformer"]
    assert calls[:2] == [("create_repo", REPO), ("create_branch", "v2")]
    uploads = [kwargs for name, kwargs in calls if name == "upload_folder"]
    assert [u["path_in_repo"] for u in uploads] == ["rdbunet", "transformer"]
    assert all(u["repo_id"] == REPO and u["revision"] == "v2" and u["allow_patterns"] == PUBLISHED_FILES
               for u in uploads)


def test_publish_turns_hub_failures_into_a_clear_error(tmp_path, monkeypatch):
    class UnreachableApi:
        def create_repo(self, repo_id, **kwargs):
            raise ConnectionError("Name or service not known")

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", UnreachableApi)
    save_checkpoint(small_model("rdbunet"), tmp_path / "rdbunet")
    with pytest.raises(HyperThumbError, match=f"could not publish to the Hub repository '{REPO}'"):
        publish(tmp_path, REPO)
