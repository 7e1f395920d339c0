"""Executes one task message: claim, load the pinned agent, run it, write the result, then emit the completion.

The order is the contract of the flow (ARCHITECTURE step 4):

1. **claim** the task (``dispatched → running``, conditional on the attempt), with this process as the holder and a
   lease it renews while the attempt runs (``wrapper._claims``, ``blackboard.leases``). A message whose claim does
   not apply (a duplicate delivery, a stale attempt, a task cancelled meanwhile) is dropped without a completion, so
   that each attempt has exactly one completion: the one of the executor that claimed it.
2. **load** the pinned manifest ``name@version`` (cached) and its code by SHA-256 (cached, verified on every load),
   and validate the input against the agent's JSON Schema.
3. **run** ``handler(**input)``: in the sandbox (a child process) or, only for agents registered as trusted
   (``isolation="in_process"``), in this process. Right before the handler starts, the **start fence** confirms the
   attempt is still ``running`` under this holder with its deadline and lease ahead; the sandboxed child gets the
   absolute deadline (it is killed then) and the latest start, and checks it again before calling the handler. An
   attempt whose deadline passed, or that was taken back meanwhile, never starts (``NotStarted``, timed out).
4. **write** the result (and the notes the worker contributed), **then emit** the completion event — always, whatever
   happened before: a load error, an exception, a timeout, a crash and a bad return value all become a failed or
   timed-out result with the error's type and message.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from blackboard import (
    AgentManifest,
    Backends,
    BlackboardError,
    CompletionEvent,
    Event,
    IntegrityError,
    Note,
    NotFoundError,
    RetryPolicy,
    StrictJsonError,
    Task,
    TaskError,
    TaskMessage,
    TaskResult,
    TaskState,
    Usage,
    tracing,
)
from blackboard import strict_json as boundary
from blackboard._base import utcnow
from blackboard.leases import DEFAULT_LEASE_SECONDS
from blackboard.messages import NoteSnapshot
from blackboard.ports.blackboard import Reacted
from blackboard.reactions import ReactiveAgents, react, result_note_key
from wrapper import sdk
from wrapper._claims import ClaimKeeper
from wrapper._json_values import strict_json
from wrapper.cache import CodeCache, ManifestCache
from wrapper.exceptions import NoTimeLeftError
from wrapper.sandbox import SandboxLimits, SandboxOutcome, SandboxPool, SandboxRequest
from wrapper.sandbox.pool import StartFence
from wrapper.schemas import input_problem, output_problem
from wrapper.trusted_calls import Ended, TrustedCalls, stand_in

__all__ = ["Executor", "Outcome", "TrustedHandler"]

logger = logging.getLogger(__name__)

TrustedHandler = Callable[..., Any]

#: The result fields a completion event repeats.
#: The completions :meth:`Executor.holding_completions` holds back in this context (``None``: none are held).
_HELD_COMPLETIONS: contextvars.ContextVar[list[Event] | None] = contextvars.ContextVar(
    "arbiter_held_completions", default=None
)
_REPORTED = {"status", "output", "output_ref", "error", "duration_ms", "usage", "attempt"}

#: The error type of an attempt that never started: past its deadline, or taken back from this process.
NOT_STARTED = "NotStarted"

#: Outputs larger than this (as JSON) go to the code store and travel by reference.
MAX_INLINE_OUTPUT_BYTES = 128 * 1024


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt ended, before it is written and reported (see :meth:`Executor.report`)."""

    status: TaskState
    output: Any = None
    error: TaskError | None = None
    duration_ms: float = 0.0
    usage: Usage = field(default_factory=Usage)
    notes: tuple[tuple[str, Any], ...] = ()


def _failed(error_type: str, message: str, *, retryable: bool) -> Outcome:
    return Outcome(TaskState.FAILED, error=TaskError(type=error_type, message=message, retryable=retryable))


class _Interrupted(Exception):
    """The executor closed while a trusted call ran: the attempt gets no completion, as if the process had died."""


class _GivenUp(Exception):
    """A trusted call run on the worker's own thread returned after it was given up: its attempt ended already."""


class Executor:
    """Runs task messages against a set of backends.

    Args:
        backends: where tasks, agents, code, notes and completions live.
        sandbox: the warm pool that runs sandboxed agents (required if any agent is sandboxed).
        trusted: Python callables for agents registered as trusted (``isolation="in_process"``), by agent name.
            Trusted code runs only as the callable registered in this process, never from its stored source: a
            task of a trusted agent without one fails, not retried, with ``TrustedHandlerUnavailable``. The mapping
            is read at each execution, so callables registered later are found. They run on ``trusted_calls``.
        model_spec: the model spec workers get from ``wrapper.sdk.model()``.
        limits: sandbox limits; the timeout is replaced per task by the agent's ``timeout_seconds`` (capped by the
            task's deadline).
        env: extra environment for sandboxed workers (scoped credentials), or a function returning it at each run
            (credentials that expire are renewed that way).
        retry: backoff for failed attempts (whether one happens is the task's ``max_attempts`` and the error's call).
        code_cache_dir: a local directory for copies of remote code.
        clock: returns "now" (aware UTC).
        trusted_calls: where trusted callables run: daemon threads with a per-agent and a total bound, cooperative
            cancellation and fenced results (see :mod:`wrapper.trusted_calls`); default ``TrustedCalls()``.
        lease_seconds: the lease of a claim, renewed every third of it while the attempt runs; the watchdog takes
            back an attempt whose lease ran out (its holder died). ``None``: claims without a lease.
        max_output_bytes: the largest output (compact JSON) an attempt may return (default
            ``$ARBITER_MAX_OUTPUT_BYTES``, else 32 MiB); a larger one fails the attempt with ``OutputTooLarge``.
    """

    def __init__(
        self,
        backends: Backends,
        *,
        sandbox: SandboxPool | None = None,
        trusted: Mapping[str, TrustedHandler] | None = None,
        model_spec: str | None = None,
        limits: SandboxLimits | None = None,
        env: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None,
        retry: RetryPolicy | None = None,
        code_cache_dir: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        trusted_calls: TrustedCalls | None = None,
        lease_seconds: float | None = DEFAULT_LEASE_SECONDS,
        max_output_bytes: int | None = None,
    ) -> None:
        self._backends = backends
        self._claims = ClaimKeeper(backends.blackboard, lease_seconds)
        self._max_output_bytes = boundary.max_output_bytes(max_output_bytes)
        self._sandbox = sandbox
        self._trusted = trusted if trusted is not None else {}  # shared: the caller may register more later
        self._model_spec = model_spec
        # Workers that call a hosted model need the network; with a local or scripted model they get none.
        # (Imported here: wrapper.models imports Strands, which the wrapper's own process never needs otherwise.)
        from wrapper.models import needs_network

        self._limits = limits or SandboxLimits(network=needs_network(model_spec))
        fixed = {} if callable(env) else dict(env or {})
        self._env: Callable[[], Mapping[str, str]] = env if callable(env) else (lambda: fixed)
        self._retry = retry or RetryPolicy()
        self._clock = clock
        self.manifests = ManifestCache(backends.registry)
        self._reactive = ReactiveAgents(backends.registry)
        self.code = CodeCache(backends.code_store, code_cache_dir)
        self._calls = trusted_calls or TrustedCalls()

    @property
    def sandbox(self) -> SandboxPool | None:
        """The sandbox pool sandboxed agents run in (it belongs to the caller)."""
        return self._sandbox

    def close(self) -> None:
        """Cancel the running trusted calls and stop the lease renewals; return at once (the pool is the caller's).

        A task whose trusted call was running gets no completion: its attempt stays ``running`` as if this process
        had died (its lease runs out), and the watchdog recovers it. Closing never waits for a trusted call to return.
        """
        self._claims.close()
        self._calls.close()

    def execute(self, message: TaskMessage, *, time_limit: float | None = None) -> CompletionEvent | None:
        """Run one task message; return the completion it emitted, or ``None`` if the claim did not apply.

        The execution is a span of the orchestration's trace (continued from the message's ``traceparent``) with
        the claim, the load, the run and the report inside; the completion event carries this span's context.

        Args:
            message: the task message.
            time_limit: seconds the caller can give the run at most (a Lambda invocation's remaining time, less
                what writing the result takes): the agent's timeout is capped by it.

        Raises:
            NoTimeLeftError: ``time_limit`` leaves no time to run anything; the task is not claimed, so the message
                can be delivered again (to an invocation with time) without using up an attempt.
        """
        if time_limit is not None and time_limit <= 0:
            raise NoTimeLeftError(message.task_id, time_limit)
        attributes: tracing.Attributes = {
            "arbiter.orchestration_id": message.orchestration_id,
            "arbiter.task_id": message.task_id,
            "arbiter.agent": str(message.agent),
            "arbiter.attempt": message.attempt,
        }
        with (
            tracing.bind(
                orchestration_id=message.orchestration_id,
                task_id=message.task_id,
                agent=str(message.agent),
                attempt=message.attempt,
            ),
            tracing.start_span("wrapper.execute", parent=message.traceparent, attributes=attributes) as span,
        ):
            completion = self._execute(message, time_limit)
            if span is not None:
                span.set_attribute("arbiter.status", "dropped" if completion is None else completion.status.value)
            return completion

    def _execute(self, message: TaskMessage, time_limit: float | None) -> CompletionEvent | None:
        with tracing.start_span("wrapper.claim"):
            claim = self._claims.claim(message)
        if not claim.applied:
            logger.debug(
                "task_id=<%s>, attempt=<%d>, state=<%s> | claim not applied, dropping message",
                message.task_id,
                message.attempt,
                claim.task.state,
            )
            return None
        started = time.perf_counter()
        try:
            try:
                run = self._run(message, time_limit)
            except _Interrupted:
                logger.info(
                    "task_id=<%s> | interrupted: the executor closed; the attempt is left to the watchdog",
                    message.task_id,
                )
                return None
            except _GivenUp:
                logger.info("task_id=<%s> | the call returned after its attempt was ended without it", message.task_id)
                return None
            except Exception as exc:  # the executor's own failure still ends in a completion
                logger.exception("task_id=<%s> | executor failed", message.task_id)
                run = _failed(type(exc).__name__, str(exc), retryable=getattr(exc, "retryable", True))
            if run.duration_ms == 0.0:
                run = replace(run, duration_ms=(time.perf_counter() - started) * 1000)
            return self.report(message, run, task=claim.task)
        finally:
            self._claims.release(message)

    # ---------------------------------------------------------------- running

    def _run(self, message: TaskMessage, time_limit: float | None = None) -> Outcome:
        now = self._clock()
        if message.deadline is not None and message.deadline <= now:
            return Outcome(
                TaskState.TIMED_OUT, error=TaskError(type="Timeout", message="the task's deadline passed before it ran")
            )
        if message.agent.version is None:
            return _failed("AgentNotFound", f"agent {message.agent} is not pinned to a version", retryable=False)
        try:
            with tracing.start_span("wrapper.load"):
                manifest = self.manifests.get(message.agent.name, message.agent.version)
                code = self.code.get(manifest.code.sha256)
        except IntegrityError as exc:
            logger.error("agent=<%s>, sha256=<%s> | code failed its integrity check", message.agent, exc.sha256)
            return _failed("IntegrityError", f"code of {message.agent} refused: {exc}", retryable=False)
        except NotFoundError as exc:
            return _failed("AgentNotFound", str(exc), retryable=False)
        problem = self._invalid_input(manifest, message.input)
        if problem is not None:
            return _failed("InvalidInput", problem, retryable=False)
        timeout = manifest.timeout_seconds
        if message.deadline is not None:
            timeout = min(timeout, (message.deadline - now).total_seconds())
        capped = time_limit is not None and time_limit < timeout
        if time_limit is not None:
            timeout = min(timeout, time_limit)
        context = sdk.TaskContext(
            orchestration_id=message.orchestration_id,
            task_id=message.task_id,
            attempt=message.attempt,
            agent=str(message.agent),
            deadline=message.deadline,
            model_spec=self._model_spec,
            notes={
                n.key: sdk.NoteView(value=n.value, version=n.version, author=n.author) for n in self._notes_of(message)
            },
            traceparent=message.traceparent,
        )
        with tracing.start_span(f"wrapper.run.{manifest.isolation}", attributes={"arbiter.timeout_s": timeout}):
            # The worker's own spans (in the sandbox child, or Strands' in process) continue this one.
            context = context.model_copy(update={"traceparent": tracing.current_traceparent() or context.traceparent})
            if manifest.isolation == "in_process":
                # Its time is counted from its start (the wait for a slot is not its time), capped by the caller's.
                limit = manifest.timeout_seconds if time_limit is None else min(manifest.timeout_seconds, time_limit)
                fence = functools.partial(self._claims.start_bound, message)
                here = message if time_limit is None else None
                run = self._run_in_process(manifest, message.input, context, limit, fence, here=here)
            else:
                run = self._run_sandboxed(manifest, code, message, context, time_limit)
        if capped and run.status is TaskState.TIMED_OUT:
            cause = (
                f"no result within {timeout:.1f}s, all the time the invocation running it had left (the agent's "
                f"timeout is {manifest.timeout_seconds:g}s); raise the function's timeout or lower its batch size"
            )
            run = replace(run, error=TaskError(type="Timeout", message=cause, retryable=True))
        return _held_to_contract(manifest, run)

    @staticmethod
    def _invalid_input(manifest: AgentManifest, data: Mapping[str, Any]) -> str | None:
        problem = input_problem(manifest.input_schema, data)
        return None if problem is None else f"input does not match the input schema of {manifest.ref}: {problem}"

    def _notes_of(self, message: TaskMessage) -> Sequence[NoteSnapshot | Note]:
        """The notes the message carries (as of its dispatch), else the orchestration's notes now."""
        if message.notes is not None:
            return message.notes
        return self._backends.blackboard.notes(message.orchestration_id)

    def _run_sandboxed(
        self,
        manifest: AgentManifest,
        code: bytes,
        message: TaskMessage,
        context: sdk.TaskContext,
        time_limit: float | None = None,
    ) -> Outcome:
        if self._sandbox is None:
            return _failed(
                "SandboxUnavailable", f"{manifest.ref} needs the sandbox; none is configured", retryable=False
            )
        # The timeout bounds the run; the deadline is absolute, so the time spent starting the pool or waiting for a
        # free zygote counts against it (the child is killed at it and does not start after it).
        deadline = None if message.deadline is None else message.deadline.timestamp()
        timeout = manifest.timeout_seconds if time_limit is None else min(manifest.timeout_seconds, time_limit)
        limits = replace(self._limits, timeout_seconds=max(timeout, 0.001), deadline=deadline)
        request = SandboxRequest(
            code=code,
            module_name=f"agent_{manifest.name.replace('-', '_')}_v{manifest.version}",
            input=dict(message.input),
            context=context.model_dump(mode="json"),
            entrypoint=manifest.entrypoint,
            env=dict(self._env()),
            limits=limits,
        )
        return _from_outcome(self._sandbox.run(request, fence=lambda: self._claims.start_bound(message)))

    def _run_in_process(
        self,
        manifest: AgentManifest,
        data: Mapping[str, Any],
        context: sdk.TaskContext,
        timeout: float,
        fence: StartFence,
        *,
        here: TaskMessage | None = None,
    ) -> Outcome:
        """Run a trusted callable on :class:`TrustedCalls`: on this thread when it can be replaced, else handed off.

        ``here``: the attempt's message, when no caller's time limit caps the run: then, in a worker that can be
        replaced (``trusted_calls.standing_by``), the call runs on this thread, and when it is given up at its limit
        its timed-out result is written and reported from another thread (and the worker replaced) at that moment.
        """
        handler = self._trusted.get(manifest.name)
        if handler is None:
            # Its stored source is a record of what was registered; running it would be running text as code.
            message = (
                f"{manifest.ref} is a trusted agent: it runs only as the Python callable registered for "
                f"{manifest.name!r} in the process that runs it, and this process has none. Register it before tasks "
                "run (LocalRuntime(agents=[...]) or register_agent); an `arbiter worker` process runs sandboxed "
                "agents only"
            )
            return _failed("TrustedHandlerUnavailable", message, retryable=False)

        def call(cancel: threading.Event, limit: float) -> Outcome:
            bound = fence()  # the start fence: the call may have waited for a thread past its deadline
            if bound is None or time.time() >= bound:
                return _not_started()
            started = time.perf_counter()
            # Its deadline is when this call times out, counted from its start (the wait for a slot is not its time).
            ends_at = self._clock() + timedelta(seconds=limit)
            with sdk.session(context.model_copy(update={"deadline": ends_at}), cancel) as session:
                run = _call(handler, data)
                notes, usage = tuple(session.notes), Usage(**session.usage)
            if run.status is not TaskState.SUCCEEDED:
                notes = ()
            return replace(run, duration_ms=(time.perf_counter() - started) * 1000, usage=usage, notes=notes)

        not_after = None
        if context.deadline is not None:
            not_after = time.monotonic() + (context.deadline - self._clock()).total_seconds()
        # The call's thread continues this thread's context: the current span (Strands' spans nest in it) and logs.
        parent = contextvars.copy_context()
        replace_me = stand_in() if here is not None else None
        if here is not None and replace_me is not None:
            attempt, step_aside = here, replace_me
            reporting = contextvars.copy_context()  # its own copy: the call's thread is still inside ``parent``

            def take_over(given_up: Ended[Outcome]) -> None:
                try:
                    if given_up.how != "closed":  # closing: the attempt is left to the watchdog, as after a crash
                        reporting.run(self._report_given_up, attempt, manifest, given_up)
                finally:
                    step_aside()

            # In a copy of this context, as on a thread of its own: what the call sets does not outlive it.
            ended = self._calls.run_here(
                manifest.name,
                lambda cancel, limit: parent.run(call, cancel, limit),
                timeout=timeout,
                not_after=not_after,
                take_over=take_over,
            )
            if ended is None:
                raise _GivenUp
            return self._trusted_outcome(manifest, ended)
        handed = self._calls.run(
            manifest.name,
            lambda cancel, limit: parent.run(call, cancel, limit),
            timeout=timeout,
            not_after=not_after,
        )
        return self._trusted_outcome(manifest, handed)

    def _report_given_up(self, message: TaskMessage, manifest: AgentManifest, ended: Ended[Outcome]) -> None:
        """Write and report the attempt of a call given up on the worker's thread, while that thread is still in it."""
        try:
            run = _held_to_contract(manifest, self._trusted_outcome(manifest, ended))
            self.report(message, replace(run, duration_ms=ended.limit_seconds * 1000))
        except Exception:
            logger.exception("task_id=<%s> | could not report the attempt given up", message.task_id)
        finally:
            self._claims.release(message)

    def _trusted_outcome(self, manifest: AgentManifest, ended: Ended[Outcome]) -> Outcome:
        if ended.how == "returned" and ended.value is not None:
            return ended.value
        if ended.how == "returned":
            return _failed("Crashed", f"the trusted call of {manifest.ref} ended without a result", retryable=True)
        if ended.how == "closed":
            raise _Interrupted
        if ended.how == "timed_out":
            message = f"no result within {ended.limit_seconds:.1f}s; the call was cancelled and its result is dropped"
            return Outcome(TaskState.TIMED_OUT, error=TaskError(type="Timeout", message=message))
        if ended.how == "expired":
            message = "the task's deadline passed before it started"
            return Outcome(TaskState.TIMED_OUT, error=TaskError(type="Timeout", message=message))
        if ended.blame == "agent":
            message = (
                f"not started within {ended.waited_seconds:.1f}s: {self._calls.per_agent} calls of {manifest.name} "
                "are still running (calls that overran their timeout hold their slot until they return)"
            )
            return Outcome(TaskState.TIMED_OUT, error=TaskError(type="Timeout", message=message))
        message = (
            f"not started within {ended.waited_seconds:.1f}s: all {self._calls.max_calls} trusted-call slots are held "
            "by other agents' calls; not counted against this agent"
        )
        error = TaskError(type="TrustedCallsBusy", message=message, agent_fault=False)
        return Outcome(TaskState.TIMED_OUT, error=error)

    # ---------------------------------------------------------------- finishing

    def report(self, message: TaskMessage, run: Outcome, *, task: Task | None = None) -> CompletionEvent:
        """Write an attempt's outcome (and its notes) to the blackboard, then emit its completion event, always.

        Large outputs go to the code store and travel by reference. Used for every task this executor runs, and by
        other components that execute a claimed task themselves (the Fabricator). The notes written may fire agents'
        triggers: their reactive tasks are added before the result is recorded (so the wave stays open for them,
        see :mod:`blackboard.reactions`) and named in the completion; a reactive task's own output is written as a
        note too (:func:`blackboard.reactions.result_note_key`), which the planner sees in its next turn.

        Args:
            message: the task message of the attempt.
            run: how the attempt ended.
            task: the task as claimed (read from the blackboard when notes need it and it is not given).
        """
        backends = self._backends
        run, encoded = self._bounded(message, run)
        output, output_ref = run.output, None
        if encoded is not None and len(encoded) > MAX_INLINE_OUTPUT_BYTES:
            output, output_ref = None, backends.payload_store.put(encoded).sha256
        result = TaskResult(
            status=run.status,
            output=output,
            output_ref=output_ref,
            error=run.error,
            duration_ms=run.duration_ms,
            usage=run.usage,
            attempt=message.attempt,
            finished_at=self._clock(),
        )
        retry_at = self._retry.next_attempt_at(result, self._clock())
        closes_wave = recorded = False
        notes = run.notes
        if task is not None and task.reaction is not None and run.status is TaskState.SUCCEEDED:
            kept = output if output_ref is None else {"stored": output_ref, "note": "the output was too large to show"}
            notes = (*notes, (result_note_key(task), kept))
        reactions: list[Reacted] = []
        try:
            written = self._write_notes(message, notes)
            if written:
                cause = task or backends.blackboard.get_task(message.orchestration_id, message.task_id)
                with tracing.start_span("wrapper.react", attributes={"arbiter.notes": len(written)}):
                    reactions = react(
                        backends.blackboard,
                        self._reactive,
                        cause,
                        written,
                        traceparent=tracing.current_traceparent() or message.traceparent,
                        clock=self._clock,
                    )
            transition = backends.blackboard.complete(
                message.orchestration_id, message.task_id, message.attempt, result, retry_at=retry_at
            )
            closes_wave, recorded = transition.closes_wave, transition.applied
            # The attempt has ended on the blackboard: its lease is nothing to renew while the completion goes out
            # (in one process, the next planning turn runs inside that publish, and a renewal would be refused).
            self._claims.release(message)
        except BlackboardError:
            # The completion event still goes out: its receiver records the result when this write could not.
            logger.exception("task_id=<%s> | could not write the result", message.task_id)
        completion = CompletionEvent(
            orchestration_id=message.orchestration_id,
            task_id=message.task_id,
            agent=message.agent,
            closes_wave=closes_wave,
            recorded=recorded,
            traceparent=tracing.current_traceparent() or message.traceparent,
            token=message.token,
            reactions=[r.task.task_id for r in reactions if r.applied],
            exhausted=next((r.refused for r in reactions if r.refused == "max_tasks"), None),
            **dict(result.model_dump(include=_REPORTED)),
        )
        held = _HELD_COMPLETIONS.get()
        if held is not None and completion.asks_nothing:
            held.append(completion.to_event())
        else:
            # The completions held so far go out with it, in the order they were made: one call instead of two.
            events = [*(held or ()), completion.to_event()]
            if held:
                held.clear()
            self._emit(events)
        logger.debug(
            "task_id=<%s>, attempt=<%d>, status=<%s>, closes_wave=<%s> | task finished",
            message.task_id,
            message.attempt,
            run.status,
            closes_wave,
        )
        return completion

    @contextlib.contextmanager
    def holding_completions(self) -> Iterator[None]:
        """Hold the completions that ask nothing of their receiver until the block ends, then publish them together.

        :attr:`CompletionEvent.asks_nothing` says which; EventBridge takes 10 in one call. Every other completion —
        one that closes a wave, names reactive tasks or was not recorded — is published at once.

        For a batch of messages run one after the other (the Lambda function's SQS batch): a completion nobody waits
        for costs a tenth of a call instead of one. Held completions are published in the order they were made: with
        the next completion published at once in the block (in the same call, before it), else when the block ends.
        """
        held: list[Event] = []
        token = _HELD_COMPLETIONS.set(held)
        try:
            yield
        finally:
            _HELD_COMPLETIONS.reset(token)
            if held:
                self._emit(held)

    def _emit(self, events: list[Event]) -> None:
        try:
            self._backends.bus.publish(events)
        except Exception:
            logger.exception("completions=<%d> | could not emit the completions", len(events))

    def _bounded(self, message: TaskMessage, run: Outcome) -> tuple[Outcome, bytes | None]:
        """The outcome once its output and notes crossed the strict JSON boundary, and the output's JSON.

        Whatever is written must read back: an output or note out of bounds (nested too deep, an integer out of
        range, NaN, a lone surrogate: from a trusted handler or a hostile result pipe) fails the attempt with
        ``OutputNotSerializable``, an output over the output limit with ``OutputTooLarge``; neither is retried.
        """
        if run.status is not TaskState.SUCCEEDED:
            return run, None
        try:
            for key, value in run.notes:
                boundary.check(value, what=f"note {key!r}")
            encoded = boundary.dumps(run.output, what="output").encode()
        except StrictJsonError as exc:
            logger.warning("task_id=<%s>, position=<%s> | output refused: %s", message.task_id, exc.position, exc)
            return _refused(run, "OutputNotSerializable", str(exc)), None
        if len(encoded) > self._max_output_bytes:
            size, limit = len(encoded), self._max_output_bytes
            reason = f"the output is {size:,} bytes as JSON; the limit is {limit:,} (ARBITER_MAX_OUTPUT_BYTES)"
            return _refused(run, "OutputTooLarge", reason), None
        return run, encoded

    def _write_notes(self, message: TaskMessage, notes: tuple[tuple[str, Any], ...]) -> list[Note]:
        """Write the notes of an attempt (compare-and-set on the version read); return the ones written.

        The versions are the ones the message carries (as of its dispatch), else read now. A note changed since its
        version was taken is written over the version its refused write found: the outcome a read just before the
        write would have had, without that read when nothing changed.
        """
        if not notes:
            return []
        written: list[Note] = []
        board = self._backends.blackboard
        carried = message.notes is not None
        seen = {n.key: n.version for n in self._notes_of(message)}
        for key, value in notes:
            put = functools.partial(board.put_note, message.orchestration_id, key, value, author=str(message.agent))
            applied = put(expected_version=seen.get(key, 0))
            if not applied.applied and carried:  # taken at dispatch: try once more over the version found now
                applied = put(expected_version=applied.record.version)
            if applied.applied:
                seen[key] = applied.record.version
                written.append(applied.record)
            else:
                logger.warning(
                    "task_id=<%s>, key=<%s> | note not written: another writer changed it first", message.task_id, key
                )
        return written


def _refused(run: Outcome, error_type: str, message: str) -> Outcome:
    error = TaskError(type=error_type, message=message[:65_536], retryable=False)
    return replace(run, status=TaskState.FAILED, output=None, error=error, notes=())


def _call(handler: TrustedHandler, data: Mapping[str, Any]) -> Outcome:
    """Call a trusted handler and sort its failures the way the sandbox does."""
    try:
        output = handler(**data)
    except sdk.NonRetryableError as exc:
        return _failed(type(exc).__name__, str(exc), retryable=False)
    except MemoryError as exc:
        return _failed("MemoryLimitExceeded", str(exc), retryable=False)
    except Exception as exc:
        return _failed(type(exc).__name__, str(exc), retryable=True)
    try:
        strict_json(output)
    except ValueError as exc:
        return _failed(
            "OutputNotSerializable", f"the handler returned a value that is not JSON: {exc}", retryable=False
        )
    return Outcome(TaskState.SUCCEEDED, output)


def _not_started() -> Outcome:
    message = "the attempt did not start: its deadline passed, or it is no longer held by this process"
    return Outcome(TaskState.TIMED_OUT, error=TaskError(type=NOT_STARTED, message=message))


def _held_to_contract(manifest: AgentManifest, run: Outcome) -> Outcome:
    """A succeeded run whose output breaks the agent's output schema fails, so that reflection counts wrong outputs.

    Not retryable: the same code given the same input answers the same way.
    """
    if run.status is not TaskState.SUCCEEDED or manifest.output_schema is None:
        return run
    problem = output_problem(manifest.output_schema, run.output)
    if problem is None:
        return run
    error = TaskError(
        type="OutputSchemaMismatch",
        message=f"the output of {manifest.ref} does not match its output schema at {problem}",
        retryable=False,
    )
    return replace(run, status=TaskState.FAILED, output=None, error=error, notes=())


def _from_outcome(outcome: SandboxOutcome) -> Outcome:
    usage = Usage(**{k: int(v) for k, v in outcome.usage.items() if k in Usage.model_fields})
    if outcome.status == "succeeded":
        return Outcome(TaskState.SUCCEEDED, outcome.output, None, outcome.duration_ms, usage, tuple(outcome.notes))
    message = outcome.error_message or ""
    if outcome.stdout_tail:
        message = f"{message}\n--- last output ---\n{outcome.stdout_tail}"
    error = TaskError(type=outcome.error_type or "Error", message=message[-65_536:], retryable=outcome.retryable)
    # NotStarted: the fence or the child refused to start a late attempt; it timed out before it ran.
    late = outcome.status == "timed_out" or outcome.error_type == NOT_STARTED
    status = TaskState.TIMED_OUT if late else TaskState.FAILED
    return Outcome(status, None, error, outcome.duration_ms, usage)
