"""llama.cpp prompt states kept on disk, so a new process does not evaluate a long prompt prefix again.

One file per state in the store's directory (default ``<models dir>/states``): ``<key>.state``, where the key hashes
the identity (model, llama-cpp-python version, context parameters) and the state's tokens. A file is::

    MAGIC (8 bytes) | header length (uint32 LE) | header JSON | tokens (int32 LE) | llama.cpp state bytes

The header holds the format version, the identity, the token count, the state's length and seed, and a CRC-32 of
seed, tokens and state. The prompt's logits are not kept: the model is loaded without ``logits_all``, so llama.cpp's
Python side holds none worth keeping (the context's own output buffer is inside the state bytes), and a restored
prompt is always evaluated from at least its last token before sampling.

A file is written to a temporary name in the same directory and renamed into place, so a reader (another process)
never sees a partial one; the checksum covers what a crash before the data reached the disk could leave. A file
that is corrupt or truncated is removed with a warning; one of another model, version or format is left alone (it
is valid for its own model) and ignored with a log line. The directory is bounded in bytes: after each write the
files used least recently (by modification time; a load touches its file) are removed. A full disk or a read-only
directory costs a warning, never a failure: the prompt is evaluated as if nothing was stored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import tempfile
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from llama_cpp.llama import LlamaState

logger = logging.getLogger(__name__)

MAGIC = b"ARBSTATE"
FORMAT = 1
SUFFIX = ".state"
_HEAD = struct.Struct("<8sI")
_LONGEST_HEADER = 1 << 16
# A temporary file this old was left by a writer that died; it is removed when the directory is trimmed.
_STALE_TEMP_SECONDS = 3600


class CorruptState(ValueError):
    """A state file that cannot be what a writer wrote (bad magic, header, length or checksum)."""


@dataclass(frozen=True)
class _Entry:
    mtime_ns: int
    size: int
    tokens: np.ndarray[Any, np.dtype[np.int32]] | None  # None: another identity or format


def pack(identity: Mapping[str, Any], tokens: Sequence[int], state: bytes, seed: int) -> bytes:
    """The file contents of one state."""
    token_bytes = np.asarray(tokens, dtype="<i4").tobytes()
    header = {
        "format": FORMAT,
        "identity": dict(identity),
        "n_tokens": len(tokens),
        "state_bytes": len(state),
        "seed": seed,
        "crc32": _checksum(seed, token_bytes, state),
    }
    encoded = json.dumps(header, sort_keys=True).encode()
    return _HEAD.pack(MAGIC, len(encoded)) + encoded + token_bytes + state


def read_head(data: bytes, file_size: int) -> tuple[dict[str, Any], int]:
    """The header of a state file from its first bytes, and where its tokens start.

    Raises:
        CorruptState: ``data`` is not the start of a state file of ``file_size`` bytes.
    """
    if len(data) < _HEAD.size:
        raise CorruptState("shorter than its magic")
    magic, length = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise CorruptState("not a prompt state file (wrong magic)")
    if length > _LONGEST_HEADER or len(data) < _HEAD.size + length:
        raise CorruptState(f"header of {length} bytes cut short")
    try:
        header = json.loads(data[_HEAD.size : _HEAD.size + length])
    except ValueError as exc:
        raise CorruptState(f"header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise CorruptState("header is not an object")
    if header.get("format") != FORMAT:
        return header, _HEAD.size + length
    n_tokens, state_bytes = header.get("n_tokens"), header.get("state_bytes")
    if not (isinstance(n_tokens, int) and isinstance(state_bytes, int) and isinstance(header.get("crc32"), int)):
        raise CorruptState("header lacks its lengths or checksum")
    if n_tokens < 0 or state_bytes < 0 or _HEAD.size + length + 4 * n_tokens + state_bytes != file_size:
        raise CorruptState(f"{file_size} bytes, not what its header announces (truncated?)")
    return header, _HEAD.size + length


def unpack(data: bytes, identity: Mapping[str, Any]) -> tuple[np.ndarray[Any, np.dtype[np.int32]], bytes, int] | None:
    """Tokens, state bytes and seed of a whole file; ``None`` if it belongs to another identity or format.

    Raises:
        CorruptState: the file is damaged.
    """
    header, start = read_head(data, len(data))
    if header.get("format") != FORMAT or header.get("identity") != dict(identity):
        return None
    end = start + 4 * int(header["n_tokens"])
    token_bytes, state = data[start:end], data[end:]
    seed = header.get("seed")
    if not isinstance(seed, int) or _checksum(seed, token_bytes, state) != header["crc32"]:
        raise CorruptState("checksum mismatch")
    return np.frombuffer(token_bytes, dtype="<i4"), state, seed


def _checksum(seed: int, token_bytes: bytes, state: bytes) -> int:
    return zlib.crc32(state, zlib.crc32(token_bytes, zlib.crc32(str(seed).encode())))


def common_prefix(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> int:
    """How many tokens ``a`` and ``b`` share from their start."""
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if len(differ) else n


class PromptStateStore:
    """A directory of llama.cpp states of one model and context, bounded in bytes, used least recently first out.

    Args:
        directory: where the files are kept (shared by every model: each only sees its own).
        capacity_bytes: the most the directory's state files may take together.
        identity: what a state must have been saved with to be loaded: model, library version, context parameters.
        n_ctx: the context length (a loaded state's tokens are laid out in an array this long, as llama.cpp's).
    """

    def __init__(self, directory: Path, capacity_bytes: int, identity: Mapping[str, Any], n_ctx: int) -> None:
        self.directory = directory
        self.capacity_bytes = capacity_bytes
        self.identity = dict(identity)
        self.n_ctx = n_ctx
        self._index: dict[str, _Entry] = {}

    def longest_prefix(self, tokens: Sequence[int]) -> tuple[int, Path | None]:
        """The most tokens a stored state shares with ``tokens`` from their start, and its file."""
        wanted = np.asarray(tokens, dtype=np.int32)
        best, best_path = 0, None
        for name, entry in self._scan().items():
            if entry.tokens is None:
                continue
            shared = common_prefix(entry.tokens, wanted)
            if shared > best:
                best, best_path = shared, self.directory / name
        return best, best_path

    def load(self, path: Path) -> LlamaState | None:
        """The state in ``path``, or ``None`` (logged) when it is gone, damaged or of another identity."""
        seen = None
        try:
            with path.open("rb") as handle:
                seen = os.fstat(handle.fileno())
                data = handle.read()
            found = unpack(data, self.identity)
        except CorruptState as exc:
            self.discard(path, str(exc), seen)
            return None
        except OSError as exc:
            logger.warning("path=<%s>, error=<%s> | could not read a prompt state; evaluating afresh", path, exc)
            return None
        if found is None:
            logger.info("path=<%s> | prompt state of another model or version; ignored", path)
            return None
        tokens, state, seed = found
        if len(tokens) > self.n_ctx:
            self.discard(path, f"{len(tokens)} tokens do not fit a context of {self.n_ctx}")
            return None
        try:
            os.utime(path)
        except OSError as exc:
            logger.debug("path=<%s>, error=<%s> | could not mark a prompt state used", path, exc)
        input_ids = np.zeros(self.n_ctx, dtype=np.intc)
        input_ids[: len(tokens)] = tokens
        # Logits are not kept (see the module's docstring): one zero row broadcasts over llama.cpp's array.
        scores = np.zeros((1, 1), dtype=np.single)
        return LlamaState(input_ids, scores, len(tokens), state, len(state), seed)

    def save(self, state: LlamaState) -> Path | None:
        """Write ``state`` (atomically) and trim the directory to its bound; ``None`` (logged) if it could not be."""
        tokens = [int(t) for t in state.input_ids[: state.n_tokens]]
        data = pack(self.identity, tokens, bytes(state.llama_state[: state.llama_state_size]), int(state.seed))
        if len(data) > self.capacity_bytes:
            logger.debug("bytes=<%d> | prompt state larger than the whole store; not saved", len(data))
            return None
        key = hashlib.blake2b(json.dumps(self.identity, sort_keys=True).encode(), digest_size=16)
        key.update(np.asarray(tokens, dtype="<i4").tobytes())
        path = self.directory / f"{key.hexdigest()}{SUFFIX}"
        started = time.perf_counter()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            _write_atomically(path, data)
        except OSError as exc:
            logger.warning("path=<%s>, error=<%s> | could not save a prompt state; going on without it", path, exc)
            return None
        logger.debug(
            "path=<%s>, tokens=<%d>, bytes=<%d>, ms=<%.0f> | prompt state saved",
            path,
            len(tokens),
            len(data),
            (time.perf_counter() - started) * 1000,
        )
        self._trim(keep=path)
        return path

    def _scan(self) -> dict[str, _Entry]:
        """The directory's state files, their headers read once per version of each file."""
        index: dict[str, _Entry] = {}
        for name, stat in _listing(self.directory):
            if not name.endswith(SUFFIX):
                continue
            known = self._index.get(name)
            if known is not None and (known.mtime_ns, known.size) == (stat.st_mtime_ns, stat.st_size):
                index[name] = known
                continue
            entry = self._read_entry(self.directory / name)
            if entry is not None:
                index[name] = entry
        self._index = index
        return index

    def _read_entry(self, path: Path) -> _Entry | None:
        seen = None
        try:
            with path.open("rb") as handle:
                # The opened file's own size: the name may have been given to a newer file since it was listed.
                seen = os.fstat(handle.fileno())
                header, start = read_head(handle.read(_HEAD.size + _LONGEST_HEADER), seen.st_size)
                if header.get("format") != FORMAT or header.get("identity") != self.identity:
                    logger.info("path=<%s> | prompt state of another model, version or format; ignored", path)
                    return _Entry(seen.st_mtime_ns, seen.st_size, None)
                handle.seek(start)
                tokens = np.frombuffer(handle.read(4 * int(header["n_tokens"])), dtype="<i4")
        except CorruptState as exc:
            self.discard(path, str(exc), seen)
            return None
        except OSError as exc:  # removed meanwhile by another process's trim
            logger.debug("path=<%s>, error=<%s> | prompt state unreadable", path, exc)
            return None
        return _Entry(seen.st_mtime_ns, seen.st_size, tokens)

    def discard(self, path: Path, reason: str, seen: os.stat_result | None = None) -> None:
        """Remove a damaged state file, with a warning (unless ``path`` is no longer the file ``seen``)."""
        logger.warning("path=<%s>, reason=<%s> | corrupt prompt state removed; evaluating afresh", path, reason)
        self._index.pop(path.name, None)
        try:
            if seen is not None and _same_file(seen, path.stat()):
                path.unlink()
            elif seen is None:
                path.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.debug("path=<%s>, error=<%s> | could not remove a corrupt prompt state", path, exc)

    def _trim(self, keep: Path) -> None:
        """Remove the least recently used state files (any identity) until the directory is within its bound."""
        files: list[tuple[int, int, Path]] = []
        now = time.time()
        for name, stat in _listing(self.directory):
            if name.endswith(SUFFIX):
                files.append((stat.st_mtime_ns, stat.st_size, self.directory / name))
            elif name.startswith(".tmp-") and now - stat.st_mtime > _STALE_TEMP_SECONDS:
                try:
                    (self.directory / name).unlink(missing_ok=True)
                except OSError as exc:
                    logger.debug("name=<%s>, error=<%s> | could not remove a stale temporary file", name, exc)
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.capacity_bytes:
                break
            if path == keep:
                continue
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                logger.debug("path=<%s>, error=<%s> | could not remove a prompt state", path, exc)
                continue
            total -= size
            logger.debug("path=<%s>, bytes=<%d> | least recently used prompt state removed", path, size)


def _listing(directory: Path) -> list[tuple[str, os.stat_result]]:
    """The names in ``directory`` with their stats; a file removed meanwhile (another process's trim) is left out."""
    found: list[tuple[str, os.stat_result]] = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                try:
                    found.append((entry.name, entry.stat()))
                except FileNotFoundError:
                    continue
    except OSError as exc:
        if not isinstance(exc, FileNotFoundError):
            logger.debug("directory=<%s>, error=<%s> | could not list the prompt states", directory, exc)
    return found


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino, a.st_mtime_ns, a.st_size) == (b.st_dev, b.st_ino, b.st_mtime_ns, b.st_size)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` under a temporary name in ``path``'s directory, then rename it to ``path``."""
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
