"""The ``Blackboard`` port: orchestrations, tasks, waves and notes.

Every state change is conditional. The base class turns each request into a *change function* that looks at the
stored task and returns the new one, or ``None`` when the request no longer applies (a duplicate completion, a stale
attempt, a task already claimed). Adapters run change functions atomically, one task at a time, with the stored
record as input, and keep the per-wave counter in the same atomic step.

Leases: a claim may name its holder and a lease expiry; the holder renews it (:meth:`Blackboard.renew_lease`), checks
it right before the handler starts (:meth:`Blackboard.check_start`), and the watchdog takes back an attempt whose
holder is gone (:meth:`Blackboard.reclaim`). The protocol and why it fences a lost holder: ``blackboard.leases``.

Closing a wave: each wave has a counter row ``(size, done, closed)``. A task change that makes a task *done*
(succeeded, cancelled, or failed/timed out with no retry coming) adds one to ``done`` in the same transaction, and
then sets ``closed`` under the condition ``done = size AND NOT closed``. Exactly one change meets that condition,
and only its caller gets ``closes_wave=True``: it is the one that continues the orchestration.

Unreadable records: the listing primitives return an :class:`~blackboard.quarantine.Unreadable` entry for a stored
record that fails to load; the port reports and skips it (:attr:`Blackboard.quarantine`), so one bad record never
stops a listing or the sweeper. :meth:`Blackboard.find_unreadable` and :meth:`Blackboard.set_aside` are
``arbiter doctor``'s tools.
"""

from __future__ import annotations

import abc
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Literal, TypeVar

from blackboard._base import revalidate, utcnow
from blackboard.exceptions import (
    InvalidTransitionError,
    NotFoundError,
    RecordValidationError,
    UnreadableRecordError,
)
from blackboard.leases import holds
from blackboard.messages import Event
from blackboard.ports.observers import BlackboardObserver, Observers
from blackboard.quarantine import QuarantineLog, Unreadable
from blackboard.records import Note, Orchestration, Task, TaskResult
from blackboard.states import (
    ACTIVE_TASK_STATES,
    CLAIMABLE_TASK_STATES,
    OrchestrationStatus,
    TaskState,
    check_orchestration_transition,
    check_task_transition,
)

__all__ = ["Applied", "Blackboard", "Completion", "Reacted", "TaskChange", "Transition", "WaveView", "became_done"]

logger = logging.getLogger(__name__)

_R = TypeVar("_R")

#: Looks at the stored task and returns its next form, or ``None`` when the change does not apply.
TaskChange = Callable[[Task], Task | None]


@dataclass(frozen=True, slots=True)
class Applied(Generic[_R]):
    """Outcome of a conditional write: whether it applied, and the record as stored after the call."""

    applied: bool
    record: _R


@dataclass(frozen=True, slots=True)
class Completion:
    """One result to record with :meth:`Blackboard.complete_many`."""

    orchestration_id: str
    task_id: str
    attempt: int
    result: TaskResult
    retry_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """Outcome of a conditional task change.

    Attributes:
        applied: whether the change was made (``False`` for duplicates and stale requests).
        task: the task as stored after the call.
        closes_wave: ``True`` for exactly one change per wave: the one after which every task of the wave is done.
    """

    applied: bool
    task: Task
    closes_wave: bool = False


#: Why :meth:`Blackboard.add_reactive_task` added nothing (``None``: it added the task).
ReactionRefusal = Literal[
    "duplicate", "cycle", "wave closed", "orchestration finished", "max_trigger_depth", "max_tasks", "conflicts"
]
#: What the ``_insert_reactive`` primitive reports.
InsertOutcome = Literal["inserted", "exists", "closed", "conflict"]
_REACTIVE_TRIES = 8


@dataclass(frozen=True, slots=True)
class Reacted:
    """Outcome of :meth:`Blackboard.add_reactive_task`.

    Attributes:
        task: the task as stored (the one stored earlier for a duplicate), or as it was offered when refused.
        refused: why nothing was added (``duplicate``: this note version already added it), or ``None``.
    """

    task: Task
    refused: ReactionRefusal | None = None

    @property
    def applied(self) -> bool:
        """Whether this call added the task."""
        return self.refused is None


@dataclass(frozen=True, slots=True)
class WaveView:
    """What :meth:`Blackboard.read_wave` read: an orchestration, its current wave's tasks and its notes.

    Attributes:
        orchestration: the orchestration as stored.
        tasks: the tasks of its current wave (``orchestration.wave``), in the order they were added; none before the
            first wave. Unreadable ones are skipped and reported, as by :meth:`Blackboard.list_tasks`.
        notes: every note, ordered by key (unreadable ones skipped and reported).
        task: the task asked for by id, whatever its wave, or ``None`` when there is no such task.
    """

    orchestration: Orchestration
    tasks: list[Task]
    notes: list[Note]
    task: Task | None = None


def became_done(before: Task, after: Task) -> bool:
    """Whether a change turns a task that was still to finish into a done one (it then counts for its wave)."""
    return after.done and not before.done


class Blackboard(abc.ABC):
    """Shared state of orchestrations. Subclasses implement the ``_``-prefixed primitives.

    Args:
        clock: returns "now" as an aware UTC datetime; injected so tests can move time.
    """

    def __init__(self, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._clock = clock
        #: The unreadable records this instance skipped, counted by kind (each also logged with its key).
        self.quarantine = QuarantineLog()
        self._conflicts = 0
        self._conflicts_lock = threading.Lock()
        self._observers = Observers()

    @property
    def event_conflicts(self) -> int:
        """How many replays of an event id with other content this blackboard deduplicated (see ``create``)."""
        return self._conflicts

    def watch(self, observer: BlackboardObserver) -> None:
        """Tell ``observer`` of every change this instance applies from now on (see :mod:`blackboard.ports.observers`).

        Only this process's writes through this object are seen.
        """
        self._observers.add(observer)

    def unwatch(self, observer: BlackboardObserver) -> None:
        """Stop telling ``observer`` (nothing happens if it was not watching)."""
        self._observers.remove(observer)

    # ---------------------------------------------------------------- orchestrations

    def create_orchestration(self, orchestration: Orchestration) -> Applied[Orchestration]:
        """Store a new orchestration; idempotent on the triggering event's id.

        A replay of an event id with other content (source, detail-type, resources or detail) is deduplicated too:
        the first event is kept. It is a conflict: logged as a warning and counted in :attr:`event_conflicts`.

        Returns:
            ``applied=True`` with the stored record (version 1), or ``applied=False`` with the orchestration that
            the same event id already created.
        """
        if orchestration.version != 0:
            raise RecordValidationError("Orchestration", "version", "a new orchestration has version 0")
        if orchestration.status is not OrchestrationStatus.RUNNING or orchestration.wave != 0:
            raise RecordValidationError("Orchestration", "status", "a new orchestration is running with no wave")
        stored = orchestration.model_copy(update={"version": 1})
        existing = self._insert_orchestration(stored)
        if existing is None:
            self._observers.orchestration_changed(stored)
            return Applied(True, stored)
        if existing.event.id == orchestration.event.id and not existing.event.same_content(orchestration.event):
            with self._conflicts_lock:
                self._conflicts += 1
            logger.warning(
                "event_id=<%s>, orchestration_id=<%s>, source=<%r>, detail_type=<%r> | event id replayed with other "
                "content: deduplicated, the first event is kept (conflict)",
                orchestration.event.id,
                existing.id,
                orchestration.event.source,
                orchestration.event.detail_type,
            )
        return Applied(False, existing)

    def get_orchestration(self, orchestration_id: str) -> Orchestration:
        """Return the orchestration with this id.

        Raises:
            OrchestrationNotFoundError: when there is none.
        """
        return self._get_orchestration(orchestration_id)

    def find_orchestration(self, event_id: str) -> Orchestration | None:
        """Return the orchestration created by the event with this id, if any."""
        return self._find_orchestration(event_id)

    def list_orchestrations(
        self, status: OrchestrationStatus | None = None, *, limit: int = 100
    ) -> list[Orchestration]:
        """Return up to ``limit`` orchestrations, newest first, optionally only those with ``status``.

        Unreadable orchestrations are skipped (and reported, see :attr:`quarantine`), so fewer may come back.
        """
        return self.quarantine.readable(self._list_orchestrations(status, limit))

    def update_orchestration(self, current: Orchestration, **changes: Any) -> Applied[Orchestration]:
        """Apply ``changes`` to ``current`` if the stored version is still ``current.version``.

        Raises:
            InvalidTransitionError: when the status change is not allowed (a finished orchestration never changes).
        """
        changed = self._next_orchestration(current, changes)
        if self._cas_orchestration(changed, current.version):
            self._observers.orchestration_changed(changed)
            return Applied(True, changed)
        return Applied(False, self._get_orchestration(current.id))

    def add_wave(self, current: Orchestration, tasks: Sequence[Task], **changes: Any) -> Applied[Orchestration]:
        """Start the next wave: store ``tasks`` as ``pending`` together with the orchestration, atomically.

        The orchestration's ``wave`` and its usage of waves and tasks go up; ``changes`` (the model's turn appended
        to the conversation, token usage...) are applied in the same write. Nothing is written if the stored
        version is no longer ``current.version``.
        """
        if current.status is not OrchestrationStatus.RUNNING:
            raise InvalidTransitionError("orchestration", current.status, "next wave")
        wave = current.wave + 1
        if not tasks:
            raise RecordValidationError("Task", "", "a wave has at least one task")
        seen: set[str] = set()
        for task in tasks:
            if task.orchestration_id != current.id or task.wave != wave:
                raise RecordValidationError(
                    "Task", "wave", f"task {task.task_id} is not in wave {wave} of {current.id}"
                )
            if task.state is not TaskState.PENDING or task.attempt != 1:
                raise RecordValidationError("Task", "state", f"task {task.task_id} must start pending at attempt 1")
            if task.task_id in seen:
                raise RecordValidationError("Task", "task_id", f"task id {task.task_id} appears twice in the wave")
            seen.add(task.task_id)
        base = changes.pop("usage", current.usage)  # the caller's usage (tokens...) plus this wave's counts
        usage = base.model_copy(update={"waves": base.waves + 1, "tasks": base.tasks + len(tasks)})
        changed = self._next_orchestration(current, {**changes, "usage": usage, "wave": wave})
        stamped = [
            t.model_copy(update={"created_at": changed.updated_at, "updated_at": changed.updated_at}) for t in tasks
        ]
        if self._insert_wave(changed, current.version, stamped):
            self._observers.wave_added(changed, stamped)
            return Applied(True, changed)
        return Applied(False, self._get_orchestration(current.id))

    def add_reactive_task(self, task: Task) -> Reacted:
        """Add a reactive task to its (running) wave: once, within the orchestration's budgets.

        One atomic write stores the task ``pending``, grows its wave by one (so the wave does not close before it is
        done) and counts it in the orchestration's task usage, on three conditions: no task with its id exists (its
        id is derived from the agent version and the note version that fired it: duplicates and racing writers of
        one note add it once), the wave is not closed, and the orchestration's version is the one read (else it is
        read again and the budget checked again). A reaction past ``max_trigger_depth`` is refused; one past
        ``max_tasks`` is refused and marks the orchestration ``exhausted`` so that the engine ends it ``failed``
        with that budget named.

        Args:
            task: a ``pending`` task at attempt 1 with ``reaction`` set, in the wave of the task that wrote the note.
        """
        if task.reaction is None or task.state is not TaskState.PENDING or task.attempt != 1:
            raise RecordValidationError("Task", "reaction", "a reactive task starts pending at attempt 1")
        for _ in range(_REACTIVE_TRIES):
            try:
                return Reacted(self._get_task(task.orchestration_id, task.task_id), "duplicate")
            except NotFoundError:
                pass
            current = self._get_orchestration(task.orchestration_id)
            if current.finished:
                return Reacted(task, "orchestration finished")
            if task.reaction.depth > current.budget.max_trigger_depth:
                return Reacted(task, "max_trigger_depth")
            usage = current.usage.model_copy(update={"tasks": current.usage.tasks + 1})
            if current.budget.exceeded_by(usage) == "max_tasks":
                marked = current
                while marked.exhausted is None and not marked.finished:  # another write may come first: read again
                    marked = self.update_orchestration(marked, exhausted="max_tasks").record
                return Reacted(task, "max_tasks")
            changed = self._next_orchestration(current, {"usage": usage})
            stamped = task.model_copy(update={"created_at": changed.updated_at, "updated_at": changed.updated_at})
            outcome = self._insert_reactive(changed, current.version, stamped)
            if outcome == "inserted":
                return Reacted(stamped)
            if outcome == "exists":
                return Reacted(self._get_task(task.orchestration_id, task.task_id), "duplicate")
            if outcome == "closed":
                return Reacted(task, "wave closed")
        return Reacted(task, "conflicts")

    # ---------------------------------------------------------------- tasks

    def get_task(self, orchestration_id: str, task_id: str) -> Task:
        """Return one task.

        Raises:
            TaskNotFoundError: when there is none.
        """
        return self._get_task(orchestration_id, task_id)

    def list_tasks(self, orchestration_id: str, wave: int | None = None) -> list[Task]:
        """Return the tasks of an orchestration (of one wave if given), in the order they were added.

        Unreadable tasks are skipped and reported (see :attr:`quarantine`).
        """
        return self.quarantine.readable(self._list_tasks(orchestration_id, wave))

    def read_wave(self, orchestration_id: str, task_id: str | None = None) -> WaveView:
        """Read an orchestration with the tasks of its current wave, its notes and, if named, one of its tasks.

        What the coordinator needs when a wave closes, read as one request where a backend keeps an orchestration's
        records together (DynamoDB: one Query of its partition instead of four reads); other backends read each in
        turn. Each record is as stored at the time it is read, as with the separate reads.

        Raises:
            OrchestrationNotFoundError: when there is no such orchestration.
        """
        orchestration = self.get_orchestration(orchestration_id)
        tasks = self.list_tasks(orchestration_id, wave=orchestration.wave) if orchestration.wave else []
        task = None
        if task_id is not None:
            task = next((t for t in tasks if t.task_id == task_id), None)
            if task is None:
                try:
                    task = self.get_task(orchestration_id, task_id)
                except NotFoundError:
                    task = None
        return WaveView(orchestration, tasks, self.notes(orchestration_id), task)

    def find_tasks(
        self,
        states: Iterable[TaskState],
        *,
        updated_before: datetime | None = None,
        deadline_before: datetime | None = None,
        retry_before: datetime | None = None,
        limit: int = 100,
    ) -> list[Task]:
        """Return tasks in ``states`` matching every given time bound; the sweeper's query.

        Args:
            states: the task states to look at.
            updated_before: only tasks last changed before this time (stranded ``pending``/``dispatched``).
            deadline_before: only tasks whose deadline is before this time (overdue).
            retry_before: only tasks whose retry is due before this time.
            limit: at most this many tasks (unreadable ones are skipped and reported, see :attr:`quarantine`).
        """
        found = self._find_tasks(frozenset(states), updated_before, deadline_before, retry_before, limit)
        return self.quarantine.readable(found)

    def mark_dispatched(self, tasks: Sequence[Task]) -> list[Transition]:
        """Mark ``pending`` tasks (at the given attempts) ``dispatched``, in one atomic batch."""
        return self._change_tasks([(t.orchestration_id, t.task_id, self._dispatch(t.attempt)) for t in tasks])

    def claim(
        self,
        orchestration_id: str,
        task_id: str,
        attempt: int,
        *,
        holder: str | None = None,
        lease_seconds: float | None = None,
    ) -> Transition:
        """Claim a task for execution: ``pending|dispatched → running`` if the attempt still matches.

        Args:
            orchestration_id: the orchestration.
            task_id: the task.
            attempt: the attempt the claimer was sent.
            holder: who claims it (``str(blackboard.leases.this_process())``); recorded on the task.
            lease_seconds: with a holder, the claim is valid this long unless renewed (:meth:`renew_lease`); the
                watchdog may take the attempt back after that. ``None``: no lease (only the deadline bounds it).
        """
        return self._change_task(orchestration_id, task_id, self._claim(attempt, holder, lease_seconds))

    def claim_many(
        self, tasks: Sequence[Task], *, holder: str | None = None, lease_seconds: float | None = None
    ) -> list[Transition]:
        """Claim several tasks (at the given attempts) in one atomic batch; see :meth:`claim`."""
        return self._change_tasks(
            [(t.orchestration_id, t.task_id, self._claim(t.attempt, holder, lease_seconds)) for t in tasks]
        )

    def renew_lease(
        self, orchestration_id: str, task_id: str, attempt: int, holder: str, lease_seconds: float
    ) -> Transition:
        """Extend the lease of a running attempt by ``lease_seconds`` from now, if ``holder`` still holds it.

        ``applied=False`` tells the holder it lost the attempt (reclaimed, timed out or cancelled).
        """
        expires = self._clock() + timedelta(seconds=lease_seconds)

        def change(task: Task) -> Task | None:
            if task.state is not TaskState.RUNNING or task.attempt != attempt or task.holder != holder:
                return None
            return task.model_copy(update={"lease_expires_at": expires})

        return self._change_task(orchestration_id, task_id, change)

    def check_start(self, orchestration_id: str, task_id: str, attempt: int, holder: str | None) -> Task | None:
        """The start fence: the task if ``attempt`` may start now (see :func:`blackboard.leases.holds`), else ``None``.

        Called right before a handler runs: the task is still ``running`` at ``attempt`` under ``holder``, and
        neither its lease nor its deadline has passed. Start the handler no later than
        :func:`blackboard.leases.start_by` of the returned task.
        """
        task = self._get_task(orchestration_id, task_id)
        return task if holds(task, attempt=attempt, holder=holder, now=self._clock()) else None

    def reclaim(self, seen: Task, result: TaskResult, *, retry_at: datetime | None = None) -> Transition:
        """Take back an attempt whose holder is gone: record ``result`` for it if nothing moved since ``seen``.

        ``seen`` is the running task as the caller read it when it decided the holder was gone (its lease expired,
        or its process no longer exists). The change applies only if the task is still running at the same attempt,
        under the same holder, with the same lease expiry: a holder that renewed meanwhile keeps its attempt.
        """
        complete = self._complete(Completion(seen.orchestration_id, seen.task_id, seen.attempt, result, retry_at))

        def change(task: Task) -> Task | None:
            same = (task.state, task.attempt, task.holder, task.lease_expires_at) == (
                TaskState.RUNNING,
                seen.attempt,
                seen.holder,
                seen.lease_expires_at,
            )
            return complete(task) if same and seen.holder is not None else None

        return self._change_task(seen.orchestration_id, seen.task_id, change)

    def complete(
        self,
        orchestration_id: str,
        task_id: str,
        attempt: int,
        result: TaskResult,
        *,
        retry_at: datetime | None = None,
    ) -> Transition:
        """Record the result of an attempt; a duplicate or a stale attempt changes nothing.

        Args:
            orchestration_id: the orchestration.
            task_id: the task.
            attempt: the attempt the result belongs to.
            result: the outcome; its status becomes the task's state.
            retry_at: for a failed or timed-out attempt, when to try again. Ignored (the task is done) when the
                attempts are used up or the error is not retryable.
        """
        return self.complete_many([Completion(orchestration_id, task_id, attempt, result, retry_at)])[0]

    def complete_many(self, completions: Sequence[Completion]) -> list[Transition]:
        """Record several results in one atomic batch (a group commit); see :meth:`complete`."""
        return self._change_tasks([(c.orchestration_id, c.task_id, self._complete(c)) for c in completions])

    def retry(
        self, orchestration_id: str, task_id: str, attempt: int, *, deadline: datetime | None = None
    ) -> Transition:
        """Start the next attempt of a failed or timed-out task that has a retry scheduled: back to ``pending``.

        Args:
            orchestration_id: the orchestration.
            task_id: the task.
            attempt: the attempt that failed.
            deadline: the new attempt's deadline (the task keeps its old one if ``None``).
        """
        now = self._clock()

        def change(task: Task) -> Task | None:
            waiting = task.state in (TaskState.FAILED, TaskState.TIMED_OUT) and task.retry_at is not None
            if task.attempt != attempt or not waiting or task.result is None:
                return None
            return task.model_copy(
                update={
                    "state": TaskState.PENDING,
                    "attempt": attempt + 1,
                    "attempts": [*task.attempts, task.result],
                    "result": None,
                    "retry_at": None,
                    "deadline": deadline or task.deadline,
                    "updated_at": now,
                }
            )

        return self._change_task(orchestration_id, task_id, change)

    def cancel(self, orchestration_id: str, task_id: str, reason: str = "cancelled") -> Transition:
        """Cancel a task that is not done yet (whatever its attempt)."""
        now = self._clock()

        def change(task: Task) -> Task | None:
            if task.done:
                return None
            result = TaskResult(status=TaskState.CANCELLED, attempt=task.attempt, finished_at=now)
            previous = [task.result] if task.result is not None else []
            return task.model_copy(
                update={
                    "state": TaskState.CANCELLED,
                    "result": result.model_copy(update={"output": reason}),
                    "attempts": [*task.attempts, *previous],
                    "retry_at": None,
                    "updated_at": now,
                    "holder": None,
                    "lease_expires_at": None,
                }
            )

        return self._change_task(orchestration_id, task_id, change)

    def _dispatch(self, attempt: int) -> TaskChange:
        now = self._clock()

        def change(task: Task) -> Task | None:
            if task.attempt != attempt or task.state is not TaskState.PENDING:
                return None
            return task.model_copy(update={"state": TaskState.DISPATCHED, "updated_at": now})

        return change

    def _claim(self, attempt: int, holder: str | None = None, lease_seconds: float | None = None) -> TaskChange:
        now = self._clock()
        lease = None if holder is None or lease_seconds is None else now + timedelta(seconds=lease_seconds)

        def change(task: Task) -> Task | None:
            if task.attempt != attempt or task.state not in CLAIMABLE_TASK_STATES:
                return None
            return task.model_copy(
                update={"state": TaskState.RUNNING, "updated_at": now, "holder": holder, "lease_expires_at": lease}
            )

        return change

    def _complete(self, completion: Completion) -> TaskChange:
        result, retry_at, attempt = completion.result, completion.retry_at, completion.attempt
        if retry_at is not None and result.status not in (TaskState.FAILED, TaskState.TIMED_OUT):
            raise RecordValidationError("TaskResult", "status", "only a failed or timed-out attempt is retried")
        result = result.model_copy(update={"attempt": attempt})
        now = self._clock()

        def change(task: Task) -> Task | None:
            if task.attempt != attempt or task.state not in ACTIVE_TASK_STATES:
                return None
            retryable = result.error is None or result.error.retryable
            retry = retry_at if retryable and task.attempt < task.max_attempts else None
            return task.model_copy(
                update={
                    "state": TaskState(result.status),
                    "result": result,
                    "retry_at": retry,
                    "updated_at": now,
                    "holder": None,
                    "lease_expires_at": None,
                }
            )

        return change

    def _change_task(self, orchestration_id: str, task_id: str, change: TaskChange) -> Transition:
        return self._change_tasks([(orchestration_id, task_id, change)])[0]

    def _change_tasks(self, changes: Sequence[tuple[str, str, TaskChange]]) -> list[Transition]:
        before: dict[tuple[str, str], TaskState] = {}  # the state the last run of each change saw

        def checked(change: TaskChange) -> TaskChange:
            def run(task: Task) -> Task | None:
                changed = change(task)
                if changed is not None and changed.state is not task.state:  # same state: a lease renewal
                    check_task_transition(task.state, changed.state)
                before[task.orchestration_id, task.task_id] = task.state
                return changed

            return run

        transitions = self._apply_task_changes([(o, t, checked(c)) for o, t, c in changes])
        self._tell(transitions, before)
        return transitions

    def _tell(self, transitions: Iterable[Transition], before: dict[tuple[str, str], TaskState]) -> None:
        """Tell the observers of the applied task changes (see :meth:`watch`)."""
        if not self._observers:
            return
        for transition in transitions:
            task = transition.task
            if transition.applied:
                self._observers.task_changed(before.get((task.orchestration_id, task.task_id), task.state), task)

    # ---------------------------------------------------------------- notes

    def get_note(self, orchestration_id: str, key: str) -> Note | None:
        """Return one note, or ``None``."""
        return self._get_note(orchestration_id, key)

    def notes(self, orchestration_id: str) -> list[Note]:
        """Return every note of an orchestration, ordered by key (unreadable ones skipped and reported)."""
        return self.quarantine.readable(self._list_notes(orchestration_id))

    def put_note(
        self, orchestration_id: str, key: str, value: Any, *, author: str = "", expected_version: int = 0
    ) -> Applied[Note]:
        """Write a note if its stored version is ``expected_version`` (0: the note must not exist yet).

        Returns:
            ``applied=False`` with the stored note when another writer got there first.
        """
        note = Note(
            orchestration_id=orchestration_id,
            key=key,
            value=value,
            author=author,
            version=expected_version + 1,
            updated_at=self._clock(),
        )
        if self._cas_note(note, expected_version):
            self._observers.note_written(note)
            return Applied(True, note)
        current = self._get_note(orchestration_id, key)
        if current is None:
            # Expected a version of a note that does not exist: nothing to compare with, nothing applied.
            current = note.model_copy(update={"version": 0, "value": None})
        return Applied(False, current)

    # ---------------------------------------------------------------- unreadable records

    def find_unreadable(self, *, limit: int = 10_000) -> list[Unreadable]:
        """Every unreadable record among the newest ``limit`` orchestrations, their tasks and their notes."""
        found: list[Unreadable] = []
        for entry in self._list_orchestrations(None, limit):
            orchestration_id = entry.key[0] if isinstance(entry, Unreadable) else entry.id
            if isinstance(entry, Unreadable):
                found.append(entry)
            found.extend(t for t in self._list_tasks(orchestration_id, None) if isinstance(t, Unreadable))
            found.extend(n for n in self._list_notes(orchestration_id) if isinstance(n, Unreadable))
        return found

    def set_aside(self, entry: Unreadable) -> bool:
        """Move an unreadable record out of the way, keeping its stored form in the store's quarantine area.

        - an orchestration is replaced by a ``failed`` one with the same id and event id, whose error names the
          reason (its tasks and notes stay; the event is not run again);
        - a task or a note is moved aside; a task's orchestration, if readable and running, is marked ``failed``
          (its wave can no longer finish).

        Returns:
            whether a record was moved (``False`` when it is no longer stored as it was).
        """
        if not self._still_unreadable(entry):
            return False
        error = f"unreadable {entry.label} set aside by `arbiter doctor`: {entry.reason}"
        replacement = None
        if entry.kind == "orchestration":
            (orchestration_id,) = entry.key
            event_id = self._stored_event_id(orchestration_id)
            if event_id is None:
                return False
            now = self._clock()
            replacement = Orchestration(
                id=orchestration_id,
                status=OrchestrationStatus.FAILED,
                event=Event.model_validate(
                    {
                        "id": event_id,
                        "source": "arbiter.doctor",
                        "detail-type": "unreadable.orchestration",
                        "detail": {},
                    }
                ),
                error=error,
                version=1,
                created_at=now,
                updated_at=now,
            )
        moved = self._set_aside(entry, replacement)
        if moved and entry.kind == "task":
            self._fail_orchestration(entry.key[0], error)
        return moved

    def _still_unreadable(self, entry: Unreadable) -> bool:
        """Whether the record of ``entry`` is stored and still fails to load (``False`` if gone or readable now)."""
        read: dict[str, Callable[[], object]] = {
            "orchestration": lambda: self._get_orchestration(entry.key[0]),
            "task": lambda: self._get_task(entry.key[0], entry.key[1]),
            "note": lambda: self._get_note(entry.key[0], entry.key[1]),
        }
        try:
            read[entry.kind]()
        except UnreadableRecordError:
            return True
        except NotFoundError:
            return False
        return False

    def _fail_orchestration(self, orchestration_id: str, error: str) -> None:
        try:
            current = self._get_orchestration(orchestration_id)
        except UnreadableRecordError:
            return  # repaired on its own when doctor meets it
        if current.status is OrchestrationStatus.RUNNING:
            self.update_orchestration(current, status=OrchestrationStatus.FAILED, error=error)

    # ---------------------------------------------------------------- helpers

    def _next_orchestration(self, current: Orchestration, changes: dict[str, Any]) -> Orchestration:
        for forbidden in ("id", "version", "event", "created_at"):
            if forbidden in changes:
                raise RecordValidationError("Orchestration", forbidden, "cannot be changed")
        changed = revalidate(current, **changes, version=current.version + 1, updated_at=self._clock())
        check_orchestration_transition(current.status, changed.status)
        return changed

    # ---------------------------------------------------------------- primitives

    @abc.abstractmethod
    def _insert_orchestration(self, orchestration: Orchestration) -> Orchestration | None:
        """Insert unless an orchestration with the same id or event id exists; return that one, else ``None``."""

    @abc.abstractmethod
    def _get_orchestration(self, orchestration_id: str) -> Orchestration:
        """Return the orchestration or raise ``OrchestrationNotFoundError``."""

    @abc.abstractmethod
    def _find_orchestration(self, event_id: str) -> Orchestration | None:
        """Return the orchestration of this event id, if any."""

    @abc.abstractmethod
    def _list_orchestrations(self, status: OrchestrationStatus | None, limit: int) -> list[Orchestration | Unreadable]:
        """Return orchestrations newest first; a record that fails to load comes back as ``Unreadable``."""

    @abc.abstractmethod
    def _cas_orchestration(self, orchestration: Orchestration, expected_version: int) -> bool:
        """Replace the stored orchestration if its version is ``expected_version``."""

    @abc.abstractmethod
    def _insert_wave(self, orchestration: Orchestration, expected_version: int, tasks: list[Task]) -> bool:
        """Atomically: CAS the orchestration, insert the tasks, create the wave counter ``(len(tasks), 0, open)``."""

    @abc.abstractmethod
    def _insert_reactive(self, orchestration: Orchestration, expected_version: int, task: Task) -> InsertOutcome:
        """Insert a reactive task, grow its wave and CAS the orchestration, atomically: all of it or nothing.

        Returns ``exists`` when a task with its id exists, ``closed`` when its wave is closed or missing, ``conflict``
        when the orchestration's version is not ``expected_version``, else ``inserted``.
        """

    @abc.abstractmethod
    def _get_task(self, orchestration_id: str, task_id: str) -> Task:
        """Return the task or raise ``TaskNotFoundError``."""

    @abc.abstractmethod
    def _list_tasks(self, orchestration_id: str, wave: int | None) -> list[Task | Unreadable]:
        """Return tasks in insertion order (``Unreadable`` for a record that fails to load, whatever its wave)."""

    @abc.abstractmethod
    def _find_tasks(
        self,
        states: frozenset[TaskState],
        updated_before: datetime | None,
        deadline_before: datetime | None,
        retry_before: datetime | None,
        limit: int,
    ) -> list[Task | Unreadable]:
        """Return tasks in ``states`` within every given bound (``Unreadable`` for a record that fails to load)."""

    @abc.abstractmethod
    def _apply_task_changes(self, changes: Sequence[tuple[str, str, TaskChange]]) -> list[Transition]:
        """Run each change function on its stored task atomically, keeping wave counters in the same step.

        For each change: read the task (``TaskNotFoundError`` if missing), call the function; if it returns a task,
        store it and, when the task became done, add one to its wave's ``done`` and close the wave if
        ``done = size AND NOT closed`` (``closes_wave=True``). All changes of one call may share one transaction.
        """

    @abc.abstractmethod
    def _get_note(self, orchestration_id: str, key: str) -> Note | None:
        """Return the note or ``None``."""

    @abc.abstractmethod
    def _list_notes(self, orchestration_id: str) -> list[Note | Unreadable]:
        """Return the notes of an orchestration ordered by key (``Unreadable`` for a record that fails to load)."""

    @abc.abstractmethod
    def _cas_note(self, note: Note, expected_version: int) -> bool:
        """Write the note if the stored version is ``expected_version`` (0: absent)."""

    @abc.abstractmethod
    def _stored_event_id(self, orchestration_id: str) -> str | None:
        """The event id stored with an orchestration (readable or not), or ``None`` when there is none."""

    @abc.abstractmethod
    def _set_aside(self, entry: Unreadable, replacement: Orchestration | None) -> bool:
        """Move the stored record of ``entry`` aside and, for an orchestration, store ``replacement`` in its place.

        Atomic: the stored form goes to the store's quarantine area (with the reason and the time) in the same step.
        ``False`` when the record is not there (any more).
        """
