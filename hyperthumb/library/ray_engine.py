"""convert on Ray Data: the local engine's job (`convert.py`) spread over a Ray cluster's actors.

The driver lists the sources (`sources.py`, so the selection and relative paths are the local
engine's), reads the manifest and decides what is taken or done before; `map_batches` hands each
file to an actor that loaded the model once, and that reads the file, skips it or encodes it, and
returns the manifest row with the thumbnail's bytes. The driver writes the thumbnails and the
manifest as the local engine does, so a run of either engine can be finished by the other. The
actors read the files themselves: on a cluster, the sources must be URLs (s3://, gs://, ...) or
paths every node sees. Each actor pins PyTorch to the cores it was given, so the thumbnails are
byte for byte the local engine's. Ray is imported only here, when `--engine ray` is asked for.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, fields
from typing import Iterable, Iterator, Optional, Union

import pyarrow as pa
import torch

from hyperthumb.codec.image_io import IMAGE_SUFFIXES
from hyperthumb.library.convert import (
    MANIFEST_NAME,
    SAVE_EVERY,
    THUMBNAIL_SUFFIXES,
    RunSummary,
    _convert_job,
    _Outcome,
    _read,
    _record,
    _selection,
    _Task,
    _tasks,
    _work,
    _writer,
)
from hyperthumb.library.manifest import SCHEMA, Manifest, ManifestRow

# An actor's answer for one file: its manifest row, whether it was skipped, the thumbnail's bytes.
_ANSWER = SCHEMA.append(pa.field("skipped", pa.bool_())).append(pa.field("data", pa.binary()))
_ROW_FIELDS = [f.name for f in fields(ManifestRow)]


class _Encoder:
    """A Ray actor: the model loaded once, then each file of its batches read and encoded."""

    def __init__(self, tasks: list[_Task], encoder: str, bpp: float, weights: Optional[str], device: Optional[str],
                 threads: int):
        torch.set_num_threads(threads)
        self.tasks, self.job = tasks, _convert_job(encoder, bpp, weights, device)

    def __call__(self, batch: dict) -> pa.Table:
        answers = []
        for index in batch["index"]:
            made: dict[str, bytes] = {}
            outcome = _work(_read(self.tasks[int(index)], self.job), self.job, made.__setitem__)
            answers.append({**asdict(outcome.row), "skipped": outcome.skipped, "data": made.get(outcome.row.output)})
        return pa.Table.from_pylist(answers, schema=_ANSWER)


def _outcomes(answers: Iterable[dict], write) -> Iterator[_Outcome]:
    """Each actor's answer as the local engine's outcome, its thumbnail written first."""
    for answer in answers:
        row = ManifestRow(**{name: answer[name] for name in _ROW_FIELDS})
        if answer["data"] is not None:
            write(row.output, answer["data"])
        yield _Outcome(row, skipped=answer["skipped"])


def convert_library_on_ray(sources: Union[str, Iterable[str]], out: Union[str, os.PathLike], encoder: str = "rdbunet",
                           bpp: float = 0.3, actors: int = 1, gpus_per_actor: float = 0, cpus_per_actor: int = 1,
                           address: Optional[str] = None, weights: Optional[str] = None, progress: bool = False,
                           save_every: int = SAVE_EVERY) -> RunSummary:
    """`convert_library` on Ray Data: `actors` copies of the model, each on `gpus_per_actor` GPUs
    (0: on its `cpus_per_actor` cores). Joins the cluster at `address` (e.g. ray://head:10001), or
    the one this process already joined, or starts a local one; `weights` must be a folder every
    node sees."""
    import ray

    files, out = _selection(sources, IMAGE_SUFFIXES, out, actors)
    manifest = Manifest(out / MANIFEST_NAME)
    started = time.perf_counter()
    job_settings = {"encoder": encoder, "bpp": bpp, "weights": weights, "device": "cuda" if gpus_per_actor else "cpu",
                    "threads": cpus_per_actor}
    tasks = _tasks(THUMBNAIL_SUFFIXES[0], files, out, manifest)
    joined = ray.is_initialized()
    if not joined:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        answers = ray.data.from_items([{"index": index} for index in range(len(tasks))]).map_batches(
            _Encoder, fn_constructor_kwargs={"tasks": tasks, **job_settings}, batch_size=1, concurrency=actors,
            num_gpus=gpus_per_actor or None, num_cpus=None if gpus_per_actor else cpus_per_actor,
            batch_format="numpy")
        return _record(manifest, _outcomes(answers.iter_rows(), _writer(out)), len(tasks), progress, save_every,
                       started)
    finally:
        if not joined:
            ray.shutdown()
