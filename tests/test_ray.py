"""convert on Ray Data (`library/ray_engine.py`) against the local engine, on a local Ray instance.

Ray's actors are other processes, which the test's model zoo does not reach: the small random-weight
model is saved as a checkpoint folder and both engines load it from there (`weights=`)."""
from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from hyperthumb.library import convert_library
from hyperthumb.library.ray_engine import convert_library_on_ray
from tests.conftest import photo_like, small_checkpoint_model

pytestmark = pytest.mark.ray
ENCODER = "rdbunet-lite"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def local_ray():
    import ray  # here, not at collection: the default tier does not pay for it

    # The actors import hyperthumb from this checkout, which need not be installed.
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}})
    yield
    ray.shutdown()


def _rows(out: Path) -> dict[str, tuple]:
    """Each manifest row but its seconds, which no two runs share."""
    return {row.pop("source"): (row.pop("seconds") > 0, row) for row in pq.read_table(out / "manifest.parquet")
            .to_pylist()}


def _thumbnails(out: Path) -> dict[str, bytes]:
    return {path.relative_to(out).as_posix(): path.read_bytes() for path in sorted(out.rglob("*.jpg"))}


def test_ray_writes_the_local_engines_thumbnails_and_manifest_and_a_rerun_skips_them(local_ray, tmp_path):
    weights = tmp_path / "weights"
    small_checkpoint_model(ENCODER).save_pretrained(weights)
    library = tmp_path / "library"
    (library / "2024").mkdir(parents=True)
    photo_like(96, 64, seed=1).save(library / "a.png")
    photo_like(64, 64, seed=2).save(library / "2024" / "b.jpg", quality=90)
    photo_like(80, 48, seed=3).save(library / "2024" / "c.webp")
    (library / "2024" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a JPEG")
    settings = {"encoder": ENCODER, "bpp": 0.3, "weights": str(weights)}

    local = convert_library([str(library)], tmp_path / "local", **settings)
    on_ray = convert_library_on_ray([str(library)], tmp_path / "ray", actors=2, **settings)
    assert (on_ray.done, on_ray.skipped, on_ray.failed) == (local.done, local.skipped, local.failed) == (3, 0, 1)
    assert _thumbnails(tmp_path / "ray") == _thumbnails(tmp_path / "local")
    rows = _rows(tmp_path / "ray")
    assert rows == _rows(tmp_path / "local")
    assert rows[str(library / "2024" / "broken.jpg")][1]["status"] == "failed"

    again = convert_library_on_ray([str(library)], tmp_path / "ray", actors=2, **settings)
    assert (again.done, again.skipped, again.failed) == (0, 3, 1)
    assert _rows(tmp_path / "ray") == rows
