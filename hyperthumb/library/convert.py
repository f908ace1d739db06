"""A whole photo library into thumbnails (`convert_library`), and thumbnails back into photos
(`restore_library`), in one run that can be stopped and run again.

The model is loaded once; photos are read and decoded ahead in threads while `workers` threads run
it (`pipeline.py`), and each output is written under the output folder at its source's relative
path. The manifest (`manifest.py`) gets a row per photo and is saved every `save_every` photos and
at the end, however the run ends; the next run of the same command skips the photos whose row says
done for the same content and settings and whose output is there, and tries the failed ones again.
A file the library cannot use (damaged, not a photo, unreadable) is a failed row with the sentence
of its HyperThumbError, and the run goes on; a wrong setting stops it.
"""
from __future__ import annotations

import hashlib
import io
import os
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, NamedTuple, Optional, Union

import torch
from PIL import Image
from tqdm import tqdm

from hyperthumb.codec.image_io import IMAGE_SUFFIXES, load_image, save_options
from hyperthumb.errors import HyperThumbError, InvalidSettingError
from hyperthumb.jpeg.marker import find_marker
from hyperthumb.library.manifest import DONE, FAILED, Manifest, ManifestRow, write_atomically
from hyperthumb.library.pipeline import run_pipeline
from hyperthumb.library.sources import SourceFile, list_sources
from hyperthumb.zoo import checkpoint_summary, decoder_checkpoint, load_model

THUMBNAIL_SUFFIXES = (".jpg", ".jpeg")
MANIFEST_NAME = "manifest.parquet"
RESTORE_MANIFEST_NAME = "restore-manifest.parquet"
SAVE_EVERY = 20


@dataclass(frozen=True)
class RunSummary:
    manifest: Path
    done: int  # made in this run
    skipped: int  # done by an earlier run
    failed: int
    seconds: float


class _Made(NamedTuple):
    """What the model made of one photo."""
    data: bytes  # the output file
    bpp: float
    model: str
    encoder_id: Optional[str]  # the thumbnail's (made or read)


class _Read(NamedTuple):
    """A photo read, waiting for a worker."""
    file: SourceFile
    output: str  # relative to the output folder
    size: int
    sha256: str
    content: object  # what `make` takes
    seconds: float


class _Outcome(NamedTuple):
    row: ManifestRow
    skipped: bool = False


@dataclass(frozen=True)
class _Job:
    suffix: str  # of the outputs
    manifest_name: str
    prepare: Callable[[bytes], object]  # in the reading threads: a file's bytes -> what `make` takes
    make: Callable[[object], _Made]  # in the workers
    target_bpp: Optional[float] = None
    model: Optional[str] = None  # the model every output must come from; None: each file's own
    weights: Optional[str] = None  # the checkpoint folder of `model`; None: where load_model finds it


def _selection(sources: Union[str, Iterable[str]], suffixes: Iterable[str], out: Union[str, os.PathLike],
               workers: int) -> tuple[list[SourceFile], Path]:
    """The files to work on and the output folder, made and checked to be writable, before the
    model loads: a mistake is told in a second, not after the first photo."""
    if workers < 1:
        raise InvalidSettingError(f"workers must be at least 1, got {workers}")
    out = Path(out)
    files = list_sources(sources, suffixes, skip=out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as exc:
        raise InvalidSettingError(f"cannot write into {out} ({exc.strerror or exc})") from None
    return files, out


def _output_of(file: SourceFile, suffix: str) -> str:
    """Where `file`'s output goes, relative to the output folder."""
    return file.relative.with_suffix(suffix).as_posix()


def _failed(file: SourceFile, error: str, job: _Job, started: float, size: Optional[int] = None,
            sha256: Optional[str] = None) -> _Outcome:
    return _Outcome(ManifestRow(file.name, size, sha256, None, None, None, job.target_bpp, job.model, None,
                                time.perf_counter() - started, FAILED, error))


class _Task(NamedTuple):
    """One file to work on, with what the driver knows of it before it is read."""
    file: SourceFile
    output: str  # relative to the output folder
    taken_by: Optional[str]  # the file that claimed the same output first; None: this one did
    previous: Optional[ManifestRow]  # an earlier run's done row whose output is there


def _tasks(suffix: str, files: list[SourceFile], out: Path, manifest: Manifest) -> list[_Task]:
    """What is known of each file before it is read: whose its output is, and what ran before."""
    owners: dict[str, SourceFile] = {}  # output -> the first file to claim it
    for file in files:
        owners.setdefault(_output_of(file, suffix), file)
    tasks = []
    for file in files:
        output, previous = _output_of(file, suffix), manifest.rows.get(file.name)
        done = previous if previous and previous.status == DONE and (out / previous.output).is_file() else None
        tasks.append(_Task(file, output, None if owners[output] is file else owners[output].name, done))
    return tasks


def _read(task: _Task, job: _Job) -> Union[_Read, _Outcome]:
    """A file read, hashed and prepared; or its outcome already: skipped (done before) or failed."""
    started, file = time.perf_counter(), task.file
    if task.taken_by:
        return _failed(file, f"its output {task.output} is taken by {task.taken_by}", job, started)
    try:
        data = file.read()
    except HyperThumbError as exc:
        return _failed(file, str(exc), job, started)
    sha256 = hashlib.sha256(data).hexdigest()
    if task.previous and task.previous.done_as(sha256, job.target_bpp, job.model):
        return _Outcome(task.previous, skipped=True)
    try:
        content = job.prepare(data)
    except HyperThumbError as exc:
        return _failed(file, str(exc), job, started, len(data), sha256)
    return _Read(file, task.output, len(data), sha256, content, time.perf_counter() - started)


def _work(item: Union[_Read, _Outcome], job: _Job, write: Callable[[str, bytes], None]) -> _Outcome:
    """The model's work on a file read, its output handed to `write` (relative path, bytes)."""
    if isinstance(item, _Outcome):
        return item
    started = time.perf_counter() - item.seconds  # a photo's seconds: its reading and its work, not its wait
    try:
        made = job.make(item.content)
    except InvalidSettingError:
        raise  # the run's fault, not the photo's: it stops the run
    except HyperThumbError as exc:
        return _failed(item.file, str(exc), job, started, item.size, item.sha256)
    write(item.output, made.data)
    steps = checkpoint_summary(made.model, job.weights)["trained_steps"]
    return _Outcome(ManifestRow(item.file.name, item.size, item.sha256, item.output, len(made.data), made.bpp,
                                job.target_bpp, made.model, steps, time.perf_counter() - started, DONE,
                                encoder_id=made.encoder_id))


def _writer(out: Path) -> Callable[[str, bytes], None]:
    def write(output: str, data: bytes) -> None:
        (out / output).parent.mkdir(parents=True, exist_ok=True)
        write_atomically(out / output, data)
    return write


def _record(manifest: Manifest, outcomes: Iterable[_Outcome], total: int, progress: bool, save_every: int,
            started: float) -> RunSummary:
    """Each outcome into the manifest, saved every `save_every` and at the end, however the run ends."""
    counts = {DONE: 0, FAILED: 0, "skipped": 0}
    try:
        with tqdm(total=total, unit="photo", disable=not progress) as bar:
            for outcome in outcomes:
                manifest.record(outcome.row)
                counts["skipped" if outcome.skipped else outcome.row.status] += 1
                bar.update()
                if sum(counts.values()) % save_every == 0:
                    manifest.save()
    finally:
        manifest.save()
    return RunSummary(manifest.path, counts[DONE], counts["skipped"], counts[FAILED], time.perf_counter() - started)


def _run(job: _Job, files: list[SourceFile], out: Path, workers: int, progress: bool, save_every: int) -> RunSummary:
    manifest = Manifest(out / job.manifest_name)
    tasks, write = _tasks(job.suffix, files, out, manifest), _writer(out)
    # The cores are shared out among the workers: each runs PyTorch on its share (thumbnails are
    # byte-identical whatever the share; tests/test_library.py checks it).
    threads, started = torch.get_num_threads(), time.perf_counter()
    torch.set_num_threads(max(1, threads // workers))
    try:
        with closing(run_pipeline(tasks, lambda task: _read(task, job), lambda item: _work(item, job, write),
                                  workers)) as outcomes:
            return _record(manifest, outcomes, len(tasks), progress, save_every, started)
    finally:
        torch.set_num_threads(threads)


def _convert_job(encoder: str, bpp: float, weights: Optional[str], device: Optional[str]) -> _Job:
    """convert's job, its model loaded: by the local engine once, by each Ray actor once."""
    codec = load_model(encoder, source=weights, device=device)

    def encode(photo: Image.Image) -> _Made:
        thumbnail = codec.encode(photo, target_bpp=bpp)
        return _Made(thumbnail.jpeg, thumbnail.bpp, encoder, codec.encoder_id)

    return _Job(THUMBNAIL_SUFFIXES[0], MANIFEST_NAME, prepare=load_image, make=encode, target_bpp=bpp, model=encoder,
                weights=weights)


def convert_library(sources: Union[str, Iterable[str]], out: Union[str, os.PathLike], encoder: str = "rdbunet",
                    bpp: float = 0.3, workers: int = 1, device: Optional[str] = None, progress: bool = False,
                    save_every: int = SAVE_EVERY, weights: Optional[str] = None) -> RunSummary:
    """Every photo the sources name (files, folders searched recursively, globs; local paths or
    fsspec URLs) -> a HyperThumb thumbnail at `bpp` by the `encoder` checkpoint (from the `weights`
    folder where given), at the photo's relative path under `out` with a .jpg suffix, and a row in
    `out`/manifest.parquet. `progress` shows a bar with photos per second and the time left."""
    files, out = _selection(sources, IMAGE_SUFFIXES, out, workers)
    return _run(_convert_job(encoder, bpp, weights, device), files, out, workers, progress, save_every)


def restore_library(sources: Union[str, Iterable[str]], out: Union[str, os.PathLike], workers: int = 1,
                    device: Optional[str] = None, progress: bool = False, save_every: int = SAVE_EVERY,
                    decoder: str = "faithful") -> RunSummary:
    """Every HyperThumb thumbnail (.jpg, .jpeg) the sources name -> the restored photo as a PNG at
    its relative path under `out`, by the model its marker names through its `decoder` (each loaded
    once; see `zoo.decoder_checkpoint`), and a row in `out`/restore-manifest.parquet."""
    files, out = _selection(sources, THUMBNAIL_SUFFIXES, out, workers)

    def decode(jpeg: bytes) -> _Made:
        marker = find_marker(jpeg)
        model = decoder_checkpoint(marker.encoder, decoder)
        photo = load_model(model, device=device).decode(jpeg)
        png = io.BytesIO()
        photo.save(png, format="PNG", **save_options(photo))  # the photo's EXIF and ICC profile
        return _Made(png.getvalue(), len(jpeg) * 8 / (photo.width * photo.height), model, marker.encoder_id)

    return _run(_Job(".png", RESTORE_MANIFEST_NAME, prepare=bytes, make=decode), files, out, workers, progress,
                save_every)
