"""The coordinator's side of standing orchestrations: a bus event that fires bus triggers runs the fired agents.

The protocol (once per event, persisted before dispatch, budgets, no planner) is described in
:mod:`blackboard.standing`; this module drives it with the coordinator's own steps: ``create`` (idempotent on the
event id), ``Blackboard.add_wave`` (compare-and-set), ``dispatch`` (the watchdog re-sends what a crash left
``pending``), ``finish`` (compare-and-set) and the stats of the closed wave (recorded by the one finisher).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from blackboard import Event, Orchestration, OrchestrationStatus, Task, TaskState, tracing
from blackboard.messages import new_completion_token
from blackboard.reactions import Fired, ReactiveAgents
from blackboard.standing import bus_triggered, standing_event, standing_key, standing_task_id

if TYPE_CHECKING:
    from arbiter.coordinator import Coordinator

__all__ = ["StandingOrchestrations"]

logger = logging.getLogger(__name__)

_FINISH_TRIES = 8


class StandingOrchestrations:
    """Starts and steps the standing orchestrations of one coordinator."""

    def __init__(self, coordinator: Coordinator) -> None:
        self._coordinator = coordinator
        self._agents = ReactiveAgents(coordinator.backends.registry, "bus")

    def trigger(self, event: Event) -> Orchestration | None:
        """Start the standing orchestration ``event`` calls for (once per event); ``None`` if no trigger fires.

        An orchestration the same event started before is taken on where it stopped (a redelivery after a crash).
        """
        agents = self._agents.current()
        if not agents:
            return None
        key = standing_key(event)
        fired = bus_triggered(event, key, agents)
        if not fired:
            return None
        coordinator = self._coordinator
        cause = event.detail.get("traceparent")
        created = coordinator.create(
            standing_event(event, key), triggered_by=key, links=[cause] if isinstance(cause, str) else []
        )
        orchestration = created.record
        # The wave is the orchestration's: its spans go into its trace, not the publisher's (which may be current).
        with (
            tracing.start_span(
                "arbiter.trigger", parent=orchestration.traceparent, attributes={"arbiter.event_id": key}
            ),
            tracing.bind(orchestration_id=orchestration.id),
        ):
            if created.applied:
                logger.debug(
                    "orchestration_id=<%s>, event_id=<%s>, agents=<%s> | bus triggers fired",
                    orchestration.id,
                    key,
                    [str(f.manifest.ref) for f in fired],
                )
                self._start_wave(orchestration, fired)
            else:
                coordinator.resume(orchestration.id)
        return coordinator.backends.blackboard.get_orchestration(orchestration.id)

    def step(self, orchestration: Orchestration) -> bool:
        """Take a standing orchestration's next step: store and dispatch its wave, or end it; whether one was taken."""
        if orchestration.finished:
            return False
        if orchestration.wave == 0:  # created, and the process that created it stopped before the wave
            assert orchestration.triggered_by is not None
            fired = bus_triggered(orchestration.event, orchestration.triggered_by, self._agents.current())
            return self._start_wave(orchestration, fired)
        tasks = self._coordinator.backends.blackboard.list_tasks(orchestration.id, wave=orchestration.wave)
        if not tasks or not all(t.done for t in tasks):
            return False
        return self._finish(orchestration, tasks)

    def _start_wave(self, orchestration: Orchestration, fired: Sequence[Fired]) -> bool:
        coordinator = self._coordinator
        if not fired:
            coordinator.finish(
                orchestration, OrchestrationStatus.FAILED, error="no agent's bus trigger fires for the event any more"
            )
            return True
        usage = orchestration.usage
        exceeded = orchestration.budget.exceeded_by(
            usage.model_copy(update={"waves": usage.waves + 1, "tasks": usage.tasks + len(fired)})
        )
        if exceeded is not None:
            coordinator.finish(orchestration, OrchestrationStatus.FAILED, error=f"budget exhausted: {exceeded}")
            return True
        now = coordinator._clock()
        grace = coordinator.settings.queue_grace_seconds
        tasks = [
            Task(
                orchestration_id=orchestration.id,
                task_id=standing_task_id(f.manifest.ref),
                wave=1,
                agent=f.manifest.ref,
                input=f.input,
                max_attempts=f.manifest.max_attempts or coordinator.settings.max_attempts,
                deadline=_earliest(now + timedelta(seconds=f.manifest.timeout_seconds + grace), orchestration),
                token=new_completion_token(),
            )
            for f in fired
        ]
        stored = coordinator.backends.blackboard.add_wave(orchestration, tasks)
        if not stored.applied:
            logger.debug("orchestration_id=<%s> | standing wave not stored: another was first", orchestration.id)
            return False
        coordinator.dispatch(tasks, orchestration=stored.record)
        return True

    def _finish(self, orchestration: Orchestration, tasks: Sequence[Task]) -> bool:
        """End the orchestration with its agents' results.

        As for a planned wave, the results are appended to the conversation with a compare-and-set first: the one
        caller whose append applies records the wave's stats (once, whoever else steps it), then it is ended.
        """
        coordinator = self._coordinator
        board = coordinator.backends.blackboard
        called = [t for t in tasks if not t.reactive]
        output = {str(t.agent): t.result.output for t in called if t.state is TaskState.SUCCEEDED and t.result}
        failed = [t for t in called if t.state is not TaskState.SUCCEEDED]
        error = "; ".join(f"{t.agent} {t.state.value}: {_reason(t)}" for t in failed) or None
        status = OrchestrationStatus.FAILED if failed else OrchestrationStatus.COMPLETED
        tokens = sum(r.usage.total_tokens for t in tasks for r in [*t.attempts, *([t.result] if t.result else [])])
        current = orchestration
        for _ in range(_FINISH_TRIES):
            if current.finished:
                return False
            if len(current.conversation) > 1:  # the results are appended: whoever appended them recorded the stats
                return coordinator.finish(current, status, output=output, error=error)
            usage = current.usage.model_copy(update={"tokens": current.usage.tokens + tokens})
            summary = "; ".join(f"{t.agent} {t.state.value}" for t in tasks)
            message = {"role": "user", "content": [{"text": f"Results of the triggered agents: {summary}"}]}
            appended = board.update_orchestration(current, conversation=[*current.conversation, message], usage=usage)
            if appended.applied:
                coordinator._record_stats(tasks)
            current = appended.record
        return False


def _earliest(deadline: datetime, orchestration: Orchestration) -> datetime:
    return deadline if orchestration.deadline is None else min(deadline, orchestration.deadline)


def _reason(task: Task) -> str:
    if task.result is None or task.result.error is None:
        return task.state.value
    return f"{task.result.error.type}: {task.result.error.message}"
