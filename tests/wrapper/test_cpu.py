"""Free cores, measured from /proc/stat less this process's own use (the local model's thread count)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wrapper import _cpu


def _machine(monkeypatch: pytest.MonkeyPatch, cores: int, readings: list[tuple[int, int] | None], own: float) -> None:
    samples: Iterator[tuple[int, int] | None] = iter(readings)
    clock: Iterator[float] = iter([0.0, own])
    ticks: Iterator[float] = iter([10.0, 10.05])
    monkeypatch.setattr(_cpu, "_last", None)
    monkeypatch.setattr(_cpu.time, "monotonic", lambda: next(ticks))
    monkeypatch.setattr(_cpu, "usable_cores", lambda: cores)
    monkeypatch.setattr(_cpu.os, "cpu_count", lambda: cores)
    monkeypatch.setattr(_cpu, "_busy_and_total", lambda: next(samples))
    monkeypatch.setattr(_cpu.time, "process_time", lambda: next(clock))
    monkeypatch.setattr(_cpu.time, "sleep", lambda seconds: None)


@pytest.mark.parametrize(
    ("busy_ticks", "own_seconds", "free"),
    [
        (0, 0.0, 2),  # idle machine: both cores
        (10, 0.0, 1),  # another process keeps one core of two busy
        (20, 0.0, 1),  # both busy: still one thread
        (10, 0.05, 2),  # the busy core was this process's own work
        (2, 0.0, 2),  # a fifth of a core: still free
        (4, 0.0, 1),  # two fifths of a core: taken
    ],
)
def test_free_cores_counts_only_other_processes(
    monkeypatch: pytest.MonkeyPatch, busy_ticks: int, own_seconds: float, free: int
) -> None:
    # 20 ticks pass across 2 cores during the 0.05 s window.
    _machine(monkeypatch, 2, [(100, 1000), (100 + busy_ticks, 1020)], own_seconds)
    assert _cpu.free_cores(window=0.05) == free


def test_without_proc_stat_half_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    _machine(monkeypatch, 4, [None], 0.0)
    assert _cpu.free_cores() == 2


def test_the_real_reading_is_within_the_usable_cores() -> None:
    assert 1 <= _cpu.free_cores(window=0.01) <= _cpu.usable_cores()


def test_the_time_since_the_last_call_counts_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # Idle right now, but since the previous call (10 s ago) other processes kept a core busy.
    _machine(monkeypatch, 2, [(100, 1000), (100, 1020)], 0.0)
    monkeypatch.setattr(_cpu, "_last", ((0, 0), 0.0, 0.05))  # 1000 ticks ago, 100 of them busy: ~0.2 cores
    assert _cpu.free_cores(window=0.05) == 2
    _machine(monkeypatch, 2, [(600, 1000), (600, 1020)], 0.0)
    monkeypatch.setattr(_cpu, "_last", ((0, 0), 0.0, 0.05))  # 600 of 1000 ticks busy: 1.2 cores
    assert _cpu.free_cores(window=0.05) == 1
