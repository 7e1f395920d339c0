"""Errors raised by the blackboard package, and :class:`ArbiterError`, the root of every error of the library.

:class:`ArbiterError` lives here, in the lowest layer, so that every package can derive from it:
``BlackboardError``, ``wrapper.WrapperError``, ``fabricator.FabricatorError`` and the arbiter package's own errors
(``UsageError``, ``PlannerError``) are all ``ArbiterError`` s; ``arbiter.errors`` re-exports them. ``retryable`` is
defined once, on the root.

Every error of this package derives from :class:`BlackboardError`. Configuration mistakes (:class:`ConfigurationError`
and its subclasses) are kept apart from run-time failures so that callers can tell "fix your setup" from "try again".
Retry logic keys on the ``retryable`` attribute, never on message text.
"""

from __future__ import annotations

__all__ = [
    "AgentNotFoundError",
    "ArbiterError",
    "BatchFailedError",
    "BlackboardError",
    "ConfigurationError",
    "IntegrityError",
    "InvalidTransitionError",
    "MessageTooLargeError",
    "NotFoundError",
    "OrchestrationNotFoundError",
    "PatternError",
    "RecordValidationError",
    "ReservedNameError",
    "ReservedSourceError",
    "StoreCorruptError",
    "StoreUnavailableError",
    "StrictJsonError",
    "TaskNotFoundError",
    "TriggerError",
    "UnreadableRecordError",
    "VersionConflictError",
]


class ArbiterError(Exception):
    """Root of every error raised by Arbiter's packages (blackboard, wrapper, fabricator, arbiter).

    Catch it to catch anything the library raises on purpose; retry logic keys on ``retryable`` (a class attribute
    that subclasses or instances override), never on message text.

    Attributes:
        retryable: whether repeating the same call may succeed (``False`` unless the error says otherwise).
    """

    retryable: bool = False


class BlackboardError(ArbiterError):
    """Root of every error raised by the blackboard package (``retryable`` as :class:`ArbiterError`)."""


class ConfigurationError(BlackboardError):
    """The blackboard was set up wrongly (bad path, bad option); fix the configuration, do not retry."""


class StoreCorruptError(ConfigurationError):
    """A store file is corrupt, foreign (not an Arbiter store) or from a newer, unsupported schema."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class StoreUnavailableError(BlackboardError):
    """A store could not be reached or stayed locked past its timeout. Retrying later may succeed."""

    retryable = True


class PatternError(ConfigurationError):
    """An event pattern is not valid (unknown operator, wrong operand type, empty list)."""


class RecordValidationError(BlackboardError, ValueError):
    """A record or message failed validation; ``field`` names the first offending field.

    Attributes:
        record: the name of the record or message type.
        field: dotted path of the first invalid field (``"detail-type"``, ``"agent.version"``), or ``""``.
    """

    def __init__(self, record: str, field: str, message: str) -> None:
        self.record = record
        self.field = field
        where = f"{record}.{field}" if field else record
        super().__init__(f"invalid {where}: {message}")


class TriggerError(RecordValidationError):
    """An agent's trigger is not valid; ``field`` names where (``triggers[1].pattern``, ``triggers[0].input.host``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__("AgentManifest", field, message)


class StrictJsonError(RecordValidationError):
    """A JSON document or value was refused at the strict JSON boundary (see :mod:`blackboard.strict_json`).

    Attributes:
        what: what was refused (``"event file events/e.json"``, ``"output"``).
        reason: why, in words (the value's path included when the problem is in a value).
        position: where: ``line L, column C`` in a text, or the path of the value (``$.detail.items[2]``).
    """

    def __init__(self, what: str, reason: str, position: str) -> None:
        self.what = what
        self.reason = reason
        self.position = position
        self.record = what
        self.field = position
        where = "" if position in reason or position == "$" else f" at {position}"
        BlackboardError.__init__(self, f"{what} refused: {reason}{where}")


class ReservedSourceError(RecordValidationError):
    """An event from outside names one of the engine's own sources (``arbiter``, ``arbiter.*``).

    Attributes:
        source: the source it gave.
    """

    def __init__(self, source: str, what: str = "event") -> None:
        self.source = source
        super().__init__(
            what,
            "source",
            f"{source!r} is reserved for the engine's own events (arbiter, arbiter.*); use a source of your own",
        )


class MessageTooLargeError(RecordValidationError):
    """A message or event is larger than its transport takes (SQS, EventBridge: 256 KiB). Refused before sending.

    Large values belong in the payload store, sent by reference (the engine does this for task outputs and notes).

    Attributes:
        identifier: the message or event id.
        size: its size in bytes, as the transport counts it.
        limit: the most the transport takes.
    """

    def __init__(self, record: str, identifier: str, size: int, limit: int, transport: str) -> None:
        self.identifier = identifier
        self.size = size
        self.limit = limit
        super().__init__(
            record,
            "",
            f"{identifier} is {size:,} bytes and {transport} takes at most {limit:,}; put large values in the"
            " payload store and send their reference",
        )


class BatchFailedError(BlackboardError):
    """Entries of a batch call (SQS ``SendMessageBatch``, EventBridge ``PutEvents``) still failed after retries.

    The other entries were accepted and are not sent again by a retry of the failed ones.

    Attributes:
        operation: the API call.
        failures: entry id (message or event id) -> ``(error code, error message)`` of each entry not accepted.
        accepted: ids of the entries that were accepted, in order.
        retryable: whether every failure was of a kind that may succeed later (throttling, an internal failure).
    """

    def __init__(
        self,
        operation: str,
        failures: dict[str, tuple[str, str]],
        accepted: list[str],
        *,
        retryable: bool,
        attempts: int,
    ) -> None:
        self.operation = operation
        self.failures = failures
        self.accepted = accepted
        self.retryable = retryable
        listed = ", ".join(f"{entry} ({code}: {message})" for entry, (code, message) in failures.items())
        advice = "send the failed ones again later" if retryable else "fix them: the service refused them"
        super().__init__(
            f"{operation}: {len(failures)} of {len(failures) + len(accepted)} entries failed after up to {attempts}"
            f" attempts: {listed}. The {len(accepted)} other entries were accepted; {advice}."
        )


class InvalidTransitionError(BlackboardError):
    """A caller asked for a state change that the state machine never allows (a programming error).

    A transition that is allowed but whose precondition no longer holds (a duplicate, a stale attempt) is not an
    error: it returns "not applied".
    """

    def __init__(self, kind: str, source: str, target: str) -> None:
        self.kind = kind
        self.source = source
        self.target = target
        super().__init__(f"{kind} cannot go from {source!r} to {target!r}")


class NotFoundError(BlackboardError, LookupError):
    """A record does not exist."""


class OrchestrationNotFoundError(NotFoundError):
    """No orchestration has this id."""

    def __init__(self, orchestration_id: str) -> None:
        self.orchestration_id = orchestration_id
        super().__init__(f"orchestration {orchestration_id!r} not found")


class TaskNotFoundError(NotFoundError):
    """No task has this id in this orchestration."""

    def __init__(self, orchestration_id: str, task_id: str) -> None:
        self.orchestration_id = orchestration_id
        self.task_id = task_id
        super().__init__(f"task {task_id!r} of orchestration {orchestration_id!r} not found")


class AgentNotFoundError(NotFoundError):
    """No agent manifest has this name (and version)."""

    def __init__(self, name: str, version: int | None = None) -> None:
        self.name = name
        self.version = version
        ref = name if version is None else f"{name}@{version}"
        super().__init__(f"agent {ref!r} not found")


class ReservedNameError(BlackboardError, ValueError):
    """An agent name is reserved by the system (``fabricate``, the package names) and cannot be registered."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"agent name {name!r} is reserved")


class VersionConflictError(BlackboardError):
    """A registry put skipped a version (versions are appended one at a time: 1, 2, 3...)."""

    def __init__(self, name: str, version: int, expected: int) -> None:
        self.name = name
        self.version = version
        self.expected = expected
        super().__init__(f"agent {name!r}: version {version} cannot be written, the next version is {expected}")


class IntegrityError(BlackboardError):
    """Stored content does not match its SHA-256: it was tampered with or corrupted. Never retried."""

    def __init__(self, sha256: str, actual: str) -> None:
        self.sha256 = sha256
        self.actual = actual
        super().__init__(f"content {sha256} failed its integrity check (its bytes hash to {actual})")


class UnreadableRecordError(BlackboardError):
    """A stored record cannot be loaded (bad JSON, too deeply nested, a document that no longer validates).

    Never retried: reading it again gives the same failure. Listings skip such records instead of raising (see
    :mod:`blackboard.quarantine`); ``arbiter doctor --repair`` sets them aside.

    Attributes:
        kind: ``orchestration``, ``task``, ``note`` or ``agent``.
        key: the record's key (see :class:`blackboard.quarantine.Unreadable`).
        reason: why it could not be loaded.
    """

    def __init__(self, kind: str, key: tuple[str, ...], reason: str) -> None:
        self.kind = kind
        self.key = key
        self.reason = reason
        super().__init__(f"{kind} {'/'.join(key)} is stored but cannot be read: {reason}; run `arbiter doctor`")
