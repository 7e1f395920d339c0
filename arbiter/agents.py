"""Agents defined as decorated functions or given to a runtime before it starts; trusted worker modules.

Trusted code (``isolation="in_process"``) runs only as a callable registered in the process that runs it. Its source
in the code store is a record; nothing ever runs it. A runtime that restarts gets its trusted agents from
``LocalRuntime(agents=[...])`` before it resumes the tasks a crash left, so those tasks find their callables.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import inspect
import os
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

from pydantic.fields import FieldInfo

from arbiter._signature import description_from_docstring, schema_from_signature
from arbiter.exceptions import UsageError
from arbiter.inputs import source_of

__all__ = ["AgentDefinition", "AgentFunction", "agent", "check_contract", "load_trusted_module"]


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


class AgentFunction:
    """A function made an agent by :func:`agent` (or :meth:`arbiter.LocalRuntime.agent`); calling it calls the function.

    Attributes:
        name: the agent's name (the function's name unless given).
        description: what it does (the docstring without its ``Args:`` section unless given).
        input_schema: the JSON Schema of its input, from the type hints (see :func:`agent`).
        trusted: ``True``: it runs in this process; ``False``: its source runs in the sandbox.
        timeout_seconds: how long one attempt may run.
        max_attempts: attempts per task (``None``: the engine's).
        function: the decorated function.
        code: what the code store keeps: the function's source (trusted) or the worker module the sandbox runs.
    """

    name: str
    description: str
    input_schema: dict[str, Any]
    trusted: bool
    timeout_seconds: float
    max_attempts: int | None
    function: Callable[..., Any]
    code: bytes

    def __init__(
        self,
        function: Callable[..., Any],
        *,
        name: str | None,
        description: str | None,
        trusted: bool,
        timeout_seconds: float,
        max_attempts: int | None,
    ) -> None:
        if isinstance(function, AgentFunction):
            raise UsageError(f"{function.name}: the function is an agent already; decorate it once")
        if not callable(function) or not hasattr(function, "__code__"):
            raise UsageError(f"an agent is defined by a plain def function, not {function!r}")
        self.name = name or function.__name__
        if self.name == "<lambda>":
            raise UsageError("a lambda has no name: pass name= (or use register_agent)")
        check_contract(function, self.name)
        self.function = function
        self.description = description or description_from_docstring(function)
        if not self.description:
            raise UsageError(f"{self.name}: the agent needs a description: write a docstring or pass description=")
        self.input_schema = schema_from_signature(function, owner=self.name)
        self.trusted = trusted
        self.timeout_seconds = timeout_seconds
        self.max_attempts = max_attempts
        self._signature = inspect.signature(function)
        # A pydantic Field as a default describes the parameter; the function must get the Field's default value.
        self._field_defaults = {
            p.name: p.default for p in self._signature.parameters.values() if isinstance(p.default, FieldInfo)
        }
        if self._field_defaults and not trusted:
            raise UsageError(
                f"{self.name}: a sandboxed agent's defaults are plain values (its module has no pydantic); describe "
                f"{', '.join(self._field_defaults)} with Annotated[..., Field(...)] instead"
            )
        self.code = source_of(function) if trusted else sandbox_module(function)
        functools.update_wrapper(self, function)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function itself (not as a task); a parameter whose default is a ``Field`` gets its value."""
        if not self._field_defaults:
            return self.function(*args, **kwargs)
        bound = self._signature.bind_partial(*args, **kwargs)
        for name, info in self._field_defaults.items():
            if name not in bound.arguments:
                bound.arguments[name] = info.get_default(call_default_factory=True)
        return self.function(*bound.args, **bound.kwargs)

    def __repr__(self) -> str:
        where = "in process" if self.trusted else "sandboxed"
        return f"<agent {self.name} ({where}) of {self.function.__module__}.{self.function.__qualname__}>"


def sandbox_module(function: Callable[..., Any]) -> bytes:
    """A worker module of the function's own source, without its decorators, whose ``handler`` is the function.

    The module holds that one function: it must be self-contained (its imports inside its body).

    Raises:
        UsageError: the source cannot be read (a function defined in a REPL) or is not a plain ``def``.
    """
    try:
        source = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError) as exc:
        raise UsageError(
            f"{function.__name__}: a sandboxed agent runs its source, which cannot be read here ({exc}); define it "
            "in a file"
        ) from exc
    tree = ast.parse(source)
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef):
        raise UsageError(f"{function.__name__}: a sandboxed agent is a plain def function")
    node.decorator_list = []
    lines = ["from __future__ import annotations", "", ast.unparse(node), ""]
    if node.name != "handler":
        lines += [f"handler = {node.name}", ""]
    return "\n".join(lines).encode()


@overload
def agent(function: Callable[..., Any], /) -> AgentFunction: ...


@overload
def agent(
    *,
    name: str | None = None,
    description: str | None = None,
    trusted: bool = True,
    timeout_seconds: float = 60.0,
    max_attempts: int | None = None,
) -> Callable[[Callable[..., Any]], AgentFunction]: ...


def agent(
    function: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    trusted: bool = True,
    timeout_seconds: float = 60.0,
    max_attempts: int | None = None,
) -> AgentFunction | Callable[[Callable[..., Any]], AgentFunction]:
    """Make a function an agent: ``@agent`` or ``@agent(trusted=False, ...)``; register it with a runtime.

    The name is the function's; the description its docstring without the ``Args:`` section; the input schema comes
    from its type hints: ``Annotated[int, "what it is"]``, a pydantic ``Field(...)`` as the default or inside
    ``Annotated``, or the docstring's ``Args:`` entry describe a parameter (in that order of precedence); a type
    pydantic cannot describe accepts any value. Give agents to :class:`~arbiter.LocalRuntime` (``agents=[...]``) or
    decorate with :meth:`~arbiter.LocalRuntime.agent` to register at once.

    Args:
        function: the function (when used without parentheses).
        name: the agent's name (default: the function's name).
        description: what it does, for the planner (default: from the docstring).
        trusted: ``True`` (the default): the function runs in this process, with its rights, as the callable
            registered in this process. ``False``: its source runs in the sandbox as a worker module; it must then
            be self-contained (imports inside its body) and the sandbox's rules apply.
        timeout_seconds: how long one attempt may run.
        max_attempts: attempts per task (default: the engine's).

    Returns:
        An :class:`AgentFunction` (a decorator when ``function`` is not given).

    Raises:
        UsageError: the function is async, already an agent, a lambda without ``name``, without a description, or an
            ``Annotated`` hint carries metadata that is neither a description string nor a pydantic constraint.
    """

    def make(target: Callable[..., Any]) -> AgentFunction:
        return AgentFunction(
            target,
            name=name,
            description=description,
            trusted=trusted,
            timeout_seconds=timeout_seconds,
            max_attempts=max_attempts,
        )

    return make if function is None else make(function)
