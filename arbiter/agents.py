"""Agents a runtime is given before it starts, and how a trusted worker module becomes a callable.

Trusted code (``isolation="in_process"``) runs only as a callable registered in the process that runs it. Its source
in the code store is a record; nothing ever runs it. A runtime that restarts gets its trusted agents from
``LocalRuntime(agents=[...])`` before it resumes the tasks a crash left, so those tasks find their callables.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arbiter.exceptions import UsageError

__all__ = ["AgentDefinition", "check_contract", "load_trusted_module"]


@dataclass(frozen=True)
class AgentDefinition:
    """A worker agent to register (see :meth:`arbiter.LocalRuntime.register_agent` for the fields).

    Attributes:
        name: the agent's name (also its tool name).
        description: what it does, written for the planner.
        handler: a Python callable (trusted: runs in process) or the path of a worker module (sandboxed unless
            ``trusted``).
        input_schema: the JSON Schema of its input; derived from the callable's signature when omitted.
        trusted: run in process; defaults to ``True`` for callables and ``False`` for module files.
        timeout_seconds: how long one attempt may run.
        max_attempts: attempts per task (default: the engine's).
        triggers: ``{"pattern": ..., "input": {field: path}}`` each: the engine calls the agent when a note matches.
    """

    name: str
    description: str
    handler: Callable[..., Any] | str | os.PathLike[str]
    input_schema: Mapping[str, Any] | None = None
    trusted: bool | None = None
    timeout_seconds: float = 60.0
    max_attempts: int | None = None
    triggers: Sequence[Mapping[str, Any]] = ()


def load_trusted_module(path: Path, name: str, entrypoint: str = "handler") -> Callable[..., Any]:
    """Import a worker module the user marks as trusted, now, and return its entrypoint.

    Raises:
        UsageError: the module cannot be imported or has no callable ``entrypoint``.
    """
    spec = importlib.util.spec_from_file_location(f"arbiter_trusted_{name.replace('-', '_')}", path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import the worker module {path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise UsageError(f"cannot import the worker module {path}: {type(exc).__name__}: {exc}") from exc
    handler = getattr(module, entrypoint, None)
    if not callable(handler):
        raise UsageError(f"the worker module {path} has no callable {entrypoint!r}")
    check_contract(handler, name)
    return handler  # type: ignore[no-any-return]


def check_contract(handler: Callable[..., Any], name: str) -> None:
    """Refuse a handler that cannot keep the worker contract: one that returns a coroutine instead of a value.

    Raises:
        UsageError: ``handler`` is an ``async def`` (or an async generator).
    """
    if inspect.iscoroutinefunction(handler) or inspect.isasyncgenfunction(handler):
        raise UsageError(
            f"{name}: the handler is an async def; a worker is a plain def handler(**input) that returns a JSON "
            "value (dict, list, str, number, bool or None); run async code inside it"
        )
