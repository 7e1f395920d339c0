"""Registering worker agents with a runtime: module files, callables and decorated functions.

:class:`AgentRegistration` is a part of :class:`arbiter.LocalRuntime` (a mixin): it stores each definition's code in
the code store and makes it the active version in the registry, idempotently, and keeps the callables of trusted
agents for the runtime's executor.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, overload

from arbiter.agents import AgentFunction, check_contract, load_trusted_module
from arbiter.exceptions import UsageError
from arbiter.inputs import schema_from_signature, source_of
from blackboard import AgentManifest, AgentOrigin, AgentState, Backends
from blackboard.triggers import Trigger, check_triggers

__all__ = ["AgentRegistration"]


class AgentRegistration:
    """Agent registration of a runtime (see :class:`arbiter.LocalRuntime`)."""

    backends: Backends
    #: agent name -> the callable of a trusted agent, which the executor runs.
    _trusted: dict[str, Callable[..., Any]]
    #: agent name -> ``module.qualname`` of the decorated function that took it in this runtime.
    _functions: dict[str, str]

    def register_agent(
        self,
        name: str,
        description: str,
        handler: Callable[..., Any] | str | os.PathLike[str],
        *,
        input_schema: Mapping[str, Any] | None = None,
        trusted: bool | None = None,
        timeout_seconds: float = 60.0,
        max_attempts: int | None = None,
        triggers: Sequence[Trigger | Mapping[str, Any]] = (),
    ) -> AgentManifest:
        """Register a worker agent (idempotent: the same definition again returns the existing version).

        Args:
            name: the agent's name (also its tool name).
            description: what it does, written for the planner.
            handler: a Python callable (trusted: runs in this process) or the path of a worker module (runs in the
                sandbox unless ``trusted=True``; a trusted module is imported now). Trusted code runs only as the
                callable registered here, never from its stored source: after a restart, register it again before
                its tasks run (``LocalRuntime(agents=[...])``).
            input_schema: the JSON Schema of its input; derived from the callable's signature when omitted.
            trusted: run in process; defaults to ``True`` for callables and ``False`` for module files.
            timeout_seconds: how long one attempt may run.
            max_attempts: attempts per task (default: the engine's).
            triggers: when the engine calls it without the planner: ``{"pattern": ..., "input": {field: path}}``
                each (see :mod:`blackboard.triggers`); a note written in an orchestration that matches one adds a
                reactive task for this agent.

        Returns:
            The active manifest.

        Raises:
            TriggerError: a trigger is not valid (the field is named): a pattern that does not parse, an input the
                agent's schema refuses, a reserved source.
        """
        parsed = [t if isinstance(t, Trigger) else Trigger.parse(dict(t)) for t in triggers]
        if callable(handler):
            check_contract(handler, name)
            code = source_of(handler)
            schema = dict(input_schema) if input_schema is not None else schema_from_signature(handler)
            in_process = True if trusted is None else trusted
            if not in_process:
                raise UsageError("a Python callable can only run in process; pass a module path to sandbox it")
        else:
            path = Path(handler)
            try:
                code = path.read_bytes()
            except OSError as exc:
                raise UsageError(f"cannot read the worker module {path}: {exc}") from exc
            schema = dict(input_schema) if input_schema is not None else {"type": "object"}
            in_process = bool(trusted)
        check_triggers(parsed, schema)
        if callable(handler):
            self._trusted[name] = handler
        elif in_process:
            self._trusted[name] = load_trusted_module(Path(handler), name)
        return self._publish(name, description, code, schema, in_process, timeout_seconds, max_attempts, parsed)

    @overload
    def agent(self, function: Callable[..., Any]) -> AgentFunction: ...

    @overload
    def agent(
        self,
        *,
        name: str | None = None,
        description: str | None = None,
        trusted: bool = True,
        timeout_seconds: float = 60.0,
        max_attempts: int | None = None,
    ) -> Callable[[Callable[..., Any]], AgentFunction]: ...

    def agent(
        self,
        function: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        trusted: bool = True,
        timeout_seconds: float = 60.0,
        max_attempts: int | None = None,
    ) -> AgentFunction | Callable[[Callable[..., Any]], AgentFunction]:
        """Define an agent with a decorated function and register it now: ``@rt.agent`` or ``@rt.agent(...)``.

        The arguments and how the name, description and input schema are found are those of :func:`arbiter.agent`
        (``trusted=True``, the default, runs the function in this process). An :class:`~arbiter.AgentFunction` made
        with :func:`arbiter.agent` is registered as it is. Registering the same function again is idempotent (the
        same version); another function under a name a function took in this runtime is refused.

        Returns:
            The :class:`~arbiter.AgentFunction` (a decorator when ``function`` is not given).

        Raises:
            UsageError: as :func:`arbiter.agent`, or the name is taken in this runtime by another function.
        """

        def register(target: Callable[..., Any]) -> AgentFunction:
            if isinstance(target, AgentFunction):
                defined = target
            else:
                defined = AgentFunction(
                    target,
                    name=name,
                    description=description,
                    trusted=trusted,
                    timeout_seconds=timeout_seconds,
                    max_attempts=max_attempts,
                )
            self._register_function(defined)
            return defined

        return register if function is None else register(function)

    def _register_function(self, defined: AgentFunction) -> AgentManifest:
        origin = f"{defined.function.__module__}.{defined.function.__qualname__}"
        taken = self._functions.get(defined.name)
        if taken is not None and taken != origin:
            raise UsageError(
                f"the agent name {defined.name!r} is taken in this runtime by the function {taken}; "
                f"give {origin} another name (name=...)"
            )
        if defined.trusted:
            self._trusted[defined.name] = defined
        manifest = self._publish(
            defined.name,
            defined.description,
            defined.code,
            defined.input_schema,
            defined.trusted,
            defined.timeout_seconds,
            defined.max_attempts,
        )
        self._functions[defined.name] = origin
        return manifest

    def _publish(
        self,
        name: str,
        description: str,
        code: bytes,
        schema: dict[str, Any],
        in_process: bool,
        timeout_seconds: float,
        max_attempts: int | None,
        triggers: Sequence[Trigger] = (),
    ) -> AgentManifest:
        """Store the code and make this definition the active version (the active one when it is the same)."""
        registry = self.backends.registry
        ref = self.backends.code_store.put(code)
        for existing in reversed(registry.versions(name)):
            same = (existing.code.sha256, existing.description, existing.input_schema, existing.triggers) == (
                ref.sha256,
                description,
                schema,
                list(triggers),
            )
            if (
                same
                and existing.state is AgentState.ACTIVE
                and existing.isolation == ("in_process" if in_process else "sandbox")
            ):
                return existing
        manifest = AgentManifest(
            name=name,
            version=registry.next_version(name),
            description=description,
            input_schema=schema,
            code=ref,
            origin=AgentOrigin.USER,
            isolation="in_process" if in_process else "sandbox",
            timeout_seconds=timeout_seconds,
            max_attempts=max_attempts,
            triggers=list(triggers),
        )
        stored = registry.put(manifest).record
        for older in registry.versions(name)[:-1]:
            if older.state is AgentState.ACTIVE:
                registry.set_state(name, older.version, AgentState.ACTIVE, AgentState.RETIRED)
        return stored
