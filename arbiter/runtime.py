"""The embedded runtime: the whole system in one process, with its state in ``ARBITER_HOME``.

SQLite blackboard, registry and task queue, a local code store, an in-process event bus, a warm sandbox pool with
worker threads, the coordinator and the watchdog. The same engine runs on AWS with other adapters.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from queue import SimpleQueue
from typing import TYPE_CHECKING, Any

from arbiter._completions import COMPLETIONS_QUEUE, serve_completions
from arbiter._registration import AgentRegistration
from arbiter._stream import UpdateStream
from arbiter.agents import AgentDefinition, AgentFunction
from arbiter.config import Deployment, legacy_keywords
from arbiter.coordinator import Coordinator, EngineSettings
from arbiter.engine import build_coordinator, resolve
from arbiter.exceptions import UsageError
from arbiter.prompts import system_prompt
from arbiter.reflection import REFLECTION_SOURCE
from arbiter.sweeper import Sweeper
from arbiter.updates import OrchestrationFinished, RunResult, result_of
from blackboard import (
    Backends,
    Budget,
    Event,
    FabricationRequest,
    Note,
    Orchestration,
    RecordValidationError,
    Task,
    TaskQueue,
    ingress_event,
    local_backends,
    strict_json,
)
from blackboard._base import new_id
from blackboard.adapters import MemoryTaskQueue, SqliteTaskQueue
from blackboard.messages import COMPLETION_DETAIL_TYPE, COMPLETION_SOURCE, ORCHESTRATION_SOURCE
from fabricator.fabricator import FabricationResult, Fabricator
from fabricator.worker import FabricationWorker
from wrapper import Executor, SandboxPool, TrustedCalls, run_worker
from wrapper.exceptions import ModelConfigurationError
from wrapper.matching import Matcher, matcher_for

if TYPE_CHECKING:
    from strands.models import Model

__all__ = ["LocalRuntime", "OrchestrationView", "RunResult", "UpdateStream"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OrchestrationView:
    """An orchestration with its tasks and notes."""

    orchestration: Orchestration
    tasks: list[Task] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)


class LocalRuntime(AgentRegistration):
    """Arbiter in this process.

    Args:
        home: the state directory (default ``$ARBITER_HOME``, else ``./.arbiter``): a shortcut for
            ``deployment=Deployment(home=...)``.
        model: the planning model: a Strands model or a model spec (``bedrock:...``, ``scripted:file.json``...);
            default ``$ARBITER_MODEL``, else the installed local model.
        instructions: what this deployment is for, added to the planner's system prompt (a runbook: which steps an
            event needs); small local models plan much better with them.
        agents: agents to register before the runtime starts (and resumes what a crash left): definitions or
            functions decorated with :func:`arbiter.agent`; a trusted agent's callable must be registered in this
            process before its tasks run, so pass trusted agents here.
        settings: how the engine behaves (:class:`EngineSettings`: budget, retries, reflection, stall time).
        deployment: where the state lives and how work runs (:class:`~arbiter.config.Deployment`: home or other
            backends, queues, sandbox, worker count, watchdog interval, event size limit).
        worker_model: the model spec sandboxed workers get from ``wrapper.sdk.model()`` (default: ``model`` when it
            is a spec, else ``$ARBITER_MODEL``).
        fabricator_model: the model the Fabricator writes new workers with (default: the planning model).
        approval: new agents the Fabricator writes wait in ``pending_approval`` until a person approves them.
        matching: how the planner's agents are chosen (default ``$ARBITER_MATCHING``, else ``auto``): ``auto``
            (the top 8 by the local embeddings fused with BM25 when installed, else by BM25), ``bm25``, ``bedrock``
            (Titan embeddings), or ``all`` (every active agent, the AWS samples' way).
        start: start the worker, planner and watchdog threads now (``False`` for inspection only: list, show).
        **legacy: the former keywords, deprecated for one release (a ``DeprecationWarning`` names each one's
            replacement): ``workers``, ``sweep_interval``, ``sandbox``, ``queue``, ``queue_visibility_seconds``,
            ``backends``, ``fabrication_queue``, ``trusted_calls``, ``max_event_bytes`` (now :class:`Deployment`
            fields, overriding ``deployment``), ``reflection`` and ``stalled_after`` (now ``settings.reflection``
            and ``settings.stalled_after_seconds``).

    Raises:
        UsageError: a setting that cannot work (an unknown queue or matching, a bad model spec...).
        TypeError: a keyword the runtime never took.
    """

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        model: Model | str | None = None,
        instructions: str | None = None,
        agents: Sequence[AgentDefinition | AgentFunction] = (),
        settings: EngineSettings | None = None,
        deployment: Deployment | None = None,
        worker_model: str | None = None,
        fabricator_model: Model | str | None = None,
        approval: bool = False,
        matching: str | None = None,
        start: bool = True,
        **legacy: Any,
    ) -> None:
        self.deployment, self._settings = legacy_keywords(home, deployment, settings, legacy)
        layout = self.deployment
        self._max_event_bytes = strict_json.max_event_bytes(layout.max_event_bytes)
        # Models are resolved before the store is opened: a bad spec fails without touching ARBITER_HOME.
        self._planner_model: Model | None = None
        self._fabricator_model: Model | None = None
        if start:
            self._planner_model = resolve(model)
            self._fabricator_model = self._planner_model if fabricator_model is None else resolve(fabricator_model)
        self.backends, self._fabrication_queue, self._completions = _open(layout)
        self._approval = approval
        try:
            self.matcher: Matcher | None = matcher_for(self.backends.registry, matching)
        except ModelConfigurationError as exc:
            self.backends.close()
            raise UsageError(str(exc)) from exc
        self._volatile_queue = isinstance(self.backends.queue, MemoryTaskQueue)
        self._queue_visibility = layout.queue_visibility_seconds
        self._model = model
        self._instructions = instructions
        self._worker_model = worker_model or (model if isinstance(model, str) else None)
        self._workers = layout.workers
        self._sweep_interval = layout.sweep_interval
        self._trusted: dict[str, Callable[..., Any]] = {}
        self._functions: dict[str, str] = {}  # agent name -> module.qualname of the decorated function that took it
        # Every worker thread may run a call of the same agent; calls that overran hold slots beyond that.
        workers = layout.workers
        self._trusted_calls = layout.trusted_calls or TrustedCalls(
            per_agent=max(4, workers), max_calls=max(32, 4 * workers)
        )
        self._stop = threading.Event()
        self._plans: SimpleQueue[str | None] = SimpleQueue()  # orchestrations to plan (None: stop)
        self._planners = 0
        self._finished = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._pool: SandboxPool | None = layout.sandbox
        self._own_pool = layout.sandbox is None
        self._executor: Executor | None = None
        self._coordinator: Coordinator | None = None
        self._fabricator: Fabricator | None = None
        self.backends.bus.subscribe({"source": [ORCHESTRATION_SOURCE]}, self._on_finished, name="runtime-wait")
        for agent in agents:
            if isinstance(agent, AgentFunction):
                self._register_function(agent)
                continue
            self.register_agent(
                agent.name,
                agent.description,
                agent.handler,
                input_schema=agent.input_schema,
                trusted=agent.trusted,
                timeout_seconds=agent.timeout_seconds,
                max_attempts=agent.max_attempts,
                triggers=agent.triggers,
            )
        if start:
            self.start()

    # ---------------------------------------------------------------- life cycle

    def start(self) -> None:
        """Start the sandbox pool, the workers and the watchdog, and resume what a crash left unfinished."""
        if self._threads:
            return
        coordinator = self.coordinator
        self.backends.bus.subscribe(
            {"source": [COMPLETION_SOURCE], "detail-type": [COMPLETION_DETAIL_TYPE]},
            coordinator.on_event,
            name="coordinator",
        )
        # Bus triggers: every event but the engine's control flow (completions, results, reflection) is matched.
        self.backends.bus.subscribe(
            {"source": [{"anything-but": [ORCHESTRATION_SOURCE, COMPLETION_SOURCE, REFLECTION_SOURCE]}]},
            coordinator.on_bus_event,
            name="bus-triggers",
        )
        if self._pool is None:
            self._pool = SandboxPool(size=self._workers)
        self._executor = Executor(
            self.backends,
            sandbox=self._pool,
            trusted=self._trusted,
            model_spec=self._worker_model,
            trusted_calls=self._trusted_calls,
        )
        if self._fabricator_model is None:
            self._fabricator_model = self.coordinator.planner.model
        self._fabricator = Fabricator(
            self.backends,
            self._fabricator_model,
            self._pool,
            model_spec=self._worker_model,
            approval=self._approval,
            matcher=self.matcher,
        )
        fabrication = FabricationWorker(self._fabricator, self._executor)
        sweeper = Sweeper(coordinator, volatile_queue=self._volatile_queue)
        sweeper.sweep(resume=True)
        self._threads = [
            threading.Thread(target=self._work, name="arbiter-workers", daemon=True),
            threading.Thread(
                target=fabrication.run,
                args=(self._fabrication_queue, self._stop),
                name="arbiter-fabricator",
                daemon=True,
            ),
            threading.Thread(target=self._watch, args=(sweeper,), name="arbiter-watchdog", daemon=True),
        ]
        if self._completions is not None:
            self._threads.append(
                threading.Thread(
                    target=serve_completions,
                    args=(self._completions, coordinator.on_event, self._stop),
                    name="arbiter-completions",
                    daemon=True,
                )
            )
        self._planners = max(1, self._workers)
        self._threads += [
            threading.Thread(target=self._plan_submitted, name=f"arbiter-planner-{n}", daemon=True)
            for n in range(self._planners)
        ]
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        """Stop the threads and release the store; returns promptly even while trusted calls hang.

        Running sandboxed tasks finish first. Running trusted calls are cancelled (``wrapper.sdk.cancelled()``
        turns true) and not waited for: they run on daemon threads, so the process can exit; their attempts get no
        completion and stay ``running`` until the watchdog recovers them, as after a crash.
        """
        self._stop.set()
        for _ in range(self._planners):
            self._plans.put(None)
        if self._executor is not None:
            self._executor.close()
        for thread in self._threads:
            thread.join(timeout=120)
        self._threads = []
        if self._pool is not None and self._own_pool:
            self._pool.close()
        self.backends.close()

    def __enter__(self) -> LocalRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def coordinator(self) -> Coordinator:
        """The coordinator (created with the planning model on first use)."""
        if self._coordinator is None:
            if self._planner_model is None:
                self._planner_model = resolve(self._model)
            self._coordinator = build_coordinator(
                self.backends,
                self._planner_model,
                settings=self._settings,
                fabrication_queue=self._fabrication_queue,
                system_prompt=system_prompt(self._instructions),
                matcher=self.matcher,
            )
        return self._coordinator

    def _work(self) -> None:
        assert self._executor is not None
        run_worker(
            self.backends.queue,
            self._executor,
            concurrency=self._workers,
            stop=self._stop,
            wait_seconds=0.5,
            visibility_seconds=self._queue_visibility,
        )

    def _plan_submitted(self) -> None:
        """Plan the orchestrations :meth:`submit` created, one at a time, until the runtime closes.

        What is left when it closes is resumed by the next start's sweep (as after a crash).
        """
        while (orchestration_id := self._plans.get()) is not None and not self._stop.is_set():
            try:
                self.coordinator.resume(orchestration_id)
            except Exception:  # an outage: the watchdog takes the orchestration on once it is stalled
                logger.exception(
                    "orchestration_id=<%s> | first planning failed; the watchdog retries", orchestration_id
                )

    def _watch(self, sweeper: Sweeper) -> None:
        while not self._stop.wait(self._sweep_interval):
            try:
                sweeper.sweep()
            except Exception:
                logger.exception("watchdog sweep failed")

    # ---------------------------------------------------------------- agents

    def fabricate(
        self,
        capability: str,
        inputs: Mapping[str, str] | None = None,
        examples: Sequence[Mapping[str, Any]] = (),
    ) -> FabricationResult:
        """Ask the Fabricator for a worker directly, outside any orchestration.

        An active agent that matches and reproduces every example is reused; otherwise the Fabricator writes tests,
        drafts, checks each draft against the examples and its tests in the sandbox, and publishes the first that
        passes.

        Args:
            capability: what the worker computes and returns, in words.
            inputs: input name -> description.
            examples: ``{"input": {...}, "expected": ...}`` acceptance examples (at most 5).

        Raises:
            UsageError: the runtime was not started, or the request is invalid (an example's input does not fit).
            FabricationFailedError: no draft passed; nothing was published.
        """
        if self._fabricator is None:
            raise UsageError("the runtime is not started: create it with start=True (the default)")
        try:
            request = FabricationRequest.parse(
                {
                    "orchestration_id": "direct",
                    "task_id": new_id(),
                    "capability": capability,
                    "inputs": dict(inputs or {}),
                    "examples": [dict(e) for e in examples],
                }
            )
        except RecordValidationError as exc:
            raise UsageError(str(exc)) from exc
        return self._fabricator.fabricate(request)

    # ---------------------------------------------------------------- orchestrations

    def submit(self, event: Event | Mapping[str, Any] | str | bytes, *, budget: Budget | None = None) -> str:
        """Start an orchestration for ``event`` and return its id at once (the same id again for the same event).

        The orchestration is stored here; its planning (the model call) happens on the runtime's planner threads.
        A runtime created with ``start=False`` has none: it plans in the calling thread before returning. The event
        crosses the strict JSON boundary first (:func:`blackboard.ingress_event`): an EventBridge event or a
        ``PutEvents`` entry, as a mapping, JSON text or an :class:`Event`; ``detail`` may be a JSON string. Nothing
        is written for an event that is refused. An event submitted again takes its orchestration on from where it
        stopped, if it is stuck. An event that fires agents' bus triggers also starts their standing orchestration
        (once per event id; see ``docs/triggers.md``), as it does when it is published on the runtime's bus.

        Raises:
            StrictJsonError: the event breaks a rule of the boundary (the reason and the position are named).
            ReservedSourceError: its source is the engine's own (``arbiter``, ``arbiter.*``).
            RecordValidationError: it is not a valid event (the first invalid field is named).
        """
        parsed = ingress_event(event, max_bytes=self._max_event_bytes)
        if not self._threads:
            orchestration_id = self.coordinator.start(parsed, budget).id
        else:
            created = self.coordinator.create(parsed, budget)
            self._plans.put(created.record.id)
            orchestration_id = created.record.id
        self.coordinator.trigger(parsed)  # as on AWS, where an ingress event reaches the arbiter's bus triggers too
        return orchestration_id

    async def asubmit(self, event: Event | Mapping[str, Any] | str | bytes, *, budget: Budget | None = None) -> str:
        """:meth:`submit` for ``async`` code: the store write runs in a worker thread, the loop goes on."""
        return await asyncio.to_thread(self.submit, event, budget=budget)

    def stream(
        self,
        event: Event | Mapping[str, Any] | str | bytes,
        *,
        budget: Budget | None = None,
        timeout: float | None = None,
    ) -> UpdateStream:
        """Submit ``event`` now and return its updates, to iterate with ``for`` or ``async for``.

        The updates (:mod:`arbiter.updates`) come as the runtime writes: ``WavePlanned``, ``TaskStarted``,
        ``TaskFinished``, ``TaskRetried``, ``FabricationStarted``/``Published``/``Failed``, ``NoteWritten``, and last
        ``OrchestrationFinished`` with the :class:`RunResult`. The stream's ``orchestration_id`` is set at once.

        Args:
            event: as :meth:`submit`.
            budget: as :meth:`submit`.
            timeout: seconds from now after which the iteration raises ``TimeoutError`` (the orchestration goes on).

        Raises:
            StrictJsonError: as :meth:`submit` (raised here, not by the iteration).
        """
        stream = UpdateStream(self.backends.blackboard, timeout)
        try:
            stream.attach(self.submit(event, budget=budget))
        except BaseException:
            stream.close()
            raise
        return stream

    async def arun(
        self,
        event: Event | Mapping[str, Any] | str | bytes,
        *,
        budget: Budget | None = None,
        timeout: float | None = None,
    ) -> RunResult:
        """Run an orchestration for ``event`` to the end without blocking the event loop; return how it ended.

        Raises:
            TimeoutError: ``timeout`` seconds passed first (the orchestration goes on).
        """
        stream = await asyncio.to_thread(self.stream, event, budget=budget, timeout=timeout)
        try:
            async for update in stream:
                if isinstance(update, OrchestrationFinished):
                    return update.result
        finally:
            stream.close()
        raise RuntimeError("the update stream ended without the orchestration's end")  # close() was called

    def wait(self, orchestration_id: str, timeout: float | None = None) -> RunResult:
        """Block until the orchestration is finished (or ``timeout`` seconds pass: ``TimeoutError``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._finished:
            while True:
                orchestration = self.backends.blackboard.get_orchestration(orchestration_id)
                if orchestration.finished:
                    return result_of(orchestration)
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"orchestration {orchestration_id} still running after {timeout}s")
                # Woken by the finished event; the bounded wait also covers one finished by another process.
                self._finished.wait(0.5 if remaining is None else min(remaining, 0.5))

    def run(
        self,
        event: Event | Mapping[str, Any] | str | bytes,
        *,
        budget: Budget | None = None,
        timeout: float | None = None,
    ) -> RunResult:
        """Run an orchestration for ``event`` to the end and return how it ended."""
        return self.wait(self.submit(event, budget=budget), timeout)

    def orchestration(self, orchestration_id: str) -> OrchestrationView:
        """The orchestration record with its tasks and notes.

        Raises:
            OrchestrationNotFoundError: when there is none.
        """
        board = self.backends.blackboard
        record = board.get_orchestration(orchestration_id)
        return OrchestrationView(record, board.list_tasks(orchestration_id), board.notes(orchestration_id))

    def _on_finished(self, event: Event) -> None:
        with self._finished:
            self._finished.notify_all()


def _open(layout: Deployment) -> tuple[Backends, TaskQueue, TaskQueue | None]:
    """The backends, the Fabricator's queue and the completions queue (``sqlite`` only) a deployment names."""
    visibility = layout.queue_visibility_seconds
    if layout.backends is not None:
        return layout.backends, layout.fabrication_queue or MemoryTaskQueue(visibility_timeout=visibility), None
    backends = local_backends(layout.home)
    if layout.queue == "memory":
        queue = MemoryTaskQueue(visibility_timeout=visibility)
        return replace(backends, queue=queue), MemoryTaskQueue(visibility_timeout=visibility), None
    database = backends.database
    assert database is not None
    return (
        replace(backends, queue=SqliteTaskQueue(database, visibility_timeout=visibility)),
        SqliteTaskQueue(database, "fabrication", visibility_timeout=visibility),
        SqliteTaskQueue(database, COMPLETIONS_QUEUE, visibility_timeout=60),
    )
