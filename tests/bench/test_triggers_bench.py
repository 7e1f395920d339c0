"""The trigger latency bench (``bench/triggers.py``) measures one reaction per note, on each backend it names."""

from __future__ import annotations

import pytest

from bench.triggers import run_backend, run_bus_backend


@pytest.mark.parametrize("backend", ["memory", "sqlite", pytest.param("moto", marks=pytest.mark.aws)])
def test_every_note_gives_one_measured_reaction(backend: str) -> None:
    latencies = run_backend(backend, rounds=2, notes=3)
    assert len(latencies) == 6
    assert all(ms >= 0 for ms in latencies)  # the reaction starts after its note was written


@pytest.mark.parametrize("backend", ["memory", "sqlite", pytest.param("moto", marks=pytest.mark.aws)])
def test_every_bus_event_gives_one_measured_standing_task(backend: str) -> None:
    latencies = run_bus_backend(backend, events=3)
    assert len(latencies) == 3
    assert all(ms >= 0 for ms in latencies)  # the triggered task starts after its event was published
