"""The disk store of llama.cpp prompt states: file format, validation, bound and LRU, atomic writes, failures.

States here are made up (a ``LlamaState`` with arbitrary bytes); what the model does with them is in
tests/wrapper/test_local_model_states.py.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llama_cpp.llama import LlamaState

from wrapper._prompt_states import CorruptState, PromptStateStore, pack, read_head, unpack

IDENTITY = {"model": "sha256:abc", "llama_cpp": "0.3.36", "n_ctx": 64}
N_CTX = 64


def state_of(tokens: list[int], payload: bytes = b"kv" * 1000, seed: int = 7) -> LlamaState:
    input_ids = np.zeros(N_CTX, dtype=np.intc)
    input_ids[: len(tokens)] = tokens
    scores = np.ones((len(tokens), 5), dtype=np.single)
    return LlamaState(input_ids, scores, len(tokens), payload, len(payload), seed)


def store_in(directory: Path, capacity: int = 1 << 20, identity: dict[str, Any] | None = None) -> PromptStateStore:
    return PromptStateStore(directory, capacity, identity or IDENTITY, N_CTX)


def test_round_trip(tmp_path: Path) -> None:
    store = store_in(tmp_path / "states")
    path = store.save(state_of([5, 6, 7, 8], b"state bytes", seed=42))
    assert path is not None and path.parent == tmp_path / "states"
    assert store.longest_prefix([5, 6, 7, 9, 10]) == (3, path)
    assert store.longest_prefix([9]) == (0, None)
    loaded = store.load(path)
    assert loaded is not None
    assert loaded.n_tokens == 4 and loaded.input_ids.tolist() == [5, 6, 7, 8] + [0] * (N_CTX - 4)
    assert loaded.llama_state == b"state bytes" and loaded.llama_state_size == 11 and loaded.seed == 42
    # The logits are not kept; what is loaded broadcasts over llama.cpp's array of any shape.
    assert loaded.scores.size == 1 and not loaded.scores.any()
    # Another store (another process) finds it.
    assert store_in(tmp_path / "states").longest_prefix([5, 6, 7, 8]) == (4, path)


def _corrupt(data: bytes, how: str) -> bytes:
    if how == "truncated":
        return data[:-10]
    if how == "flipped":
        return data[:-5] + bytes([data[-5] ^ 0xFF]) + data[-4:]
    if how == "magic":
        return b"NOTSTATE" + data[8:]
    if how == "header":
        return data[:12] + b"{not json" + data[21:]
    return b""


@pytest.mark.parametrize("how", ["truncated", "flipped", "magic", "header", "empty"])
def test_corrupt_file_is_ignored_removed_and_logged(tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture) -> None:
    store = store_in(tmp_path)
    path = store.save(state_of([1, 2, 3]))
    assert path is not None
    path.write_bytes(_corrupt(path.read_bytes(), how))
    with caplog.at_level(logging.WARNING, logger="wrapper._prompt_states"):
        fresh = store_in(tmp_path)
        _, found = fresh.longest_prefix([1, 2, 3])
        if found is not None:  # the damage is past the header: found, then refused when read whole
            assert fresh.load(found) is None
    assert "corrupt prompt state removed" in caplog.text
    assert not path.exists()


@pytest.mark.parametrize("field", ["model", "llama_cpp", "n_ctx"])
def test_state_of_another_identity_is_ignored_and_kept(
    tmp_path: Path, field: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = store_in(tmp_path, identity={**IDENTITY, field: "other"}).save(state_of([1, 2, 3]))
    assert path is not None
    with caplog.at_level(logging.INFO, logger="wrapper._prompt_states"):
        store = store_in(tmp_path)
        assert store.longest_prefix([1, 2, 3]) == (0, None)
        assert store.load(path) is None
    assert "another model" in caplog.text
    assert path.exists()  # valid for its own model


def test_full_disk_is_logged_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_fdopen = os.fdopen

    class FullDiskFile:
        """Plays a file on a full disk: every write fails with ENOSPC."""

        def __init__(self, fd: int, mode: str) -> None:
            self.file = real_fdopen(fd, mode)

        def __enter__(self) -> FullDiskFile:
            return self

        def __exit__(self, *exc: object) -> None:
            self.file.close()

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("wrapper._prompt_states.os.fdopen", FullDiskFile)
    store = store_in(tmp_path)
    with caplog.at_level(logging.WARNING, logger="wrapper._prompt_states"):
        assert store.save(state_of([1, 2, 3])) is None
    assert "could not save a prompt state" in caplog.text and "No space left" in caplog.text
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_unwritable_directory_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.WARNING, logger="wrapper._prompt_states"):
        assert store_in(blocker / "states").save(state_of([1, 2, 3])) is None
        assert store_in(blocker / "states").longest_prefix([1, 2, 3]) == (0, None)
    assert "could not save a prompt state" in caplog.text


def _age(path: Path, seconds_ago: float) -> None:
    when = time.time() - seconds_ago
    os.utime(path, (when, when))


def test_lru_keeps_the_bound_and_the_states_used_last(tmp_path: Path) -> None:
    one = len(pack(IDENTITY, [1, 2, 3], b"kv" * 1000, 7))
    store = store_in(tmp_path, capacity=3 * one)
    first, second, third = (store.save(state_of([n, 2, 3])) for n in (1, 2, 3))
    assert first and second and third
    for age, path in zip((300, 200, 100), (first, second, third), strict=True):
        _age(path, age)
    assert store.load(first) is not None  # used: now the most recent
    fourth = store.save(state_of([4, 2, 3]))
    assert fourth is not None
    assert sorted(tmp_path.iterdir()) == sorted([first, third, fourth])  # the least recently used one went
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= 3 * one
    # Files of other models count against the same bound.
    other = store_in(tmp_path, capacity=3 * one, identity={**IDENTITY, "model": "x"}).save(state_of([5, 2, 3]))
    assert other is not None and len(list(tmp_path.iterdir())) == 3


def test_state_larger_than_the_store_is_not_saved(tmp_path: Path) -> None:
    assert store_in(tmp_path, capacity=100).save(state_of([1, 2, 3])) is None
    assert list(tmp_path.iterdir()) == []


def test_stale_temporary_files_are_removed(tmp_path: Path) -> None:
    stale, recent = tmp_path / ".tmp-dead.part", tmp_path / ".tmp-writing.part"
    stale.write_bytes(b"partial")
    recent.write_bytes(b"partial")
    _age(stale, 7200)
    assert store_in(tmp_path).save(state_of([1, 2, 3])) is not None
    assert not stale.exists() and recent.exists()


def test_racing_writers_never_show_a_partial_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    payloads = [bytes([n]) * 200_000 for n in range(4)]
    stop = threading.Event()
    seen: list[bytes] = []

    def write(payload: bytes) -> None:
        store = store_in(tmp_path, capacity=1 << 30)
        while not stop.is_set():
            store.save(state_of([1, 2, 3], payload))

    writers = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for writer in writers:
        writer.start()
    reader = store_in(tmp_path, capacity=1 << 30)
    deadline = time.monotonic() + 30
    with caplog.at_level(logging.WARNING, logger="wrapper._prompt_states"):
        while len(seen) < 200 and time.monotonic() < deadline:
            _, path = reader.longest_prefix([1, 2, 3])
            loaded = reader.load(path) if path is not None else None
            if loaded is not None:
                seen.append(loaded.llama_state)
    stop.set()
    for writer in writers:
        writer.join()
    assert len(seen) == 200
    assert set(seen) <= set(payloads)  # always one writer's whole state, never a mix or a part
    assert "corrupt" not in caplog.text
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".state")] == [path.name]  # one key, one file


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_are_never_a_state(data: bytes) -> None:
    try:
        header, _ = read_head(data, len(data))
        found = unpack(data, IDENTITY)
    except CorruptState:
        return
    assert found is None or header["identity"] == IDENTITY


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=1, max_value=255))
def test_a_changed_byte_is_caught(position: int, flip: int) -> None:
    data = pack(IDENTITY, [10, 20, 30], b"some state", 1)
    at = position % len(data)
    damaged = data[:at] + bytes([data[at] ^ flip]) + data[at + 1 :]
    try:
        found = unpack(damaged, IDENTITY)
    except CorruptState:
        return
    # Not caught only where the change does not alter what is loaded (e.g. JSON whitespace, the seed) or makes it
    # another identity's.
    if found is not None:
        tokens, state, _ = found
        assert tokens.tolist() == [10, 20, 30] and state == b"some state"
