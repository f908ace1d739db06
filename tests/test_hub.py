"""Checkpoint folders and Hub loading through the real huggingface_hub (`HyperThumbModel.from_pretrained`,
`save_pretrained`), against an offline cache built here in its layout, and the upload layout of `publish`."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import hyperthumb
from hyperthumb import zoo
from hyperthumb.errors import CheckpointNotFoundError, HyperThumbError
from hyperthumb.models.model import HyperThumbModel
from hyperthumb.models.pretrained import CONFIG_NAME, STATE_NAME, WEIGHTS_NAME
from hyperthumb.release.publish import PUBLISHED_FILES, publish
from hyperthumb.zoo import HUB_REPO_ENV, HUB_REVISION_ENV
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
    monkeypatch.setattr(zoo, "EMBEDDED_WEIGHTS", tmp_path / "embedded")
    monkeypatch.setenv(HUB_REPO_ENV, REPO)
    monkeypatch.delenv(HUB_REVISION_ENV, raising=False)
    with zoo.use_zoo(zoo.ModelZoo()):  # loads from the folders set above
        yield cache


def add_snapshot(cache: Path, ref: str, commit: str, encoder: str, model: HyperThumbModel) -> Path:
    """What a download leaves behind: refs/<ref> holding the commit, files under snapshots/<commit>
    (`encoder` is the subfolder; "" puts the checkpoint at the repository's root)."""
    repo_dir = cache / ("models--" + REPO.replace("/", "--"))
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / ref).write_text(commit)
    folder = repo_dir / "snapshots" / commit / encoder
    model.save_pretrained(folder)
    return folder


def same_weights(a: HyperThumbModel, b: HyperThumbModel) -> bool:
    state = b.state_dict()
    return all(torch.equal(value, state[key]) for key, value in a.state_dict().items() if value.numel())


def test_config_holds_only_the_constructor_argument_and_weights_round_trip(tmp_path):
    model = small_model("transformer", seed=4)
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / CONFIG_NAME).read_text()) == model.config.to_dict()
    loaded = HyperThumbModel.from_pretrained(tmp_path)
    assert loaded.config == model.config and same_weights(loaded, model) and not loaded.training
    # The entropy coder's CDF tables, empty until compressai's update(), are not part of a zoo.
    assert set(load_file(str(tmp_path / WEIGHTS_NAME))) == set(model.state_dict())
    assert not any(k.startswith("rate_model.bottleneck._") for k in model.state_dict())


def test_a_checkpoint_that_does_not_match_the_model_is_an_error(tmp_path):
    small_model("rdbunet").save_pretrained(tmp_path)
    weights = load_file(str(tmp_path / WEIGHTS_NAME))
    save_file({k: v for k, v in weights.items() if not k.startswith("decoder.")}, str(tmp_path / WEIGHTS_NAME))
    with pytest.raises(CheckpointNotFoundError, match="Missing key.*decoder"):
        HyperThumbModel.from_pretrained(tmp_path)


def test_the_old_config_layout_still_loads(tmp_path):
    """Before this layout config.json also held model_type, trained_steps and train_seconds."""
    model = small_model("rdbunet")
    model.save_pretrained(tmp_path)
    config = {"model_type": "hyperthumb", **model.config.to_dict(), "trained_steps": 7, "train_seconds": 1.5}
    (tmp_path / CONFIG_NAME).write_text(json.dumps(config))
    assert HyperThumbModel.from_pretrained(tmp_path).config == model.config


def test_from_pretrained_reads_a_hub_repository_subfolder_and_revision(hub_cache):
    add_snapshot(hub_cache, "main", MAIN_COMMIT, "rdbunet", small_model("rdbunet", seed=1))
    branch = small_model("rdbunet", seed=2)
    add_snapshot(hub_cache, "v2", BRANCH_COMMIT, "rdbunet", branch)
    assert same_weights(HyperThumbModel.from_pretrained(REPO, subfolder="rdbunet", revision="v2"), branch)
    with pytest.raises(CheckpointNotFoundError, match="'transformer'"):
        HyperThumbModel.from_pretrained(REPO, subfolder="transformer")


def test_from_pretrained_reads_a_hub_repository_root(hub_cache):
    published = small_model("transformer", seed=5)
    add_snapshot(hub_cache, "main", MAIN_COMMIT, "", published)
    assert same_weights(HyperThumbModel.from_pretrained(REPO), published)


def test_push_to_hub_uploads_the_checkpoint_folder(monkeypatch):
    """One checkpoint to a repository of its own: the mixin's push_to_hub, writing what save_pretrained writes."""
    from huggingface_hub import hub_mixin

    uploaded = {}

    class RecordingApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, **kwargs):
            return type("RepoUrl", (), {"repo_id": repo_id})

        def upload_folder(self, repo_id, folder_path, **kwargs):
            uploaded.update({path.name: path.read_bytes() for path in Path(folder_path).iterdir()})

    monkeypatch.setattr(hub_mixin, "HfApi", RecordingApi)
    model = small_model("rdbunet")
    model.push_to_hub("owner/hyperthumb-rdbunet")
    assert set(uploaded) == {CONFIG_NAME, WEIGHTS_NAME, "README.md"}
    assert json.loads(uploaded[CONFIG_NAME]) == model.config.to_dict()
    assert b"library_name: hyperthumb" in uploaded["README.md"]


def test_load_model_from_the_offline_hub_cache(hub_cache):
    published = small_model("rdbunet", seed=1)
    folder = add_snapshot(hub_cache, "main", MAIN_COMMIT, "rdbunet", published)
    (folder / STATE_NAME).write_text(json.dumps({"step": 321, "seconds": 12.5, "saved": "2026-11-27T14:33:00+00:00"}))
    assert zoo.checkpoint_folder("rdbunet") == folder
    summary = zoo.checkpoint_summary("rdbunet")
    assert (summary["trained_steps"], summary["saved"]) == (321, "2026-11-27T14:33:00+00:00")
    codec = hyperthumb.load_model("rdbunet", device="cpu")
    assert same_weights(codec.model, published)


def test_revision_picks_the_branch(hub_cache, monkeypatch):
    add_snapshot(hub_cache, "main", MAIN_COMMIT, "transformer", small_model("transformer", seed=1))
    branch = small_model("transformer", seed=2)
    add_snapshot(hub_cache, "v2", BRANCH_COMMIT, "transformer", branch)
    monkeypatch.setenv(HUB_REVISION_ENV, "v2")
    assert same_weights(zoo.load_checkpoint("transformer"), branch)


def test_embedded_weights_come_before_the_hub(hub_cache):
    add_snapshot(hub_cache, "main", MAIN_COMMIT, "rdbunet", small_model("rdbunet", seed=1))
    embedded = small_model("rdbunet", seed=3)
    embedded.save_pretrained(zoo.EMBEDDED_WEIGHTS / "rdbunet")
    assert same_weights(hyperthumb.load_model("rdbunet", device="cpu").model, embedded)


def test_clear_error_when_the_hub_cannot_be_reached(hub_cache):
    with pytest.raises(CheckpointNotFoundError, match=f"'rdbunet' from the Hub repository '{REPO}'"):
        hyperthumb.load_model("rdbunet", device="cpu")


def test_clear_error_without_local_weights_or_hub_repo(hub_cache, monkeypatch):
    monkeypatch.delenv(HUB_REPO_ENV)
    with pytest.raises(CheckpointNotFoundError, match=HUB_REPO_ENV):
        zoo.load_checkpoint("transformer")


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
    small_model("rdbunet").save_pretrained(tmp_path / "rdbunet")
    small_model("transformer").save_pretrained(tmp_path / "transformer")
    (tmp_path / "unfinished").mkdir()  # no checkpoint inside: skipped
    assert publish(tmp_path, REPO, revision="v2") == ["rdbunet", "transformer"]
    assert calls[:2] == [("create_repo", REPO), ("create_branch", "v2")]
    [upload] = [kwargs for name, kwargs in calls if name == "upload_folder"]  # one commit for all
    assert upload["repo_id"] == REPO and upload["revision"] == "v2"
    assert upload["allow_patterns"] == [f"{name}/{file}" for name in ("rdbunet", "transformer")
                                        for file in PUBLISHED_FILES]
    assert STATE_NAME in PUBLISHED_FILES  # the steps and time the app shows travel with the weights


def test_publish_turns_hub_failures_into_a_clear_error(tmp_path, monkeypatch):
    class UnreachableApi:
        def create_repo(self, repo_id, **kwargs):
            raise ConnectionError("Name or service not known")

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", UnreachableApi)
    small_model("rdbunet").save_pretrained(tmp_path / "rdbunet")
    with pytest.raises(HyperThumbError, match=f"could not publish to the Hub repository '{REPO}'"):
        publish(tmp_path, REPO)
