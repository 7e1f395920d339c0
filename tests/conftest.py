"""Shared fixtures: the set of backends every conformance test runs against, and a clock tests can move."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from blackboard import Backends
from tests.conformance.backends import AWS_BACKENDS, BACKENDS, SERVER_BACKENDS, SHARED_FILE_BACKENDS, open_backends


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


def _params(names: list[str]) -> list[object]:
    return [pytest.param(n, marks=pytest.mark.aws) if n in AWS_BACKENDS else n for n in names]


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[str]:
    """DynamoDB Local for the whole session; its endpoint is also in the environment, for worker processes."""
    from tests.aws_support import dynamodb_client
    from tests.dynamodb_local import ENDPOINT_ENV, DynamoDBLocal, DynamoDBLocalMissingError

    try:
        server = DynamoDBLocal()
        server.wait_ready(dynamodb_client(server.endpoint, max_attempts=1))
    except DynamoDBLocalMissingError as exc:
        pytest.fail(str(exc), pytrace=False)
    os.environ[ENDPOINT_ENV] = server.endpoint
    yield server.endpoint
    del os.environ[ENDPOINT_ENV]
    server.stop()


def _needs_server(request: pytest.FixtureRequest, name: str) -> None:
    if name in SERVER_BACKENDS:
        request.getfixturevalue("dynamodb_local")


@pytest.fixture(params=_params(BACKENDS))
def backend_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    _needs_server(request, name)
    return name


@pytest.fixture
def backends(backend_name: str, tmp_path: Path, clock: ManualClock) -> Iterator[Backends]:
    opened = open_backends(backend_name, tmp_path, clock=clock.now, queue_clock=clock.time)
    yield opened
    opened.close()


@pytest.fixture(params=_params(SHARED_FILE_BACKENDS))
def shared_backend_name(request: pytest.FixtureRequest) -> str:
    """Backends whose state several processes can share."""
    name: str = request.param
    _needs_server(request, name)
    return name
