"""Stored records: orchestrations, tasks, notes and agent manifests (see ARCHITECTURE "Records")."""

from __future__ import annotations

import bisect
import math
import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import Field, field_validator, model_validator

from blackboard._base import Record, new_id, utcnow
from blackboard.messages import AgentRef, CompletionEvent, CompletionToken, Event, TaskError, Usage, tokens_match
from blackboard.states import AgentOrigin, AgentState, OrchestrationStatus, TaskState
from blackboard.triggers import Trigger, check_triggers

__all__ = [
    "AGENT_NAME_PATTERN",
    "DURATION_BUCKETS_MS",
    "RESERVED_AGENT_NAMES",
    "TASK_ID_PATTERN",
    "AgentManifest",
    "AgentStats",
    "Budget",
    "BudgetUsage",
    "CodeRef",
    "Note",
    "Orchestration",
    "Reaction",
    "Task",
    "TaskResult",
    "duration_bucket",
]

#: Agent names double as model tool names, so they follow the strictest provider's tool-name rule.
AGENT_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"
#: Tool-use ids from model providers, used as task ids and storage keys.
TASK_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
#: Names no agent may take: the built-in capability and the package names.
RESERVED_AGENT_NAMES = frozenset({"fabricate", "arbiter", "fabricator", "wrapper", "blackboard", "system"})
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

AgentName = Annotated[str, Field(pattern=AGENT_NAME_PATTERN)]
TaskId = Annotated[str, Field(pattern=TASK_ID_PATTERN)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class Budget(Record):
    """Limits of one orchestration. Exhausting any of them ends it ``failed`` with the budget named.

    ``max_trigger_depth`` bounds chains of reactive tasks (a note written by a triggered agent may trigger another):
    a task the planner called is depth 0, one its note triggered depth 1, and so on; a reaction deeper than this is
    not added (0: no reactive tasks at all).
    """

    schema_: Literal["arbiter.budget/1"] = Field("arbiter.budget/1", alias="schema")
    max_waves: int = Field(10, ge=1)
    max_tasks: int = Field(50, ge=1)
    max_fabrications: int = Field(3, ge=0)
    max_tokens: int = Field(200_000, ge=1)
    timeout_seconds: float = Field(900.0, gt=0)
    max_trigger_depth: int = Field(3, ge=0)

    def exceeded_by(self, usage: BudgetUsage) -> str | None:
        """Return the name of the first limit that ``usage`` goes past, or ``None``."""
        for name, used, limit in (
            ("max_waves", usage.waves, self.max_waves),
            ("max_tasks", usage.tasks, self.max_tasks),
            ("max_fabrications", usage.fabrications, self.max_fabrications),
            ("max_tokens", usage.tokens, self.max_tokens),
        ):
            if used > limit:
                return name
        return None


class BudgetUsage(Record):
    """What an orchestration has used so far."""

    waves: int = Field(0, ge=0)
    tasks: int = Field(0, ge=0)
    fabrications: int = Field(0, ge=0)
    tokens: int = Field(0, ge=0)


class Orchestration(Record):
    """One run of the Arbiter for one ingress event.

    ``version`` counts stored writes (0 before the first); every update is a compare-and-set on it.
    ``wave`` is the number of the latest wave of tasks (0 before the first). ``planner`` and
    ``planning_expires_at`` are the lease of the process calling the model for it (see ``blackboard.leases``).
    ``exhausted`` names a budget a reactive task ran into (``max_tasks``): the engine then ends the orchestration
    ``failed`` with it at its next step. ``triggered_by`` is set on a **standing** orchestration: one a bus event
    started because it fired bus triggers (the key of that event, see :mod:`blackboard.standing`); it runs the
    triggered agents as its one wave and ends with their results, without a planner.
    """

    schema_: Literal["arbiter.orchestration/1"] = Field("arbiter.orchestration/1", alias="schema")
    id: str = Field(default_factory=new_id, min_length=1, max_length=128)
    event: Event
    status: OrchestrationStatus = OrchestrationStatus.RUNNING
    conversation: list[dict[str, Any]] = Field(default_factory=list)
    wave: int = Field(0, ge=0)
    budget: Budget = Field(default_factory=Budget)
    usage: BudgetUsage = Field(default_factory=BudgetUsage)
    deadline: datetime | None = None
    output: Any = None
    error: str | None = None
    version: int = Field(0, ge=0)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    traceparent: str | None = None
    planner: str | None = Field(None, max_length=512)
    planning_expires_at: datetime | None = None
    exhausted: str | None = Field(None, max_length=64)
    triggered_by: str | None = Field(None, max_length=256)

    @model_validator(mode="after")
    def _default_deadline(self) -> Orchestration:
        if self.deadline is None:
            # Frozen model: set through object.__setattr__ once, during validation.
            object.__setattr__(self, "deadline", self.created_at + timedelta(seconds=self.budget.timeout_seconds))
        return self

    @property
    def finished(self) -> bool:
        """Whether the orchestration reached a terminal status."""
        return self.status is not OrchestrationStatus.RUNNING

    @property
    def standing(self) -> bool:
        """Whether bus triggers started this orchestration (it has no planner: see ``triggered_by``)."""
        return self.triggered_by is not None


class TaskResult(Record):
    """Outcome of one attempt of a task."""

    status: Literal[TaskState.SUCCEEDED, TaskState.FAILED, TaskState.TIMED_OUT, TaskState.CANCELLED]
    output: Any = None
    output_ref: str | None = None
    error: TaskError | None = None
    duration_ms: float = Field(0.0, ge=0)
    usage: Usage = Field(default_factory=Usage)
    attempt: int = Field(1, ge=1)
    finished_at: datetime = Field(default_factory=utcnow)

    @classmethod
    def from_completion(cls, completion: CompletionEvent) -> TaskResult:
        """The result a completion event reports."""
        return cls(
            status=completion.status,
            output=completion.output,
            output_ref=completion.output_ref,
            error=completion.error,
            duration_ms=completion.duration_ms,
            usage=completion.usage,
            attempt=completion.attempt,
        )

    @model_validator(mode="after")
    def _error_matches_status(self) -> TaskResult:
        if self.status is TaskState.SUCCEEDED and self.error is not None:
            raise ValueError("a succeeded result carries no error")
        if self.status in (TaskState.FAILED, TaskState.TIMED_OUT) and self.error is None:
            raise ValueError(f"a {self.status.value} result needs an error")
        return self


class Reaction(Record):
    """Why a reactive task exists: a note written in its orchestration fired one of the agent's triggers.

    The task id is derived from ``(agent name@version, note key, note version)``, so one note version adds the task
    at most once. ``depth`` is 1 for a note written by a task the planner called, one more per reactive step;
    ``chain`` names the agents from the planner's task to this one (an agent already in it is not triggered again:
    a cycle). ``traceparent`` is the span of the write that fired it (the task's spans link to it).
    """

    note_key: str = Field(min_length=1, max_length=256)
    note_version: int = Field(ge=1)
    note_author: str = Field("", max_length=128)
    trigger: int = Field(ge=0)
    depth: int = Field(ge=1)
    chain: list[str] = Field(default_factory=list)
    cause_task_id: str | None = Field(None, max_length=128)
    traceparent: str | None = None


class Task(Record):
    """One call of one agent in one wave; ``task_id`` is the model's toolUseId.

    ``attempt`` starts at 1 and grows by one per retry; ``attempts`` keeps the results of earlier attempts.
    A failed or timed-out task with ``retry_at`` set is waiting for its next attempt and does not count as done.
    ``token`` is the secret its completions must echo (made at dispatch, carried in the task messages; ``None`` on
    tasks stored before tokens existed, whose completion events are then refused and whose waves the sweeper
    continues). It is never shown (``repr``, reports, the CLI).
    A ``running`` task claimed with a lease names its ``holder`` (``host/pid/start``) and ``lease_expires_at``
    (see ``blackboard.leases``); both are cleared when the attempt ends. ``reaction`` is set on a *reactive* task:
    one the engine added because a note fired a trigger of its agent, not one the planner called.
    """

    schema_: Literal["arbiter.taskrecord/1"] = Field("arbiter.taskrecord/1", alias="schema")
    orchestration_id: str = Field(min_length=1, max_length=128)
    task_id: TaskId
    wave: int = Field(ge=1)
    agent: AgentRef
    input: dict[str, Any] = Field(default_factory=dict)
    state: TaskState = TaskState.PENDING
    attempt: int = Field(1, ge=1)
    max_attempts: int = Field(3, ge=1)
    result: TaskResult | None = None
    attempts: list[TaskResult] = Field(default_factory=list)
    retry_at: datetime | None = None
    deadline: datetime | None = None
    holder: str | None = Field(None, max_length=512)
    lease_expires_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    token: CompletionToken | None = Field(None, repr=False)
    reaction: Reaction | None = None

    @property
    def reactive(self) -> bool:
        """Whether a trigger added this task (the planner did not call it: it has no tool use to answer)."""
        return self.reaction is not None

    def accepts(self, token: str | None) -> bool:
        """Whether a completion carrying ``token`` was issued for this task (a constant-time comparison)."""
        return tokens_match(self.token, token)

    @property
    def done(self) -> bool:
        """Whether this task will not run again: succeeded, cancelled, or failed with no retry coming."""
        if self.state in (TaskState.SUCCEEDED, TaskState.CANCELLED):
            return True
        return self.state in (TaskState.FAILED, TaskState.TIMED_OUT) and self.retry_at is None


class Note(Record):
    """A blackboard entry of an orchestration, written with compare-and-set on ``version``."""

    schema_: Literal["arbiter.note/1"] = Field("arbiter.note/1", alias="schema")
    orchestration_id: str = Field(min_length=1, max_length=128)
    key: str = Field(min_length=1, max_length=256)
    value: Any = None
    author: str = Field("", max_length=128)
    version: int = Field(0, ge=0)
    updated_at: datetime = Field(default_factory=utcnow)


class CodeRef(Record):
    """Where an agent's code lives: its SHA-256 and the store key."""

    sha256: Sha256
    key: str = Field(min_length=1, max_length=1024)


#: Upper bounds (inclusive, in ms) of the duration histogram of agent stats: x2 steps from 1 ms to about 1.2 h.
#: A duration above the last bound falls in one more, overflow bucket, so stats carry ``len(...) + 1`` counts.
#: Fixed for every backend (DynamoDB stores bucket i as attribute ``stats_d{i}``): never reorder, only append.
DURATION_BUCKETS_MS: tuple[int, ...] = tuple(2**i for i in range(23))
_BUCKETS = len(DURATION_BUCKETS_MS) + 1


def duration_bucket(duration_ms: float) -> int:
    """The index of the histogram bucket a duration falls in (the last index is the overflow bucket)."""
    return bisect.bisect_left(DURATION_BUCKETS_MS, math.ceil(max(duration_ms, 0.0)))


class AgentStats(Record):
    """Counters of one agent version, updated atomically on every completion.

    ``duration_buckets[i]`` counts invocations whose duration fell in bucket ``i`` of :data:`DURATION_BUCKETS_MS`
    (the last one: longer than the last bound). A shorter stored list (older data) is padded with zeros.
    ``example_checks`` counts the callers' acceptance examples this version has reproduced (when it was validated,
    and each time it was checked before being reused).
    """

    invocations: int = 0
    succeeded: int = 0
    failed: int = 0
    timed_out: int = 0
    total_ms: float = 0.0
    tokens: int = 0
    duration_buckets: list[int] = Field(default_factory=lambda: [0] * _BUCKETS)
    example_checks: int = 0

    @field_validator("duration_buckets")
    @classmethod
    def _fixed_length(cls, value: list[int]) -> list[int]:
        if len(value) > _BUCKETS:
            raise ValueError(f"at most {_BUCKETS} duration buckets, got {len(value)}")
        return [*value, *([0] * (_BUCKETS - len(value)))]

    @property
    def failures(self) -> int:
        """Invocations that failed or timed out."""
        return self.failed + self.timed_out

    @property
    def failure_rate(self) -> float:
        """The share of invocations that failed or timed out (0 before the first one)."""
        return self.failures / self.invocations if self.invocations else 0.0

    @property
    def mean_ms(self) -> float | None:
        """The mean duration of an invocation, or ``None`` before the first one."""
        return self.total_ms / self.invocations if self.invocations else None

    @property
    def p95_ms(self) -> float | None:
        """The 95th percentile duration, or ``None`` before the first invocation.

        Read from the histogram: the upper bound of the bucket that holds the 95th percentile invocation (so it is
        at most 2x the true value and never below it); in the overflow bucket, the last bound (then a lower bound).
        """
        return self.quantile_ms(0.95)

    def quantile_ms(self, q: float) -> float | None:
        """The ``q`` quantile (0 < q <= 1) of the durations, read from the histogram as :attr:`p95_ms` is."""
        if not 0 < q <= 1:
            raise ValueError(f"a quantile is in (0, 1], not {q}")
        counted = sum(self.duration_buckets)
        if counted == 0:
            return None
        rank = math.ceil(q * counted)
        seen = 0
        for index, count in enumerate(self.duration_buckets):
            seen += count
            if seen >= rank:
                if index < len(DURATION_BUCKETS_MS):
                    return float(DURATION_BUCKETS_MS[index])
                break
        return float(DURATION_BUCKETS_MS[-1])


class AgentManifest(Record):
    """One version of one worker agent in the registry.

    ``isolation`` is the explicit per-agent choice of how the wrapper runs it: ``sandbox`` (a child process; always
    for fabricated code) or ``in_process`` (only for trusted Python callables a user registers). ``output_schema``
    (a JSON Schema; fabricated agents always have one) is the output contract: the executor fails a run whose output
    does not match it. ``triggers`` make the agent reactive (see :mod:`blackboard.triggers`); a manifest stored
    before triggers existed reads as one without any.
    """

    schema_: Literal["arbiter.agent/1"] = Field("arbiter.agent/1", alias="schema")
    name: AgentName
    version: int = Field(ge=1)
    description: str = Field(min_length=1, max_length=8000)
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    output_schema: dict[str, Any] | None = None
    code: CodeRef
    entrypoint: str = Field("handler", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    state: AgentState = AgentState.ACTIVE
    origin: AgentOrigin = AgentOrigin.USER
    isolation: Literal["sandbox", "in_process"] = "sandbox"
    max_attempts: int | None = Field(None, ge=1)
    timeout_seconds: float = Field(60.0, gt=0)
    validation_report: Sha256 | None = None
    stats: AgentStats = Field(default_factory=AgentStats)
    embedding: list[float] | None = None
    embedding_model: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    triggers: list[Trigger] = Field(default_factory=list)

    @field_validator("input_schema")
    @classmethod
    def _is_object_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            Draft202012Validator.check_schema(value)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        if value.get("type") != "object":
            raise ValueError('must describe an object (its "type" must be "object")')
        return value

    @field_validator("output_schema")
    @classmethod
    def _is_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                Draft202012Validator.check_schema(value)
            except SchemaError as exc:
                raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        return value

    @model_validator(mode="after")
    def _triggers_fit_the_schema(self) -> AgentManifest:
        if self.triggers:
            check_triggers(self.triggers, self.input_schema)
        return self

    @property
    def ref(self) -> AgentRef:
        """This version as a pinned agent reference."""
        return AgentRef(name=self.name, version=self.version)
