"""How a :class:`~arbiter.LocalRuntime` is deployed: where its state lives, its queues, its sandbox and threads.

A runtime takes two groups of settings: :class:`Deployment` (this module: where and with what it runs) and
:class:`~arbiter.coordinator.EngineSettings` (how the engine behaves: budgets, retries, reflection, stall time),
beside the few keywords that say what it does (``model``, ``instructions``, ``agents``...). The deployment keywords
``LocalRuntime`` took before (``sandbox=``, ``workers=``, ``queue=``...) and ``reflection=``/``stalled_after=`` are
still accepted for one release, with a ``DeprecationWarning`` that names the replacement (:func:`legacy_keywords`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from arbiter.constants import DEFAULT_QUEUE_VISIBILITY_SECONDS
from arbiter.coordinator import EngineSettings
from arbiter.exceptions import UsageError
from blackboard import Backends, TaskQueue
from wrapper import SandboxPool, TrustedCalls

__all__ = ["QUEUES", "Deployment", "legacy_keywords"]

#: The embedded task queues: ``memory`` (fastest; what a crash loses is re-sent from the blackboard) or ``sqlite``.
QUEUES = ("memory", "sqlite")


@dataclass(frozen=True)
class Deployment:
    """Where a runtime keeps its state and how it runs work (no I/O here: the runtime opens what it names).

    Attributes:
        home: the state directory (default ``$ARBITER_HOME``, else ``./.arbiter``); ignored with ``backends``.
        backends: other adapters than the embedded default in ``home`` (the AWS set, say); ``queue`` is then
            ignored: tasks go to ``backends.queue`` and ``fabricate`` tasks to ``fabrication_queue``.
        queue: ``memory`` (the default: fastest; what a crash loses is re-sent from the blackboard at the next start)
            or ``sqlite`` (durable and shared, so that ``arbiter worker`` processes on the same home can take tasks;
            the completions they emit come back through the home's ``completions`` queue, served at once).
        queue_visibility_seconds: how long a received task message stays invisible before it is delivered again
            (longer than any task runs; a duplicate delivery is dropped by the conditional claim anyway), with every
            queue: the memory and sqlite queues and the Fabricator's, and ``backends.queue`` when given.
        fabrication_queue: the Fabricator's queue with ``backends`` (default: one in memory).
        sandbox: a sandbox pool to share (the runtime then does not close it); by default it starts its own.
        workers: how many tasks run at once (and how many planner threads plan submitted events).
        trusted_calls: where trusted agents run (see :mod:`wrapper.trusted_calls`); by default at most
            ``max(4, workers)`` live calls per agent and ``max(32, 4 * workers)`` in all.
        sweep_interval: seconds between watchdog sweeps.
        max_event_bytes: the largest event ``submit`` takes (default ``$ARBITER_MAX_EVENT_BYTES``, else 256 KiB).

    Raises:
        UsageError: an unknown queue, or a count or duration that cannot work (zero or negative).
    """

    home: str | os.PathLike[str] | None = None
    backends: Backends | None = None
    queue: str = "memory"
    queue_visibility_seconds: float = DEFAULT_QUEUE_VISIBILITY_SECONDS
    fabrication_queue: TaskQueue | None = None
    sandbox: SandboxPool | None = None
    workers: int = 2
    trusted_calls: TrustedCalls | None = None
    sweep_interval: float = 1.0
    max_event_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.queue not in QUEUES:
            raise UsageError(f"queue must be 'memory' or 'sqlite', not {self.queue!r}")
        if self.queue_visibility_seconds <= 0:
            raise UsageError(f"queue_visibility_seconds must be positive, not {self.queue_visibility_seconds}")
        if self.workers < 1:
            raise UsageError(f"workers must be at least 1, not {self.workers}")
        if self.sweep_interval <= 0:
            raise UsageError(f"sweep_interval must be positive, not {self.sweep_interval}")


_DEPLOYMENT_FIELDS = frozenset(f.name for f in fields(Deployment)) - {"home"}
_SETTINGS_FIELDS = {"reflection": "reflection", "stalled_after": "stalled_after_seconds"}


def legacy_keywords(
    home: str | os.PathLike[str] | None,
    deployment: Deployment | None,
    settings: EngineSettings | None,
    legacy: Mapping[str, Any],
) -> tuple[Deployment, EngineSettings]:
    """The runtime's deployment and engine settings, with the keywords of the former signature folded in.

    Each former keyword warns (``DeprecationWarning``, naming its replacement) and overrides the object given.

    Raises:
        TypeError: a keyword ``LocalRuntime`` never took.
        UsageError: ``home`` differs from ``deployment.home``; ``stalled_after`` is negative.
    """
    unknown = sorted(set(legacy) - _DEPLOYMENT_FIELDS - set(_SETTINGS_FIELDS))
    if unknown:
        raise TypeError(f"LocalRuntime() got an unexpected keyword argument {unknown[0]!r}")
    deployment = deployment or Deployment()
    settings = settings or EngineSettings()
    if home is not None:
        if deployment.home is not None and os.fspath(deployment.home) != os.fspath(home):
            raise UsageError(f"two homes: {os.fspath(home)!r} and deployment.home {os.fspath(deployment.home)!r}")
        deployment = replace(deployment, home=home)
    moved = {name: value for name, value in legacy.items() if name in _DEPLOYMENT_FIELDS}
    for name in sorted(moved):
        _warn(f"LocalRuntime({name}=...)", f"LocalRuntime(deployment=Deployment({name}=...))")
    if moved:
        deployment = replace(deployment, **moved)
    for name, field in _SETTINGS_FIELDS.items():
        if name not in legacy:
            continue
        _warn(f"LocalRuntime({name}=...)", f"LocalRuntime(settings=EngineSettings({field}=...))")
        value = legacy[name]
        if name == "stalled_after" and value is not None and value < 0:
            raise UsageError(f"stalled_after cannot be negative, got {value}")
        if value is not None:
            settings = replace(settings, **{field: value})
    return deployment, settings


def _warn(old: str, new: str) -> None:
    # stacklevel 4: this function, legacy_keywords, LocalRuntime.__init__, then the caller's line.
    warnings.warn(f"{old} is deprecated and goes in the next release: use {new}", DeprecationWarning, stacklevel=4)
