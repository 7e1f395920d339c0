"""Wire messages: the ingress event envelope, task messages, completion and result events.

Field names are fixed by ARCHITECTURE "Messages". Messages carry a versioned ``schema`` and, for the seed
generation of this pattern, aliases on the wire (``tool_use_id``, ``node``, ``tool_input``, ``data``): they are
written on every dump and accepted on input when the canonical field is missing.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from blackboard._base import Message, utcnow
from blackboard.states import OrchestrationStatus, TaskState

__all__ = [
    "COMPLETION_DETAIL_TYPE",
    "COMPLETION_SOURCE",
    "MAX_EXAMPLES",
    "MAX_TOKEN_LENGTH",
    "ORCHESTRATION_SOURCE",
    "AcceptanceExample",
    "AgentRef",
    "CompletionEvent",
    "CompletionToken",
    "Event",
    "FabricationRequest",
    "OrchestrationFinished",
    "TaskError",
    "TaskMessage",
    "Usage",
    "example_problem",
    "new_completion_token",
    "tokens_match",
]

COMPLETION_SOURCE = "arbiter.wrapper"
COMPLETION_DETAIL_TYPE = "task.completed"
ORCHESTRATION_SOURCE = "arbiter"
#: The most characters a completion token may have (what :func:`new_completion_token` makes is 43).
MAX_TOKEN_LENGTH = 128

#: A completion token on the wire: printable ASCII without spaces, bounded.
CompletionToken = Annotated[str, Field(min_length=16, max_length=MAX_TOKEN_LENGTH, pattern=r"^[!-~]+$")]


def new_completion_token() -> str:
    """A random secret for one task, made at dispatch: its completions must echo it to be accepted.

    Only the dispatcher (which stores it with the task) and the executor (which gets it in the task message) know
    it, so an event that merely has the right source and ids cannot complete the task.
    """
    return secrets.token_urlsafe(32)


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Whether ``given`` is the task's token, compared in constant time; a task without a token matches nothing."""
    if expected is None or given is None:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


class Event(Message):
    """An EventBridge event envelope (ingress events and the events the system emits).

    Only ``source``, ``detail-type`` and ``detail`` are required; ``id`` and ``time`` are filled in when missing, as
    EventBridge does on ``PutEvents``. Fields EventBridge may add later are kept.
    """

    model_config = Message.model_config | {"extra": "allow"}

    version: str = "0"
    id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1, max_length=256)
    detail_type: str = Field(alias="detail-type", min_length=1, max_length=256)
    source: str = Field(min_length=1, max_length=256)
    account: str = ""
    time: datetime = Field(default_factory=utcnow)
    region: str = ""
    resources: list[str] = Field(default_factory=list)
    detail: dict[str, Any]

    def same_content(self, other: Event) -> bool:
        """Whether ``other`` says the same as this event: source, detail-type, resources and detail.

        Two deliveries of one event (same id) always do; a replay of the id with other content does not: the first
        one is kept and the replay is a conflict.
        """
        mine = (self.source, self.detail_type, self.resources, self.detail)
        return mine == (other.source, other.detail_type, other.resources, other.detail)


class AgentRef(Message):
    """An agent pinned by name and version; ``version`` is ``None`` only for built-in capabilities."""

    name: str = Field(min_length=1, max_length=64)
    version: int | None = Field(None, ge=1)

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"


class Usage(Message):
    """Model token usage."""

    input_tokens: int = Field(0, ge=0)
    output_tokens: int = Field(0, ge=0)
    total_tokens: int = Field(0, ge=0)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
        )


class TaskError(Message):
    """Why an attempt failed. ``retryable=False`` tells the engine not to try again.

    ``agent_fault=False`` marks a failure of the host, not of the agent's code (its trusted call found no free slot
    because other agents' calls held them all): such an attempt never ran, so it is not counted in the agent's stats
    and reflection never quarantines the agent for it.
    """

    type: str = Field(min_length=1, max_length=256)
    message: str = Field("", max_length=65_536)
    retryable: bool = True
    agent_fault: bool = True


class _Aliased(Message):
    """A message that also writes and reads the seed generation's field names.

    ``_ALIASES`` maps an alias to a function of the canonical fields (for writing) and to the canonical field it
    fills (for reading; ``None`` when it cannot be read back on its own).
    """

    _ALIASES: ClassVar[dict[str, str | None]] = {}

    def _alias_values(self) -> dict[str, Any]:
        raise NotImplementedError

    @model_validator(mode="before")
    @classmethod
    def _read_aliases(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for alias, canonical in cls._ALIASES.items():
            if canonical is not None and alias in data and canonical not in data:
                data[canonical] = data[alias]
        return data

    @model_validator(mode="after")
    def _aliases_agree(self) -> _Aliased:
        extra = self.__pydantic_extra__ if self.__pydantic_extra__ is not None else {}
        for alias, value in self._alias_values().items():
            if alias in extra and extra.pop(alias) != value:
                raise ValueError(f"{alias} disagrees with its canonical field ({value!r})")
        return self

    @model_serializer(mode="wrap")
    def _write_aliases(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        data.update(self._alias_values())
        return data


class NoteSnapshot(Message):
    """A note as a task message carries it to the worker."""

    key: str = Field(min_length=1, max_length=256)
    value: Any = None
    version: int = Field(0, ge=0)
    author: str = Field("", max_length=128)


class TaskMessage(_Aliased):
    """What the queue carries to the wrapper: run ``agent`` on ``input`` for this attempt of this task.

    ``notes`` are the orchestration's notes as the dispatcher last read them, so that the wrapper need not read them
    (and every task of a wave sees the same ones): at the dispatch, or with the last wave's results when no write of
    its process changed them since (no task of the orchestration runs between two waves); ``None`` when they were too
    large to carry: the wrapper reads them.
    ``token`` is the task's completion token: the executor echoes it in the completion, which is refused without it.

    Schema ``arbiter.task/2`` added ``token``; ``/1`` messages (without one) are still read.
    """

    model_config = Message.model_config | {"extra": "allow"}
    _ALIASES: ClassVar[dict[str, str | None]] = {"tool_use_id": "task_id", "tool_input": "input", "node": None}

    schema_: Literal["arbiter.task/1", "arbiter.task/2"] = Field("arbiter.task/2", alias="schema")
    orchestration_id: str = Field(min_length=1, max_length=128)
    task_id: str = Field(min_length=1, max_length=128)
    attempt: int = Field(ge=1)
    agent: AgentRef
    input: dict[str, Any] = Field(default_factory=dict)
    deadline: datetime | None = None
    traceparent: str | None = None
    notes: list[NoteSnapshot] | None = None
    token: CompletionToken | None = Field(None, repr=False)

    def _alias_values(self) -> dict[str, Any]:
        return {"tool_use_id": self.task_id, "node": self.agent.name, "tool_input": self.input}


class CompletionEvent(_Aliased):
    """Detail of the ``task.completed`` event the wrapper emits after it wrote the result, for every attempt.

    ``closes_wave`` is ``True`` on exactly one completion per wave: the one whose write made every task of the wave
    done. Its receiver continues the orchestration. ``recorded`` says the wrapper's own write of the result applied;
    when it did not, the receiver records the result itself (idempotently). A large output travels by reference
    (``output_ref``, a SHA-256 in the payload store) instead of inline. ``token`` echoes the task message's token:
    the receiver accepts the completion only if it matches the one stored with the task.

    ``reactions`` are the ids of the reactive tasks the attempt's notes added (``pending``: the receiver dispatches
    them); ``exhausted`` names a budget a reaction ran into (the receiver ends the orchestration with it).

    Schema ``arbiter.completion/2`` added ``token``; ``/1`` completions are still read (and refused: they prove
    nothing). ``/3`` added ``reactions`` and ``exhausted``; earlier ones read as without any.
    """

    model_config = Message.model_config | {"extra": "allow"}
    _ALIASES: ClassVar[dict[str, str | None]] = {"tool_use_id": "task_id", "node": None, "data": None}

    schema_: Literal["arbiter.completion/1", "arbiter.completion/2", "arbiter.completion/3"] = Field(
        "arbiter.completion/3", alias="schema"
    )
    orchestration_id: str = Field(min_length=1, max_length=128)
    task_id: str = Field(min_length=1, max_length=128)
    attempt: int = Field(ge=1)
    agent: AgentRef
    status: Literal[TaskState.SUCCEEDED, TaskState.FAILED, TaskState.TIMED_OUT, TaskState.CANCELLED]
    output: Any = None
    output_ref: str | None = None
    error: TaskError | None = None
    duration_ms: float = Field(0.0, ge=0)
    usage: Usage = Field(default_factory=Usage)
    closes_wave: bool = False
    recorded: bool = False
    traceparent: str | None = None
    token: CompletionToken | None = Field(None, repr=False)
    reactions: list[str] = Field(default_factory=list, max_length=1000)
    exhausted: str | None = Field(None, max_length=64)

    def _alias_values(self) -> dict[str, Any]:
        data = self.output if self.error is None else f"{self.error.type}: {self.error.message}"
        return {"tool_use_id": self.task_id, "node": self.agent.name, "data": data}

    @property
    def asks_nothing(self) -> bool:
        """Whether its receiver has nothing to do with it (most completions of a wide wave).

        Recorded by the wrapper, closing no wave, naming no reactive task and no exhausted budget. Such a completion
        may be published late.
        """
        return self.recorded and not self.closes_wave and self.exhausted is None and not self.reactions

    def to_event(self) -> Event:
        """Wrap this detail in the ``arbiter.wrapper`` / ``task.completed`` envelope."""
        return Event.model_validate(
            {"source": COMPLETION_SOURCE, "detail-type": COMPLETION_DETAIL_TYPE, "detail": self.to_dict()}
        )


class OrchestrationFinished(Message):
    """Detail of ``orchestration.completed`` / ``orchestration.failed`` / ``orchestration.cancelled``."""

    schema_: Literal["arbiter.orchestration-finished/1"] = Field("arbiter.orchestration-finished/1", alias="schema")
    orchestration_id: str
    event_id: str
    status: OrchestrationStatus
    output: Any = None
    error: str | None = None
    waves: int = 0
    tasks: int = 0
    tokens: int = 0
    traceparent: str | None = None

    def to_event(self) -> Event:
        """Wrap this detail in the ``arbiter`` / ``orchestration.<status>`` envelope."""
        return Event.model_validate(
            {
                "source": ORCHESTRATION_SOURCE,
                "detail-type": f"orchestration.{self.status.value}",
                "detail": self.to_dict(),
            }
        )


#: The most acceptance examples one fabrication request may carry.
MAX_EXAMPLES = 5


class AcceptanceExample(Message):
    """An input the caller knows the answer for, and that answer.

    ``expected`` is a JSON value, or an object of the fields the caller needs (a subset of the output's fields);
    see :mod:`fabricator.compare` for how an output is compared with it.
    """

    input: dict[str, Any]
    expected: Any


class FabricationRequest(Message):
    """What the Fabricator is asked to build: a capability described in words, the inputs it takes, and examples.

    ``examples`` are acceptance examples from the caller (at most :data:`MAX_EXAMPLES`): a draft that does not
    reproduce every one of them is never published. ``replaces`` names an agent whose new version is wanted (a
    quarantined one) and ``replaces_version`` the version it follows (the new one is exactly ``replaces_version + 1``,
    so a duplicate request publishes nothing twice); ``evidence`` carries the failures that led to the request. A
    request with ``replaces`` has no task of its own: it comes from reflection, and ``orchestration_id`` /
    ``task_id`` name where the decision was taken.

    Schema ``arbiter.fabrication/2`` added ``examples`` and ``/3`` the task's completion ``token`` (see
    :class:`TaskMessage`); older messages are still read.
    """

    schema_: Literal["arbiter.fabrication/1", "arbiter.fabrication/2", "arbiter.fabrication/3"] = Field(
        "arbiter.fabrication/3", alias="schema"
    )
    orchestration_id: str = Field(min_length=1, max_length=128)
    task_id: str = Field(min_length=1, max_length=128)
    attempt: int = Field(1, ge=1)
    capability: str = Field(min_length=1, max_length=8000)
    inputs: dict[str, str] = Field(default_factory=dict)
    examples: list[AcceptanceExample] = Field(default_factory=list, max_length=MAX_EXAMPLES)
    replaces: str | None = None
    replaces_version: int | None = Field(None, ge=1)
    evidence: list[dict[str, Any]] = Field(default_factory=list)
    deadline: datetime | None = None
    traceparent: str | None = None
    token: CompletionToken | None = Field(None, repr=False)

    @model_validator(mode="after")
    def _examples_fit_inputs(self) -> FabricationRequest:
        problem = example_problem(self.inputs, self.examples)
        if problem is not None:
            raise ValueError(problem)
        return self


def example_problem(inputs: Mapping[str, Any], examples: Sequence[AcceptanceExample | Mapping[str, Any]]) -> str | None:
    """Why ``examples`` do not fit the declared ``inputs`` (naming the example and the field), or ``None``.

    With declared inputs, every example's input must give exactly those names; without any, examples must at least
    agree with each other on the names.
    """
    declared = set(inputs)
    for index, example in enumerate(examples):
        given = example.input if isinstance(example, AcceptanceExample) else example.get("input")
        if not isinstance(given, Mapping):
            return f"examples[{index}].input must be an object of input name -> value"
        names = set(given)
        if not declared:
            declared = names
            continue
        unknown, missing = sorted(names - declared), sorted(declared - names)
        if unknown:
            return (
                f"examples[{index}].input has the field {unknown[0]!r}, which is not one of the inputs "
                f"{sorted(declared)}"
            )
        if missing:
            return f"examples[{index}].input lacks the input {missing[0]!r} (the inputs are {sorted(declared)})"
    return None
