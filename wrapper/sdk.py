"""The worker SDK: what agent code imports (``from wrapper import sdk``).

The worker contract
-------------------
A worker agent is one Python module that defines, at module level::

    def handler(**kwargs) -> object: ...

- It is called with the task's input as keyword arguments (the input was validated against the agent's input JSON
  Schema before the call).
- It returns a JSON-serialisable value (dict, list, str, int, float, bool or None); anything else fails the task.
- It raises to fail the task; a failure is retried (with backoff, up to the agent's ``max_attempts``) unless it raises
  :class:`NonRetryableError`.
- For any language-model use it calls :func:`model` and never constructs a model itself: the runtime decides the
  provider (Bedrock on AWS, a local model offline, a scripted model in tests).
- It reads the orchestration's notes with :func:`notes` and contributes with :func:`note`; it never talks to the
  blackboard, registry, code store or bus (it has no handle on them: the wrapper writes results and notes for it).
- It may be stopped. An attempt ends at ``context().deadline`` (for a trusted agent: when its timeout runs out,
  counted from the moment the call started) or when the runtime closes. A sandboxed worker is killed then. A trusted
  agent (a Python callable run in the wrapper's own process) cannot be killed: it should check :func:`cancelled`
  (or call :func:`check_cancelled`, which raises :class:`TaskCancelledError`) before each side effect and in any
  loop or wait, and stop. Whatever it returns or notes after its attempt ended is dropped, never recorded: the next
  attempt may already be running, and only that one counts.
- Generated (fabricated) workers run in a sandboxed child process with a wall-clock timeout, CPU, memory, file and
  process limits, a scrubbed environment, a temporary working directory and, where the machine allows, no network.
  They may import the standard library modules the Fabricator's policy allows, ``strands`` and ``wrapper.sdk``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from wrapper._json_values import strict_json, text
from wrapper.exceptions import NonRetryableError, TaskCancelledError, WrapperError

if TYPE_CHECKING:
    from strands.models import Model

__all__ = [
    "NonRetryableError",
    "NoteView",
    "TaskCancelledError",
    "TaskContext",
    "TaskSession",
    "cancelled",
    "check_cancelled",
    "context",
    "model",
    "note",
    "notes",
    "session",
]

#: Largest note value accepted from a worker, as JSON.
MAX_NOTE_BYTES = 64 * 1024
MAX_NOTES_PER_TASK = 64


class NoteView(BaseModel):
    """A note as a task sees it: its value and the version it had when the task started."""

    model_config = ConfigDict(frozen=True)

    value: Any = None
    version: int = Field(1, ge=1)
    author: str = ""


class TaskContext(BaseModel):
    """What a running task knows about itself. Crosses into the sandbox as JSON."""

    model_config = ConfigDict(frozen=True)

    orchestration_id: str
    task_id: str
    attempt: int = Field(1, ge=1)
    agent: str
    deadline: datetime | None = None
    model_spec: str | None = None
    notes: dict[str, NoteView] = Field(default_factory=dict)
    traceparent: str | None = None


class TaskSession:
    """The state of one task execution: its context, the notes it contributes and the model tokens it uses.

    ``cancel`` is set by the wrapper when the attempt ends before the call returns (see :func:`cancelled`).
    """

    def __init__(self, context: TaskContext, cancel: threading.Event | None = None) -> None:
        self.context = context
        self.cancel = cancel if cancel is not None else threading.Event()
        self.notes: list[tuple[str, Any]] = []
        self.input_tokens = 0
        self.output_tokens = 0
        self._lock = threading.Lock()
        self._model: Model | None = None

    def add_usage(self, input_tokens: int, output_tokens: int) -> None:
        """Count model tokens (called by the usage-tracking model)."""
        with self._lock:
            self.input_tokens += input_tokens
            self.output_tokens += output_tokens

    @property
    def usage(self) -> dict[str, int]:
        """Token usage so far, as ``input_tokens``, ``output_tokens``, ``total_tokens``."""
        with self._lock:
            return {
                "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens,
                "total_tokens": self.input_tokens + self.output_tokens,
            }


_current: ContextVar[TaskSession | None] = ContextVar("arbiter_task_session", default=None)


@contextmanager
def session(context: TaskContext, cancel: threading.Event | None = None) -> Iterator[TaskSession]:
    """Make ``context`` the current task for the code run inside the block (used by the wrapper, not by workers).

    ``cancel``: the event the wrapper sets when the attempt ends before the call returns.
    """
    current = TaskSession(context, cancel)
    token = _current.set(current)
    try:
        yield current
    finally:
        _current.reset(token)


def _session() -> TaskSession:
    current = _current.get()
    if current is None:
        raise WrapperError("wrapper.sdk is only usable while the wrapper runs a task")
    return current


def context() -> TaskContext:
    """Return the current task's ids, attempt, agent, deadline and trace context."""
    return _session().context


def cancelled() -> bool:
    """Whether the current attempt has ended: its deadline passed, it timed out, or the runtime is closing.

    A long-running worker checks it before each side effect and in its loops, and stops when it is true: what it
    returns or notes afterwards is dropped.
    """
    current = _session()
    deadline = current.context.deadline
    if deadline is not None and deadline.tzinfo is None:
        deadline = deadline.replace(tzinfo=UTC)
    return current.cancel.is_set() or (deadline is not None and datetime.now(UTC) >= deadline)


def check_cancelled() -> None:
    """Raise :class:`TaskCancelledError` if the current attempt has ended (see :func:`cancelled`)."""
    if cancelled():
        raise TaskCancelledError("the attempt has ended (timed out or the runtime is closing); its results are dropped")


def notes() -> dict[str, Any]:
    """Return the orchestration's notes as they were when the task started (key → value)."""
    return {key: view.value for key, view in _session().context.notes.items()}


def note(key: str, value: Any) -> None:
    """Contribute a note to the orchestration's blackboard.

    The wrapper writes it after the task, conditionally: if another task changed the same key since this task
    started, this note is not written (the first writer wins) and the conflict is logged.

    Raises:
        ValueError: the key is empty, too long or not valid Unicode, the value is not strict JSON (the message names
            the offending value and its path) or too large, or the task already contributed too many notes.
        TaskCancelledError: the attempt has ended (see :func:`cancelled`).
    """
    check_cancelled()
    if not isinstance(key, str) or not 1 <= len(key) <= 256:
        raise ValueError("a note key is a string of 1 to 256 characters")
    if text(key) != key:
        raise ValueError(f"note key {text(key)!r} is not valid Unicode (it has a lone surrogate)")
    try:
        encoded = strict_json(value)
    except ValueError as exc:
        raise ValueError(f"note {text(key)!r}: value is not JSON: {exc}") from None
    if len(encoded) > MAX_NOTE_BYTES:
        raise ValueError(f"note {key!r}: value is {len(encoded)} bytes as JSON; the limit is {MAX_NOTE_BYTES}")
    current = _session()
    if len(current.notes) >= MAX_NOTES_PER_TASK:
        raise ValueError(f"a task contributes at most {MAX_NOTES_PER_TASK} notes")
    current.notes.append((key, json.loads(encoded)))


def model() -> Model:
    """Return the Strands model this environment is configured with, counting its token usage for the task.

    Raises:
        ModelConfigurationError: no model is configured, or its provider is not installed.
    """
    from wrapper.models import resolve_model, track_usage

    current = _session()
    if current._model is None:
        current._model = track_usage(resolve_model(current.context.model_spec), current.add_usage)
    return current._model
