"""onnxruntime-web's files for the browser restore, fetched from the npm registry at the version and
integrity `web/package-lock.json` pins, and only those the page loads.

The WebAssembly backend loads `ort.wasm.min.mjs` and its threaded SIMD build (15 MB of .wasm); the
WebGPU backend `ort.webgpu.min.mjs` and its asyncify build (29 MB), which also runs WebAssembly.
They are not in the repository: 44 MB of binaries that a set-up command fetches in seconds.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from hyperthumb.cache import cache_dir

PACKAGE = "onnxruntime-web"
PAGE_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm",
              "ort.webgpu.min.mjs", "ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm")
REGISTRY_ENV = "npm_config_registry"  # npm's own setting, for a mirror
_DEFAULT_REGISTRY = "https://registry.npmjs.org/"
_STAMP = "VERSION"


def pinned(lock: Path) -> tuple[str, str]:
    """(version, integrity) of onnxruntime-web in an npm lock file."""
    entry = json.loads(lock.read_text())["packages"][f"node_modules/{PACKAGE}"]
    return entry["version"], entry["integrity"]


def _tarball(version: str, integrity: str) -> bytes:
    """The package's tarball, from the cache or the registry, checked against the lock's integrity."""
    algorithm, expected = integrity.split("-", 1)
    cached = cache_dir() / "npm" / f"{PACKAGE}-{version}.tgz"

    def matches(data: bytes) -> bool:
        return base64.b64encode(hashlib.new(algorithm, data).digest()).decode() == expected

    if cached.is_file() and matches(data := cached.read_bytes()):
        return data
    registry = os.environ.get(REGISTRY_ENV, _DEFAULT_REGISTRY).rstrip("/")
    url = f"{registry}/{PACKAGE}/-/{PACKAGE}-{version}.tgz"
    with urllib.request.urlopen(url, timeout=120) as response:
        data = response.read()
    if not matches(data):
        raise RuntimeError(f"{url} does not match the integrity pinned in package-lock.json")
    cached.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cached.parent, delete=False) as staged:
        staged.write(data)
    os.replace(staged.name, cached)
    return data


def install_runtime(folder: Path, lock: Path) -> Path:
    """Places the page's onnxruntime-web files, and its licence, in `folder`; kept when they are
    already the pinned version's. Returns `folder`."""
    version, integrity = pinned(lock)
    stamp = folder / _STAMP
    if stamp.is_file() and stamp.read_text().strip() == integrity and all((folder / f).is_file() for f in PAGE_FILES):
        return folder
    with tarfile.open(fileobj=io.BytesIO(_tarball(version, integrity)), mode="r:gz") as archive:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(dir=folder.parent))
        try:
            for name in PAGE_FILES:
                (staged / name).write_bytes(archive.extractfile(f"package/dist/{name}").read())
            package = json.loads(archive.extractfile("package/package.json").read())
            (staged / "LICENSE.txt").write_text(
                f"{PACKAGE} {version} (https://www.npmjs.com/package/{PACKAGE}), by Microsoft Corporation, "
                f"under the {package['license']} licence (https://github.com/microsoft/onnxruntime/blob/main/LICENSE).\n")
            (staged / _STAMP).write_text(integrity + "\n")
            staged.chmod(0o755)  # mkdtemp's folder is the owner's only; a web server may run as another user
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(staged, folder)
        finally:
            shutil.rmtree(staged, ignore_errors=True)
    return folder
