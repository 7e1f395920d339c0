"""Code and manifest caches: hits, eviction, and verification on every load."""

from __future__ import annotations

from pathlib import Path

import pytest

from blackboard import IntegrityError, NotFoundError
from blackboard.adapters import MemoryCodeStore, MemoryRegistry
from tests.conformance.builders import manifest
from wrapper.cache import CodeCache, ManifestCache


def test_code_cache_serves_verified_copies(tmp_path: Path) -> None:
    store = MemoryCodeStore()
    ref = store.put(b"print('hi')")
    cache = CodeCache(store, tmp_path / "cache")
    assert cache.get(ref.sha256) == b"print('hi')"
    assert (tmp_path / "cache" / ref.sha256).read_bytes() == b"print('hi')"
    assert CodeCache(store, tmp_path / "cache").get(ref.sha256) == b"print('hi')"
    assert (cache.misses, cache.hits) == (1, 0)


def test_tampered_cache_file_is_evicted_and_refused(tmp_path: Path) -> None:
    store = MemoryCodeStore()
    ref = store.put(b"good")
    CodeCache(store, tmp_path).get(ref.sha256)
    (tmp_path / ref.sha256).write_bytes(b"evil")
    fresh = CodeCache(store, tmp_path)
    with pytest.raises(IntegrityError):
        fresh.get(ref.sha256)
    assert not (tmp_path / ref.sha256).exists()
    assert fresh.get(ref.sha256) == b"good"  # the next load goes back to the store


def test_missing_code(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        CodeCache(MemoryCodeStore(), tmp_path).get("f" * 64)


def test_memory_cache_is_bounded() -> None:
    store = MemoryCodeStore()
    refs = [store.put(bytes([i])) for i in range(5)]
    cache = CodeCache(store, size=2)
    for ref in refs:
        cache.get(ref.sha256)
    cache.get(refs[-1].sha256)
    cache.get(refs[0].sha256)
    assert (cache.hits, cache.misses) == (1, 6)


def test_manifest_cache() -> None:
    registry = MemoryRegistry()
    registry.put(manifest())
    cache = ManifestCache(registry, size=1)
    assert cache.get("burger_cook", 1).version == 1
    assert cache.get("burger_cook", 1).version == 1
    assert (cache.misses, cache.hits) == (1, 1)
