"""Fixtures for engine scenarios: a shared sandbox pool and a runtime factory with fast retries."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from arbiter import EngineSettings, LocalRuntime
from arbiter.config import Deployment
from arbiter.testing import ScriptedModel
from blackboard import Budget, RetryPolicy
from wrapper import SandboxPool

FAST = EngineSettings(retry=RetryPolicy(base_seconds=0.01, max_seconds=0.05))


@pytest.fixture(scope="session")
def pool() -> Iterator[SandboxPool]:
    with SandboxPool(size=2) as sandbox:
        yield sandbox


RuntimeFactory = Callable[..., LocalRuntime]


@pytest.fixture
def runtime(tmp_path: Path, pool: SandboxPool) -> Iterator[RuntimeFactory]:
    opened: list[LocalRuntime] = []

    def make(turns: list[dict[str, Any]], *, budget: Budget | None = None, **kwargs: Any) -> LocalRuntime:
        settings = EngineSettings(retry=FAST.retry, budget=budget or Budget()) if budget else FAST
        rt = LocalRuntime(
            tmp_path / "home",
            model=ScriptedModel(turns),
            settings=settings,
            deployment=Deployment(sandbox=pool, sweep_interval=0.1, queue=kwargs.pop("queue", "memory")),
            **kwargs,
        )
        opened.append(rt)
        return rt

    yield make
    for rt in opened:
        rt.close()


def event(**detail: Any) -> dict[str, Any]:
    return {"source": "test.scenario", "detail-type": "Something-Happened", "detail": detail or {"n": 1}}
