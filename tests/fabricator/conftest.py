"""Fixtures the Fabricator's tests share: a sandbox pool per module and fresh memory backends per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from blackboard import Backends, memory_backends
from wrapper.sandbox import SandboxPool


@pytest.fixture(scope="module")
def pool() -> Iterator[SandboxPool]:
    """Two sandbox slots for the module (a module that needs another size defines its own)."""
    with SandboxPool(size=2) as sandbox:
        yield sandbox


@pytest.fixture
def backends() -> Backends:
    return memory_backends()
