"""The files a library command works on: photos, folders (searched recursively) and globs, given as
local paths or as URLs through fsspec (`file://`; `s3://`, `gs://` and the rest where the user has
installed that filesystem's package). Each file keeps its path relative to what named it, so its
output lands at the same place under the output folder."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Optional, Union

from fsspec import AbstractFileSystem
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from hyperthumb.errors import InvalidImageError, InvalidSettingError

_WILDCARDS = frozenset("*?[")


@dataclass(frozen=True)
class SourceFile:
    """One file found: where it lives, and its path under the folder or glob that named it."""

    fs: AbstractFileSystem
    path: str  # in `fs`'s own terms
    relative: PurePosixPath

    @property
    def local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    @property
    def name(self) -> str:
        """What the manifest calls it: the local path, or the full URL."""
        return self.path if self.local else self.fs.unstrip_protocol(self.path)

    def read(self) -> bytes:
        """The file's bytes; a file that cannot be read (gone, no permission, the network) is an
        InvalidImageError, so one bad file is a failed row, not the end of the run."""
        try:
            return self.fs.cat_file(self.path)
        except OSError as exc:
            raise InvalidImageError(f"{self.relative} cannot be read ({exc.strerror or exc})") from None


def _filesystem(source: str) -> tuple[AbstractFileSystem, str]:
    try:
        return url_to_fs(source)
    except (ImportError, ValueError) as exc:  # "Install s3fs to access S3", "Protocol not known: ..."
        raise InvalidSettingError(f"{source}: {exc}") from None


def _found(source: str, suffixes: Iterable[str]) -> list[SourceFile]:
    """The files one source names: a file itself (whatever its suffix), or the files with one of
    `suffixes` in a folder's tree or among a glob's matches."""
    fs, path = _filesystem(source)
    wanted = {suffix.lower() for suffix in suffixes}

    def under(base: str, paths: Iterable[str]) -> list[SourceFile]:
        return [SourceFile(fs, each, PurePosixPath(each).relative_to(base)) for each in paths
                if PurePosixPath(each).suffix.lower() in wanted]

    parts = PurePosixPath(path).parts
    wild = next((index for index, part in enumerate(parts) if _WILDCARDS & set(part)), None)
    if wild is not None:
        matches = fs.glob(path, detail=True)
        return under(str(PurePosixPath(*parts[:wild])), [p for p, info in matches.items() if info["type"] == "file"])
    if fs.isdir(path):
        return under(path, fs.find(path))
    if fs.isfile(path):
        return [SourceFile(fs, path, PurePosixPath(PurePosixPath(path).name))]
    raise InvalidImageError(f"no such file or folder: {source}")


def list_sources(sources: Union[str, Iterable[str]], suffixes: Iterable[str],
                 skip: Optional[Path] = None) -> list[SourceFile]:
    """Every file the sources name, in order, each once; local files under `skip` (the output
    folder, where it lies inside a source) are left out. Raises InvalidImageError for a source that
    does not exist and for a selection with no file in it, InvalidSettingError for a URL whose
    filesystem is not installed."""
    sources = [sources] if isinstance(sources, str) else list(sources)
    suffixes = sorted(suffixes)
    skip = skip.resolve() if skip else None
    files: dict[str, SourceFile] = {}
    for source in sources:
        for found in sorted(_found(source, suffixes), key=lambda file: file.relative):
            if not (skip and found.local and Path(found.path).resolve().is_relative_to(skip)):
                files.setdefault(found.name, found)
    if not files:
        raise InvalidImageError(f"no {', '.join(suffixes)} files in {' '.join(sources)}")
    return list(files.values())
