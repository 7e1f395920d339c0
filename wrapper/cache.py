"""Caches in front of the registry and the code store, for the hot path of task execution.

Manifests are cached by ``name@version`` (a version's code and schema never change once written). Code is cached by
SHA-256, in memory and optionally in a local directory (for remote stores), and **verified on every load**: a cached
copy that no longer hashes to its name is evicted and refused with :class:`blackboard.IntegrityError`.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

from blackboard import AgentManifest, CodeStore, IntegrityError, Registry
from blackboard.ports.code_store import sha256_hex

__all__ = ["CodeCache", "ManifestCache"]


class ManifestCache:
    """An LRU of agent manifests by ``(name, version)``.

    Args:
        registry: where manifests come from.
        size: how many to keep.
    """

    def __init__(self, registry: Registry, size: int = 1024) -> None:
        self._registry = registry
        self._size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[str, int], AgentManifest] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, name: str, version: int) -> AgentManifest:
        """Return the manifest (raises :class:`blackboard.AgentNotFoundError` if there is none)."""
        key = (name, version)
        with self._lock:
            manifest = self._items.get(key)
            if manifest is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return manifest
        manifest = self._registry.get(name, version)
        with self._lock:
            self.misses += 1
            self._items[key] = manifest
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return manifest


class CodeCache:
    """Agent code by SHA-256: memory, then an optional directory, then the code store; verified on every load.

    Args:
        store: the code store (it verifies what it returns, too).
        directory: a local directory for copies of remote code; ``None`` keeps copies in memory only.
        size: how many blobs to keep in memory.
    """

    def __init__(self, store: CodeStore, directory: str | os.PathLike[str] | None = None, size: int = 256) -> None:
        self._store = store
        self._directory = Path(directory) if directory is not None else None
        if self._directory is not None:
            self._directory.mkdir(parents=True, exist_ok=True)
        self._size = size
        self._lock = threading.Lock()
        self._memory: OrderedDict[str, bytes] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, sha256: str) -> bytes:
        """Return verified code.

        Raises:
            IntegrityError: a cached or stored copy does not match its SHA-256 (the cached copy is evicted).
            NotFoundError: the code store has nothing under this SHA-256.
        """
        data = self._cached(sha256)
        if data is not None:
            self._verify(sha256, data)
            self.hits += 1
            return data
        self.misses += 1
        data = self._store.get(sha256)
        self._keep(sha256, data)
        return data

    def _cached(self, sha256: str) -> bytes | None:
        with self._lock:
            data = self._memory.get(sha256)
            if data is not None:
                self._memory.move_to_end(sha256)
                return data
        if self._directory is None:
            return None
        try:
            return (self._directory / sha256).read_bytes()
        except FileNotFoundError:
            return None

    def _verify(self, sha256: str, data: bytes) -> None:
        actual = sha256_hex(data)
        if actual == sha256:
            return
        with self._lock:
            self._memory.pop(sha256, None)
        if self._directory is not None:
            (self._directory / sha256).unlink(missing_ok=True)
        raise IntegrityError(sha256, actual)

    def _keep(self, sha256: str, data: bytes) -> None:
        with self._lock:
            self._memory[sha256] = data
            while len(self._memory) > self._size:
                self._memory.popitem(last=False)
        if self._directory is not None and not (self._directory / sha256).exists():
            fd, tmp = tempfile.mkstemp(dir=self._directory, prefix=".tmp-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, self._directory / sha256)
