"""Shared fixtures: the set of backends every conformance test runs against, and a clock tests can move."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from blackboard import Backends
from tests.conformance.backends import BACKENDS, SHARED_FILE_BACKENDS, open_backends


class ManualClock:
    """A clock that only moves when told: ``now()`` for records, ``time()`` for queues."""

    def __init__(self) -> None:
        self._now = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def time(self) -> float:
        return self._now.timestamp()

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def backends(backend_name: str, tmp_path: Path, clock: ManualClock) -> Iterator[Backends]:
    opened = open_backends(backend_name, tmp_path, clock=clock.now, queue_clock=clock.time)
    yield opened
    opened.close()


@pytest.fixture(params=SHARED_FILE_BACKENDS)
def shared_backend_name(request: pytest.FixtureRequest) -> str:
    """Backends whose state several processes can share."""
    name: str = request.param
    return name
