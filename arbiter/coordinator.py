"""The coordinator: event → plan → persist → dispatch → (completions) → next wave → answer.

Every step is a conditional write on the blackboard, so that any number of coordinators (threads, processes,
Lambda invocations) can handle the same orchestration without losing or doubling work:

- the orchestration is created once per event id;
- a wave is stored (tasks ``pending`` + the model's turn) with a compare-and-set on the orchestration's version,
  then sent to the queue and marked ``dispatched`` (a crash in between leaves ``pending`` tasks that the sweeper
  sends again);
- a completion marks its task done; exactly one completion per wave is told ``closes_wave``; its handler appends the
  tool results with a compare-and-set (so a second continuer is a no-op) and calls the planner again;
- the orchestration ends ``completed`` when the model answers without tool calls, or ``failed`` with the name of the
  budget that ran out.

A completion is accepted only if it carries the token stored with its task at dispatch (see
:meth:`Coordinator.on_completion`): an event with the right source and ids but without the token records nothing.
A transient planner failure (throttling, a timeout, a 5xx answer) is retried with jitter within the orchestration's
deadline; a permanent one fails the orchestration with the reason. With ``raise_transient`` (on Lambda) a transient
failure that outlived its retries is raised, so that the platform delivers the event again: a redelivered event
takes the orchestration on from where it stopped (:meth:`Coordinator.resume`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from arbiter._planner_retry import PlannerRetry
from arbiter._planning_lease import RELEASED, PlanningLease, planning_held
from arbiter._standing import StandingOrchestrations
from arbiter._tool_calls import (
    copied_phrase,
    fabricated_names,
    fabrication_refusal,
    observed_examples,
    query_text,
    schema_problem,
    task_message,
    unique_ids,
    unused_fabrications,
    waiting_for_results,
    with_ids,
)
from arbiter.exceptions import PlannerError
from arbiter.planner import Planner, PlannerTurn, ToolCall
from arbiter.prompts import FABRICATE_TOOL, agent_tool_spec, event_message, tool_results_message, unused_reminder
from arbiter.reflection import ReflectionPolicy, Reflector
from blackboard import (
    AgentManifest,
    AgentNotFoundError,
    AgentRef,
    AgentStats,
    Applied,
    Backends,
    BlackboardError,
    Budget,
    BudgetUsage,
    CompletionEvent,
    Event,
    FabricationRequest,
    Note,
    NotFoundError,
    Orchestration,
    OrchestrationFinished,
    OrchestrationStatus,
    RetryPolicy,
    Task,
    TaskError,
    TaskResult,
    TaskState,
    WaveView,
    tracing,
)
from blackboard._base import utcnow
from blackboard.leases import DEFAULT_LEASE_SECONDS
from blackboard.messages import NoteSnapshot, example_problem, new_completion_token
from blackboard.ports.registry import StatsDelta
from wrapper.call_checks import call_checks
from wrapper.matching import Matcher

__all__ = ["Coordinator", "EngineSettings"]

logger = logging.getLogger(__name__)

FABRICATE = FABRICATE_TOOL["name"]
#: Notes up to this size (JSON) travel in the task messages; larger ones the wrapper reads from the blackboard.
MAX_CARRIED_NOTES_BYTES = 32 * 1024


@dataclass(frozen=True)
class EngineSettings:
    """Engine defaults; every orchestration may override the budget.

    Attributes:
        budget: the default budget of an orchestration.
        max_attempts: attempts per task unless the agent sets its own.
        retry: backoff between attempts.
        queue_grace_seconds: time a task may wait in the queue on top of the agent's timeout before it times out.
        reflection: when failing agents are quarantined and rewritten (default: from the environment).
        planner_retry: how transient planner failures are retried within one step (and the orchestration's deadline).
        raise_transient: raise a transient planner failure that outlived its retries (the caller's platform retries
            the whole event: EventBridge on Lambda) instead of failing the orchestration with it.
        stalled_after_seconds: how long an orchestration must be idle (no write, no planning lease) before the
            watchdog continues it, and a task ``pending`` before it is sent again.
        lease_seconds: the lease of a planner turn on its orchestration (renewed while the model thinks; see
            ``blackboard.leases``).
    """

    budget: Budget = field(default_factory=Budget)
    max_attempts: int = 3
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    queue_grace_seconds: float = 60.0
    reflection: ReflectionPolicy = field(default_factory=ReflectionPolicy.from_env)
    planner_retry: PlannerRetry = field(default_factory=PlannerRetry)
    raise_transient: bool = False
    stalled_after_seconds: float = 60.0
    lease_seconds: float = DEFAULT_LEASE_SECONDS


FabricationHandler = Callable[[FabricationRequest], None]


class Coordinator:
    """Drives orchestrations over a set of backends with one planning model.

    Args:
        backends: the blackboard, registry, queue and bus.
        planner: the planning model.
        settings: engine defaults.
        fabricate: where ``fabricate`` tasks go (the Fabricator's queue); without one they fail with a clear error.
        matcher: offers the planner the ``top_k`` agents that fit the orchestration instead of every active agent.
        top_k: how many agents a planning call sees (plus ``fabricate``).
        clock: returns "now" (aware UTC).
        sleep: waits between planner retries (seconds).

    Attributes:
        refused_completions: how many completion events this coordinator refused (no or a wrong token).
    """

    def __init__(
        self,
        backends: Backends,
        planner: Planner,
        settings: EngineSettings | None = None,
        *,
        fabricate: FabricationHandler | None = None,
        matcher: Matcher | None = None,
        top_k: int = 8,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.backends = backends
        self.planner = planner
        self.settings = settings or EngineSettings()
        self._fabricate = fabricate
        self.matcher = matcher
        self.top_k = top_k
        self._clock = clock
        self._sleep = sleep
        self.refused_completions = 0
        self.reflector = Reflector(backends, self.settings.reflection, fabricate)
        # orchestration id -> (thread planning it, nesting depth): a wave refused whole is answered and planned
        # again within the same call, in the same thread.
        self._planning: dict[str, tuple[int, int]] = {}
        self._planning_lock = threading.Lock()
        # (orchestration id, thread) -> the orchestration's notes as this thread last read them before planning
        # (see _notes_known): the next dispatch in that thread carries them instead of reading them again.
        self._known_notes: dict[tuple[str, int], list[Note]] = {}
        self._standing = StandingOrchestrations(self)

    def is_planning(self, orchestration_id: str) -> bool:
        """Whether this coordinator is calling the model for the orchestration right now.

        A slow model is not a stalled orchestration: the watchdog must not plan it a second time meanwhile.
        """
        with self._planning_lock:
            return orchestration_id in self._planning

    # ---------------------------------------------------------------- ingress

    def create(
        self,
        event: Event,
        budget: Budget | None = None,
        *,
        triggered_by: str | None = None,
        links: Sequence[str | None] = (),
    ) -> Applied[Orchestration]:
        """Store the orchestration for ``event`` (once per event id) without planning it.

        The root span of the orchestration's trace opens here; its ``traceparent`` is stored in the orchestration,
        and every later step (planned here or in another thread or process) continues that trace.

        Args:
            event: the event (its id is the key of the conditional create).
            budget: the orchestration's budget (default: the engine's).
            triggered_by: for a standing orchestration (see :meth:`trigger`), the key of the bus event.
            links: spans the root span links to (the span that published a bus event).

        Returns:
            ``applied=True`` with the new record, or ``applied=False`` with the one the same event id created.
        """
        return self._create(event, budget, triggered_by=triggered_by, links=links)

    def _create(
        self,
        event: Event,
        budget: Budget | None = None,
        *,
        triggered_by: str | None = None,
        links: Sequence[str | None] = (),
        lease: PlanningLease | None = None,
    ) -> Applied[Orchestration]:
        """:meth:`create`, with ``lease`` taken by the same write when given (for a first turn planned at once)."""
        attributes: tracing.Attributes = {"arbiter.event_id": event.id, "arbiter.triggered_by": triggered_by}
        with tracing.start_span(
            "arbiter.orchestration", attributes=attributes, links=links, root=triggered_by is not None
        ) as span:
            orchestration = Orchestration(
                event=event,
                budget=budget or self.settings.budget,
                conversation=[event_message(event)],
                created_at=self._clock(),
                updated_at=self._clock(),
                traceparent=tracing.current_traceparent(),
                triggered_by=triggered_by,
                **({} if lease is None else lease.fields()),
            )
            created = self.backends.blackboard.create_orchestration(orchestration)
            if created.applied:
                if span is not None:
                    span.set_attribute("arbiter.orchestration_id", created.record.id)
                logger.debug("orchestration_id=<%s>, event_id=<%s> | started", created.record.id, event.id)
            else:
                logger.debug("event_id=<%s> | orchestration exists, not starting again", event.id)
            return created

    def start(self, event: Event, budget: Budget | None = None, *, read_back: bool = True) -> Orchestration:
        """Create the orchestration for ``event`` (once per event id) and plan its first wave, in this thread.

        An orchestration the same event created before is taken on from where it stopped (a redelivery after a
        transient failure was raised, say); when it is not stuck this does nothing.

        Args:
            event: the event.
            budget: its budget (default: the engine's).
            read_back: return the orchestration as it is after the planning (one read); ``False`` returns it as
                created, or as the same event created it before (its id and event are all a caller that only
                reports them needs, like the Lambda handler).
        """
        # The first turn's planning lease is taken by the write that creates the orchestration.
        lease = PlanningLease(self.backends.blackboard, self._clock, self.settings.lease_seconds)
        created = self._create(event, budget, lease=lease)
        with tracing.bind(orchestration_id=created.record.id):
            if created.applied:
                with self._notes_known(created.record.id, []):  # nothing could have noted a new one before
                    self.plan(created.record, lease=lease)
            else:
                self.resume(created.record.id)
        return self.backends.blackboard.get_orchestration(created.record.id) if read_back else created.record

    def trigger(self, event: Event) -> Orchestration | None:
        """Start the standing orchestration for a bus event that fires agents' bus triggers (once per event).

        Its one wave runs every agent whose bus trigger fires (stored before dispatch, within the engine's budget);
        no planner is called; it ends with their outputs (see :mod:`blackboard.standing`). The same event delivered
        again takes its orchestration on from where it stopped.

        Returns:
            The standing orchestration, or ``None`` when no active agent's bus trigger fires for the event.
        """
        return self._standing.trigger(event)

    def on_bus_event(self, event: Event) -> None:
        """Bus handler for bus triggers: every event but the engine's control flow (see :meth:`trigger`)."""
        self._standing.trigger(event)

    # ---------------------------------------------------------------- completions

    def on_event(self, event: Event) -> None:
        """Bus handler for ``task.completed`` events (see :meth:`on_completion`).

        Raises:
            RecordValidationError: the detail is not a completion.
        """
        self.on_completion(CompletionEvent.parse(event.detail))

    def on_completion(self, completion: CompletionEvent) -> bool:
        """Record a completion (a no-op if the wrapper did) and continue the orchestration if it closed the wave.

        The completion must carry its task's token (made at dispatch, known only to the dispatcher and the executor
        that ran the attempt): one without it, with another, or for a task that does not exist is refused (logged,
        counted in :attr:`refused_completions`) and nothing is recorded or continued. A completion that asks for
        nothing (the wrapper recorded it, it closes no wave, names no reactive task and no exhausted budget) is
        acknowledged without reading its task: most completions of a wide wave are such.

        Returns:
            Whether the completion was accepted.
        """
        attributes: tracing.Attributes = {
            "arbiter.task_id": completion.task_id,
            "arbiter.closes_wave": completion.closes_wave,
        }
        with (
            tracing.start_span("arbiter.completion", parent=completion.traceparent, attributes=attributes),
            tracing.bind(orchestration_id=completion.orchestration_id, task_id=completion.task_id),
        ):
            if completion.asks_nothing:
                # Recorded by the wrapper, closing no wave, naming no reaction or budget: it asks for nothing, so
                # there is nothing to refuse either (a forged one changes nothing): no read of its task.
                return True
            view: WaveView | None = None
            only_closes = completion.recorded and completion.exhausted is None and not completion.reactions
            if completion.closes_wave and only_closes:
                # It closed a wave the wrapper recorded and asks for nothing else: its task, the orchestration, the
                # wave's tasks and the notes are all the next turn needs, read together (one request on DynamoDB).
                try:
                    view = self.backends.blackboard.read_wave(completion.orchestration_id, completion.task_id)
                except NotFoundError:
                    view = None
                refused = _refusal(completion, None if view is None else view.task)
            else:
                refused = self._refusal(completion)
            if refused is not None:
                with self._planning_lock:
                    self.refused_completions += 1
                logger.warning(
                    "orchestration_id=<%s>, task_id=<%s>, attempt=<%d> | completion refused: %s",
                    completion.orchestration_id,
                    completion.task_id,
                    completion.attempt,
                    refused,
                )
                return False
            closes = completion.closes_wave
            if not closes and not completion.recorded:
                result = TaskResult.from_completion(completion)
                closes = self.record_result(completion.orchestration_id, completion.task_id, completion.attempt, result)
            if completion.exhausted is not None:
                current = self.backends.blackboard.get_orchestration(completion.orchestration_id)
                self._exhausted(current, completion.exhausted)
            elif completion.reactions:
                self.dispatch_reactions(completion.orchestration_id, completion.reactions)
            if closes:
                self.resume(completion.orchestration_id, view=view)
            return True

    def _refusal(self, completion: CompletionEvent) -> str | None:
        """Why a completion cannot be accepted, or ``None`` when it carries its task's token."""
        try:
            task = self.backends.blackboard.get_task(completion.orchestration_id, completion.task_id)
        except NotFoundError:
            task = None
        return _refusal(completion, task)

    def dispatch_reactions(self, orchestration_id: str, task_ids: Sequence[str]) -> None:
        """Dispatch the reactive tasks a completion named that are still ``pending`` (a span links each trigger).

        A duplicate completion finds them dispatched already; one that never arrives leaves them to the watchdog.
        """
        board = self.backends.blackboard
        tasks = [board.get_task(orchestration_id, task_id) for task_id in task_ids]
        pending = [t for t in tasks if t.state is TaskState.PENDING and t.reaction is not None]
        if not pending:
            return
        links = [t.reaction.traceparent for t in pending if t.reaction is not None]
        with tracing.start_span(
            "arbiter.react",
            parent=self._trace_of(orchestration_id),
            attributes={"arbiter.reactive_tasks": len(pending)},
            links=links,
        ):
            logger.debug("orchestration_id=<%s>, tasks=<%s> | dispatching reactive tasks", orchestration_id, task_ids)
            self.dispatch(pending)

    def _exhausted(self, orchestration: Orchestration, budget: str | None = None) -> bool:
        """End an orchestration a reaction found out of budget (``failed``, the budget named); whether it did.

        Args:
            orchestration: the orchestration as read.
            budget: the budget a completion reported (default: the one the orchestration is marked with).
        """
        exhausted = budget or orchestration.exhausted
        if orchestration.finished or exhausted is None:
            return False
        self.finish(orchestration, OrchestrationStatus.FAILED, error=f"budget exhausted: {exhausted}")
        return True

    def record_result(self, orchestration_id: str, task_id: str, attempt: int, result: TaskResult) -> bool:
        """Write a result with the retry policy applied; return whether it closed the wave."""
        retry_at = self.settings.retry.next_attempt_at(result, self._clock())
        transition = self.backends.blackboard.complete(orchestration_id, task_id, attempt, result, retry_at=retry_at)
        return transition.closes_wave

    def continue_orchestration(self, orchestration_id: str) -> None:
        """Answer the finished wave with its tool results and plan the next one (a no-op if already done)."""
        self._continue(self.backends.blackboard.get_orchestration(orchestration_id))

    def resume(self, orchestration_id: str, *, view: WaveView | None = None) -> bool:
        """Take a running orchestration on if its next step was lost; return whether a step was taken.

        A step is lost when a process crashed, or a transient failure was raised for the platform to retry: the
        wave is done but its results were never appended (they are appended and the next turn planned), or they
        were (or the event is all there is) but the next turn never happened (it is planned). An orchestration
        this coordinator is planning right now, or whose wave is still running, is left alone.

        ``view``: the orchestration with its wave's tasks and notes as just read (:meth:`Blackboard.read_wave`), used
        instead of reading them again.
        """
        board = self.backends.blackboard
        orchestration = board.get_orchestration(orchestration_id) if view is None else view.orchestration
        if self._exhausted(orchestration):
            return True
        if orchestration.finished or self.is_planning(orchestration_id):
            return False
        if planning_held(orchestration, self._clock()):
            return False  # a live planner (maybe in another process) is calling the model for it
        if waiting_for_results(orchestration):
            return self._continue(orchestration, view)
        last = orchestration.conversation[-1] if orchestration.conversation else {}
        if last.get("role") == "assistant":
            return False
        tasks = board.list_tasks(orchestration.id, wave=orchestration.wave) if orchestration.wave else []
        if not all(t.done for t in tasks):
            return False
        self.plan(orchestration)
        return True

    def _continue(self, orchestration: Orchestration, view: WaveView | None = None) -> bool:
        board = self.backends.blackboard
        orchestration_id = orchestration.id
        if self._exhausted(orchestration):
            return True
        if orchestration.standing:
            return self._standing.step(orchestration)
        if orchestration.finished or not waiting_for_results(orchestration):
            return False
        read = view if view is not None and view.orchestration is orchestration else None
        tasks = read.tasks if read is not None else board.list_tasks(orchestration_id, wave=orchestration.wave)
        if not tasks or not all(task.done for task in tasks):
            return False
        tokens = sum(r.usage.total_tokens for t in tasks for r in [*t.attempts, *([t.result] if t.result else [])])
        usage = orchestration.usage.model_copy(update={"tokens": orchestration.usage.tokens + tokens})
        notes = read.notes if read is not None else board.notes(orchestration_id)
        message = tool_results_message(tasks, notes)
        # The results and the next turn's planning lease in one write (unless a live turn holds the lease already).
        lease = PlanningLease(board, self._clock, self.settings.lease_seconds)
        taking = {} if planning_held(orchestration, self._clock()) else lease.fields()
        updated = board.update_orchestration(
            orchestration, conversation=[*orchestration.conversation, message], usage=usage, **taking
        )
        if not updated.applied:
            return False  # another coordinator continued this wave
        noted = True
        try:
            noted = self._record_stats(tasks)
        finally:
            # No task of the orchestration runs until the next wave: unless reflection just noted a quarantine, the
            # notes read with the results are the ones the next wave's dispatch would read.
            with self._notes_known(orchestration_id, None if noted else notes):
                self.plan(updated.record, lease=lease)
        return True

    @contextlib.contextmanager
    def _notes_known(self, orchestration_id: str, notes: list[Note] | None) -> Iterator[None]:
        """Within the block, this thread's next dispatch for the orchestration carries ``notes`` without a read.

        For notes this thread read (or knows) before a planning turn that no write of this process has changed
        since: a write from another process is not ordered with a dispatch anyway (it could as well land after it).
        ``None`` leaves the dispatch to read them.
        """
        key = (orchestration_id, threading.get_ident())
        if notes is not None:
            with self._planning_lock:
                self._known_notes[key] = notes
        try:
            yield
        finally:
            with self._planning_lock:
                self._known_notes.pop(key, None)

    # ---------------------------------------------------------------- planning

    def plan(self, orchestration: Orchestration, *, lease: PlanningLease | None = None) -> None:
        """Call the model once; store and dispatch the wave it asks for, or finish.

        A standing orchestration has no planner: it takes its own next step instead (its wave, or its end).
        ``lease``: the planning lease the write that gave ``orchestration`` took, if any (it is released when the
        turn does not happen here).
        """
        if orchestration.standing:
            self._standing.step(orchestration)
            return
        me = threading.get_ident()
        with self._planning_lock:
            owner, depth = self._planning.get(orchestration.id, (me, 0))
            if owner != me:
                if lease is not None and orchestration.planner == lease.token:
                    lease.release(orchestration.id)
                return  # another thread is calling the model for it; its turn decides what happens next
            self._planning[orchestration.id] = (me, depth + 1)
        try:
            self._plan(orchestration, lease)
        finally:
            with self._planning_lock:
                if depth == 0:
                    del self._planning[orchestration.id]
                else:
                    self._planning[orchestration.id] = (me, depth)

    def _plan(self, orchestration: Orchestration, lease: PlanningLease | None = None) -> None:
        now = self._clock()
        if orchestration.deadline is not None and orchestration.deadline <= now:
            self.finish(orchestration, OrchestrationStatus.FAILED, error="budget exhausted: deadline passed")
            return
        lease = lease or PlanningLease(self.backends.blackboard, self._clock, self.settings.lease_seconds)
        leased = lease.take(orchestration)
        if leased is None:
            return  # another turn (in another process) is calling the model for it, or it moved on
        try:
            self._plan_turn(leased, lease)
        finally:
            lease.release(orchestration.id)

    def _plan_turn(self, orchestration: Orchestration, lease: PlanningLease) -> None:
        agents = self._offered(orchestration)
        specs = [agent_tool_spec(m) for m in agents.values()] + [FABRICATE_TOOL]

        def refused(fields: Mapping[str, Any]) -> str | None:
            return fabrication_refusal(orchestration, fields, agents)

        def call() -> PlannerTurn:
            with (
                tracing.start_span(
                    "arbiter.plan",
                    parent=_parent(orchestration.traceparent),
                    attributes={"arbiter.wave": orchestration.wave},
                ),
                call_checks({FABRICATE: refused}),  # a local model stops writing a request that would be refused
            ):
                return self.planner.plan(orchestration.conversation, specs)

        try:
            # The lease is renewed across the retries and their waits too: the turn is one step however long it takes.
            with lease.renewing(orchestration.id):
                turn = self.settings.planner_retry.call(
                    call, deadline=orchestration.deadline, clock=self._clock, sleep=self._sleep, label=orchestration.id
                )
        except PlannerError as exc:
            self._planner_failed(orchestration, exc)
            return
        after = lease.after_turn(orchestration)
        if after is None:
            return
        orchestration = after
        usage = orchestration.usage.model_copy(update={"tokens": orchestration.usage.tokens + turn.usage.total_tokens})
        if not turn.tool_calls:
            conversation = [*orchestration.conversation, turn.message]
            unused = unused_fabrications(orchestration)
            if unused and usage.tokens <= orchestration.budget.max_tokens:
                # The model answers without ever calling a worker it had written for this event: ask once more.
                reminded = self.backends.blackboard.update_orchestration(
                    orchestration, conversation=[*conversation, unused_reminder(unused)], usage=usage, **RELEASED
                )
                if reminded.applied:
                    lease.settled()
                    self._plan(reminded.record)
                return
            if usage.tokens > orchestration.budget.max_tokens:
                finished = self.finish(
                    orchestration,
                    OrchestrationStatus.FAILED,
                    error="budget exhausted: max_tokens",
                    settled=True,
                    conversation=conversation,
                    usage=usage,
                )
            else:
                finished = self.finish(
                    orchestration,
                    OrchestrationStatus.COMPLETED,
                    output=turn.text,
                    settled=True,
                    conversation=conversation,
                    usage=usage,
                )
            if finished:
                lease.settled()  # a finished orchestration has no lease to clear
            return
        if self._start_wave(orchestration, turn, agents, usage):
            lease.settled()

    def _planner_failed(self, orchestration: Orchestration, exc: PlannerError) -> None:
        """Fail the orchestration with the reason, or raise a transient failure for the platform to retry."""
        past_deadline = orchestration.deadline is not None and orchestration.deadline <= self._clock()
        if exc.retryable and self.settings.raise_transient and not past_deadline:
            logger.warning(
                "orchestration_id=<%s> | planner failed transiently, raising for a retry: %s", orchestration.id, exc
            )
            raise exc
        reason = str(exc)
        if exc.retryable:
            attempts = self.settings.planner_retry.attempts
            reason = (
                f"budget exhausted: deadline passed while the model call kept failing: {exc}"
                if past_deadline
                else f"the model call kept failing ({attempts} attempts): {exc}"
            )
        logger.warning("orchestration_id=<%s> | planner failed: %s", orchestration.id, reason)
        self.finish(orchestration, OrchestrationStatus.FAILED, error=reason)

    def _start_wave(
        self, orchestration: Orchestration, turn: PlannerTurn, agents: dict[str, AgentManifest], usage: BudgetUsage
    ) -> bool:
        """Store the turn's wave and dispatch it; whether the turn was stored (the wave, or the end it led to)."""
        board = self.backends.blackboard
        calls = unique_ids(orchestration, turn.tool_calls)
        fabrications = sum(1 for c in calls if c.name == FABRICATE)
        usage = usage.model_copy(update={"fabrications": usage.fabrications + fabrications})
        message = {"role": "assistant", "content": with_ids(turn.message["content"], calls)}
        conversation = [*orchestration.conversation, message]
        projected = usage.model_copy(update={"waves": usage.waves + 1, "tasks": usage.tasks + len(calls)})
        exceeded = orchestration.budget.exceeded_by(projected)
        if exceeded is not None:
            return self.finish(
                orchestration,
                OrchestrationStatus.FAILED,
                error=f"budget exhausted: {exceeded}",
                settled=True,
                conversation=conversation,
                usage=usage,
            )
        now = self._clock()
        tasks: list[Task] = []
        refused: list[tuple[Task, TaskError]] = []
        for call in calls:
            task, problem = self._task_for(orchestration, call, agents, now)
            tasks.append(task)
            if problem is not None:
                refused.append((task, problem))
        stored = board.add_wave(orchestration, tasks, conversation=conversation, usage=usage, **RELEASED)
        if not stored.applied:
            logger.debug("orchestration_id=<%s> | wave not stored: the orchestration moved on", orchestration.id)
            return False
        refused_ids = {t.task_id for t, _ in refused}
        self.dispatch([t for t in tasks if t.task_id not in refused_ids], orchestration=orchestration)
        closes = False
        for task, error in refused:
            result = TaskResult(status=TaskState.FAILED, error=error, attempt=1, finished_at=now)
            closes = board.complete(task.orchestration_id, task.task_id, 1, result).closes_wave or closes
        if closes:
            self.continue_orchestration(orchestration.id)
        return True

    def _task_for(
        self, orchestration: Orchestration, call: ToolCall, agents: dict[str, AgentManifest], now: datetime
    ) -> tuple[Task, TaskError | None]:
        wave = orchestration.wave + 1
        manifest = agents.get(call.name) or self._lookup(call.name)
        problem: TaskError | None = None
        if call.input_error is not None:
            problem = TaskError(type="InvalidToolInput", message=call.input_error, retryable=False)
        if call.name == FABRICATE:
            ref = AgentRef(name=FABRICATE)
            schema = FABRICATE_TOOL["inputSchema"]["json"]
            if problem is None and self._fabricate is None:
                problem = TaskError(
                    type="FabricatorUnavailable", message="no fabricator is configured", retryable=False
                )
            timeout, attempts = 600.0, 1
        elif manifest is None:
            ref = AgentRef(name=call.name[:64] or "unknown")
            schema = None
            known = ", ".join(sorted([*agents, FABRICATE]))
            problem = problem or TaskError(
                type="UnknownTool",
                message=f"there is no tool named {call.name!r}; the tools are: {known}",
                retryable=False,
            )
            timeout, attempts = 0.0, 1
        else:
            ref = manifest.ref
            schema = manifest.input_schema
            timeout = manifest.timeout_seconds
            attempts = manifest.max_attempts or self.settings.max_attempts
        if problem is None and schema is not None:
            problem = schema_problem(schema, call.input)
        if problem is None and call.name != FABRICATE:
            copied = copied_phrase(orchestration, self.planner.system_prompt, call.input)
            problem = None if copied is None else TaskError(type="InvalidToolInput", message=copied, retryable=False)
        if problem is None and call.name == FABRICATE:
            refused = fabrication_refusal(orchestration, call.input, agents) or example_problem(
                dict(call.input.get("inputs") or {}), list(call.input.get("examples") or [])
            )
            if refused is not None:
                problem = TaskError(type="InvalidToolInput", message=refused, retryable=False)
        task_input = call.input
        if problem is None and call.name == FABRICATE and call.input.get("examples"):
            examples, removed = observed_examples(orchestration, list(call.input["examples"]))
            if removed:
                logger.info(
                    "orchestration_id=<%s>, removed=<%s> | expected values the planner worked out are not checked",
                    orchestration.id,
                    removed,
                )
                task_input = {**call.input, "examples": examples}
        deadline = now + timedelta(seconds=timeout + self.settings.queue_grace_seconds)
        if orchestration.deadline is not None:
            deadline = min(deadline, orchestration.deadline)
        task = Task(
            orchestration_id=orchestration.id,
            task_id=call.tool_use_id,
            wave=wave,
            agent=ref,
            input=task_input,
            max_attempts=attempts,
            deadline=deadline,
            token=new_completion_token(),
        )
        return task, problem

    # ---------------------------------------------------------------- dispatch, retries, finish

    def dispatch(self, tasks: Sequence[Task], *, orchestration: Orchestration | None = None) -> None:
        """Send pending tasks to their queue, then mark them dispatched (the sweeper re-sends what a crash strands).

        ``orchestration``: the tasks' orchestration as the caller holds it; its root span is the parent of the
        dispatch's span when none is current (without it, it is read when spans are recorded).
        """
        if not tasks:
            return
        with tracing.start_span(
            "arbiter.dispatch",
            parent=self._trace_of(tasks[0].orchestration_id, orchestration),
            attributes={"arbiter.tasks": len(tasks)},
        ):
            traceparent = tracing.current_traceparent()
            agents = [t for t in tasks if t.agent.name != FABRICATE]
            for task in tasks:
                if task.agent.name == FABRICATE and self._fabricate is not None:
                    self._fabricate(
                        FabricationRequest(
                            orchestration_id=task.orchestration_id,
                            task_id=task.task_id,
                            attempt=task.attempt,
                            capability=str(task.input.get("capability", "")) or "(no description given)",
                            inputs={str(k): str(v) for k, v in dict(task.input.get("inputs") or {}).items()},
                            examples=list(task.input.get("examples") or []),
                            deadline=task.deadline,
                            traceparent=traceparent,
                            token=task.token,
                        )
                    )
            notes: dict[str, list[NoteSnapshot] | None] = {}
            for task in agents:
                if task.orchestration_id not in notes:
                    notes[task.orchestration_id] = self._note_snapshot(task.orchestration_id)
            self.backends.queue.send([task_message(t, traceparent, notes[t.orchestration_id]) for t in agents])
            self.backends.blackboard.mark_dispatched(tasks)

    def _note_snapshot(self, orchestration_id: str) -> list[NoteSnapshot] | None:
        """The notes the tasks of a dispatch carry (one read per wave instead of one per task); ``None`` if large."""
        with self._planning_lock:
            known = self._known_notes.pop((orchestration_id, threading.get_ident()), None)
        notes = self.backends.blackboard.notes(orchestration_id) if known is None else known
        snapshot = [NoteSnapshot(key=n.key, value=n.value, version=n.version, author=n.author) for n in notes]
        size = sum(len(json.dumps(n.value, default=str)) for n in snapshot)
        return snapshot if size <= MAX_CARRIED_NOTES_BYTES else None

    def _trace_of(self, orchestration_id: str, known: Orchestration | None = None) -> str | None:
        """The parent of a span opened outside any (a sweep, a retry): the orchestration's root span.

        ``known``: the orchestration as the caller holds it (its root span never changes): then nothing is read.
        """
        if not tracing.recording() or tracing.current_traceparent() is not None:
            return None
        if known is not None and known.id == orchestration_id:
            return known.traceparent
        try:
            return self.backends.blackboard.get_orchestration(orchestration_id).traceparent
        except BlackboardError:
            return None

    def retry_due(self, task: Task) -> None:
        """Start the next attempt of a task whose retry time has come, and dispatch it."""
        board = self.backends.blackboard
        orchestration = board.get_orchestration(task.orchestration_id)
        if orchestration.finished:
            board.cancel(task.orchestration_id, task.task_id, "orchestration finished")
            return
        deadline = self._clock() + timedelta(seconds=self._timeout(task.agent) + self.settings.queue_grace_seconds)
        if orchestration.deadline is not None:
            deadline = min(deadline, orchestration.deadline)
        retried = board.retry(task.orchestration_id, task.task_id, task.attempt, deadline=deadline)
        if retried.applied:
            logger.debug("task_id=<%s>, attempt=<%d> | retrying", task.task_id, retried.task.attempt)
            self.dispatch([retried.task], orchestration=orchestration)

    def _timeout(self, agent: AgentRef) -> float:
        """The pinned version's timeout; a registry outage is raised (the sweep that called this tries again)."""
        if agent.version is None:
            return 600.0
        try:
            return self.backends.registry.get(agent.name, agent.version).timeout_seconds
        except AgentNotFoundError:
            # The executor fails the attempt at once (AgentNotFound): it only needs time to get through the queue.
            logger.warning("agent=<%s> | pinned version not in the registry; no run time allowed", agent)
            return 0.0

    def finish(
        self,
        orchestration: Orchestration,
        status: OrchestrationStatus,
        *,
        output: Any = None,
        error: str | None = None,
        settled: bool = False,
        **changes: Any,
    ) -> bool:
        """End an orchestration (compare-and-set), cancel its unfinished tasks and publish the result event.

        A plain status change is retried against the newest version; one that carries other changes (the model's
        last turn) is dropped if the orchestration changed meanwhile, since that turn answered an older state.

        ``settled``: the caller planned on ``orchestration`` once its wave had closed, so when the write applies to
        that very version no task is left to cancel, and none is read (a closed wave takes no task, and a new wave
        would have changed the version).

        Returns:
            Whether this call ended it.
        """
        board = self.backends.blackboard
        current = orchestration
        while True:
            if current.finished:
                return False
            updated = board.update_orchestration(current, status=status, output=output, error=error, **changes)
            if updated.applied:
                break
            if changes:
                logger.debug("orchestration_id=<%s> | not finishing: it changed meanwhile", orchestration.id)
                return False
            current = updated.record
        done = updated.record
        for task in [] if settled and current is orchestration else board.list_tasks(done.id):
            if not task.done:
                board.cancel(done.id, task.task_id, f"orchestration {status.value}")
        logger.debug("orchestration_id=<%s>, status=<%s> | finished", done.id, status)
        finished = OrchestrationFinished(
            orchestration_id=done.id,
            event_id=done.event.id,
            status=status,
            output=output,
            error=error,
            waves=done.usage.waves,
            tasks=done.usage.tasks,
            tokens=done.usage.tokens,
            traceparent=done.traceparent,
        )
        try:
            self.backends.bus.publish([finished.to_event()])
        except Exception:
            logger.exception("orchestration_id=<%s> | could not publish the result event", done.id)
        return True

    # ---------------------------------------------------------------- helpers

    def _offered(self, orchestration: Orchestration) -> dict[str, AgentManifest]:
        """The agents the planner sees: all active ones, or with a matcher the top-k for this orchestration.

        Agents fabricated in this orchestration are always offered: the planner asked for them.
        """
        if self.matcher is None:
            return self.backends.registry.active_agents()
        self.matcher.refresh()
        if len(self.matcher) <= self.top_k:  # a registry this small fits in the prompt whole (as just indexed)
            return self.matcher.indexed()
        offered = {m.manifest.name: m.manifest for m in self.matcher.search(query_text(orchestration), self.top_k)}
        for name in fabricated_names(orchestration):
            if name not in offered and (manifest := self._lookup(name)) is not None:
                offered[name] = manifest
        return offered

    def _lookup(self, name: str) -> AgentManifest | None:
        """The newest active version of ``name`` (a call to an agent that exists but was not offered is valid)."""
        if name == FABRICATE:
            return None
        try:
            return self.backends.registry.active(name)
        except AgentNotFoundError:
            return None  # any other error (an outage) is not "no such tool": it reaches the retry machinery

    def _record_stats(self, tasks: Sequence[Task]) -> bool:
        """Count every attempt of a closed wave in its agent version's stats: one atomic update per version.

        An attempt that failed through no fault of the agent (``error.agent_fault`` false: its trusted call found no
        free slot) never ran and is not counted, so reflection never quarantines an agent for it.

        Returns:
            Whether reflection quarantined a version (and noted it on the orchestration).
        """
        deltas: dict[tuple[str, int], StatsDelta] = {}
        for task in tasks:
            if task.agent.version is None:
                continue
            key = (task.agent.name, task.agent.version)
            for result in [*task.attempts, *([task.result] if task.result else [])]:
                if result.status is not TaskState.CANCELLED and (result.error is None or result.error.agent_fault):
                    deltas[key] = deltas.get(key, StatsDelta()) + StatsDelta.of(
                        result.status, result.duration_ms, result.usage.total_tokens
                    )
        updated: dict[tuple[str, int], AgentStats] = {}
        for (name, version), delta in deltas.items():
            try:
                updated[(name, version)] = self.backends.registry.add_stats(name, version, delta)
            except Exception:
                logger.exception("agent=<%s@%s> | could not record stats", name, version)
        if tasks and deltas:
            return bool(self.reflector.after_stats(tasks[0].orchestration_id, tasks, deltas, updated))
        return False


def _refusal(completion: CompletionEvent, task: Task | None) -> str | None:
    """Why a completion cannot be accepted, or ``None`` when it carries its task's token.

    ``task``: the completion's task as stored, ``None`` when there is no such task.
    """
    if task is None:
        return "no such task"
    if completion.token is None:
        return "it carries no token"
    if not task.accepts(completion.token):
        return "its token is not the task's"
    return None


def _parent(traceparent: str | None) -> str | None:
    """Continue the current span if there is one, else the orchestration's trace (``traceparent``)."""
    return None if tracing.current_traceparent() is not None else traceparent
