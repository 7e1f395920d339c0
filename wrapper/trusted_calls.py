"""Trusted calls: agents registered as Python callables run in this process, bounded, and can be stopped.

Why threads, and daemon threads. A trusted agent is a callable of this process (a closure, a bound method holding its
clients and caches); that is what trusting it means. It cannot be pickled into another process, and in a forked
child its side effects on the process's own state would be lost, so it runs on a thread. A thread cannot be killed:
a call that overruns its timeout is *abandoned* (see below) and goes on until it returns. Each call runs on a daemon
thread no other call holds, so the interpreter never waits for an abandoned call at exit (the threads of a
``ThreadPoolExecutor`` are joined at exit: one hung call kept the process alive for ever) and a hung call never takes
a thread another call needs. A thread whose call returned waits up to :data:`IDLE_SECONDS` for the next call before
it exits (handing a call to a waiting thread costs about half of starting one); :meth:`TrustedCalls.close` ends the
waiting ones at once. Agent code that must never outlive its attempt belongs in the sandbox, which kills it.

The protocol, per call:

1. **A slot first.** At most ``per_agent`` calls of one agent and ``max_calls`` in all are alive at once, abandoned
   calls included (they hold their slot until they return), so a hung agent throttles itself and no one else. A call
   waits for a slot up to its timeout; the wait is not its time: its timeout starts when it starts. A call that gets
   no slot ends without running: blamed on its agent when the agent's own calls held its slots, and on the host
   (:attr:`Ended.blame` ``"pool"``) when the pool was full of other agents' calls.
2. **The time left is computed at the start**: the timeout, capped by the attempt's absolute deadline; a call whose
   deadline passed while it waited does not start.
3. **Fenced end.** Whether the call's value counts is decided once, under the lock: either it returned first (its
   value is the result), or its caller gave up first (timeout, or :meth:`TrustedCalls.close`): then its cancel event
   is set (``wrapper.sdk.cancelled()`` turns true, ``wrapper.sdk.note`` raises), and whatever it returns later is
   dropped with a log line. A late value can therefore never overwrite or join a later attempt's result.
4. **Closing** cancels every live call and wakes every waiter at once; it never waits for a call to return.

**On the caller's thread** (:meth:`TrustedCalls.run_here`). Handing a call to another thread and waiting for it costs
a wake-up of each thread, which with other busy threads means waiting for the interpreter lock: most of the cost of a
short call. A caller that can be replaced (a worker of ``wrapper.worker.serve_queue``, which sets :func:`standing_by`)
runs the call itself, under the same slots and the same fenced end. A monitor thread gives the call up at its limit
(or at :meth:`TrustedCalls.close`): it sets the call's cancel event and runs the caller's ``take_over`` on a thread of
its own, which ends the attempt (and, for a worker, starts the worker that takes its place) while the caller's thread
stays inside the call until it returns; ``run_here`` then returns ``None`` and the caller only gets out of the way.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

__all__ = ["IDLE_SECONDS", "Ended", "TakeOver", "TrustedCalls", "stand_in", "standing_by"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
#: Seconds a thread whose call returned waits for the next call before it exits.
IDLE_SECONDS = 2.0
#: The name of a thread that waits for its next call.
_IDLE_NAME = "arbiter-trusted-idle"
#: How a call ended: it ``returned``; it ran past its timeout (``timed_out``); it got ``no_slot`` before its timeout;
#: its deadline passed before it could start (``expired``); or the pool was ``closed``.
Ending = Literal["returned", "timed_out", "no_slot", "expired", "closed"]


@dataclass(frozen=True, slots=True)
class Ended(Generic[T]):
    """How one trusted call ended.

    Attributes:
        how: see :data:`Ending`.
        value: what the call returned (only when ``how == "returned"``).
        limit_seconds: the time it was given once it started (0 if it never started).
        blame: for ``no_slot``: ``agent`` (its own calls held its slots) or ``pool`` (other agents' calls held all).
        waited_seconds: how long it waited for a slot.
    """

    how: Ending
    value: T | None = None
    limit_seconds: float = 0.0
    blame: Literal["agent", "pool"] | None = None
    waited_seconds: float = 0.0


#: What :meth:`TrustedCalls.run_here` runs, on a thread of its own, when it gives a call up (how it ended).
TakeOver = Callable[["Ended[Any]"], None]

#: The hook of a caller that can be replaced (see :func:`standing_by`), in this context.
_STAND_IN: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar("arbiter_stand_in", default=None)


@contextlib.contextmanager
def standing_by(replace: Callable[[], None]) -> Iterator[None]:
    """Within the block, this thread's trusted calls may run on it: ``replace()`` is called when one is given up.

    ``replace`` is called on another thread, while this one is still inside the call: it should let another thread
    do this one's work from then on (this thread only gets out of the way once the call returns).
    """
    token = _STAND_IN.set(replace)
    try:
        yield
    finally:
        _STAND_IN.reset(token)


def stand_in() -> Callable[[], None] | None:
    """The hook :func:`standing_by` set in this context, if any."""
    return _STAND_IN.get()


@dataclass(eq=False)
class _Call:
    agent: str
    cancel: threading.Event = field(default_factory=threading.Event)
    wake: threading.Event = field(default_factory=threading.Event)
    returned: bool = False
    abandoned: bool = False
    value: object = None
    #: For a call run on its caller's thread: when it is given up (``time.monotonic()``), and by what.
    ends_at: float = 0.0
    take_over: TakeOver | None = None
    limit: float = 0.0
    waited: float = 0.0


@dataclass(eq=False)
class _Runner:
    """A daemon thread that runs one call after another: ``job`` is its next call (set under the pool's lock)."""

    job: tuple[_Call, Callable[[threading.Event, float], object], float] | None = None
    ready: threading.Event = field(default_factory=threading.Event)


class TrustedCalls:
    """Runs trusted callables on daemon threads with a per-agent and a total bound (see the module docstring).

    Args:
        per_agent: calls of one agent alive at once, abandoned ones included.
        max_calls: calls alive at once in all.
    """

    def __init__(self, *, per_agent: int = 4, max_calls: int = 32) -> None:
        if per_agent < 1 or max_calls < per_agent:
            raise ValueError(f"need 1 <= per_agent <= max_calls, got per_agent={per_agent}, max_calls={max_calls}")
        self.per_agent = per_agent
        self.max_calls = max_calls
        self._lock = threading.Condition()
        self._live: dict[str, set[_Call]] = {}
        self._total = 0
        self._closed = False
        self._idle: list[_Runner] = []  # threads whose call returned, waiting for the next one
        self._here: set[_Call] = set()  # calls running on their caller's thread, until they return or are given up
        self._monitor: threading.Thread | None = None
        self._monitor_wake = threading.Event()
        self._monitor_until = 0.0  # when the monitor wakes next by itself (under the lock)
        self._here_last = 0.0  # when the last call here started (under the lock)

    def alive(self, agent: str | None = None) -> int:
        """Calls alive now (running or abandoned and not yet returned), of ``agent`` or in all."""
        with self._lock:
            return self._total if agent is None else len(self._live.get(agent, ()))

    def run(
        self,
        agent: str,
        call: Callable[[threading.Event, float], T],
        *,
        timeout: float,
        not_after: float | None = None,
    ) -> Ended[T]:
        """Run ``call(cancel, limit_seconds)`` for ``agent`` and wait for it, within ``timeout`` once it started.

        Args:
            agent: whose call it is (the per-agent bound).
            call: the work; it gets the cancel event the caller sets when it gives up, and the seconds it was given.
            timeout: seconds it may run once started (and the longest wait for a slot).
            not_after: a ``time.monotonic()`` time after which it must not start or run (the attempt's deadline).
        """
        state = _Call(agent)
        with self._lock:
            ended = self._take_slot(state, timeout, not_after)
            if ended is not None:
                return ended
            limit, waited = state.limit, state.waited
            runner = self._idle.pop() if self._idle else None
            if runner is not None:
                # Both under the lock, which the runner takes before it parks again: no wake-up of it goes stale.
                runner.job = (state, call, limit)
                runner.ready.set()
        if runner is None:
            runner = _Runner(job=(state, call, limit))
            thread = threading.Thread(target=self._serve, args=(runner,), name=f"arbiter-trusted-{agent}", daemon=True)
            thread.start()
        state.wake.wait(limit)
        with self._lock:
            if state.returned:
                return Ended("returned", state.value, limit, waited_seconds=waited)  # type: ignore[arg-type]
            state.abandoned = True
            state.cancel.set()
            how: Ending = "closed" if self._closed else "timed_out"
        logger.debug("agent=<%s>, ending=<%s>, limit_s=<%.3f> | trusted call abandoned", agent, how, limit)
        return Ended(how, limit_seconds=limit, waited_seconds=waited)

    def run_here(
        self,
        agent: str,
        call: Callable[[threading.Event, float], T],
        *,
        timeout: float,
        take_over: TakeOver,
        not_after: float | None = None,
    ) -> Ended[T] | None:
        """Run ``call(cancel, limit_seconds)`` on this thread, under the same slots and fenced end as :meth:`run`.

        If the call is given up first (its limit passed, or the pool closed), ``take_over(ended)`` runs on a thread
        of its own at that moment (``ended.how``: ``timed_out`` or ``closed``), and this method returns ``None`` once
        the call returns (its value dropped): the caller must then do nothing more for the call. Otherwise the
        result is the call's :class:`Ended`, as :meth:`run` gives it (also when it got no slot or expired).
        """
        state = _Call(agent, take_over=take_over)
        with self._lock:
            ended = self._take_slot(state, timeout, not_after)
            if ended is not None:
                return ended
            self._here_last = time.monotonic()
            state.ends_at = self._here_last + state.limit
            self._here.add(state)
            if self._monitor is None:
                self._monitor_until = state.ends_at
                self._monitor = threading.Thread(target=self._watch, name="arbiter-calls-monitor", daemon=True)
                self._monitor.start()
            elif state.ends_at < self._monitor_until:
                self._monitor_wake.set()  # it would wake too late for this call
        me = threading.current_thread()
        name, me.name = me.name, f"arbiter-trusted-{agent}"  # named for its call while in it, as a call's own thread
        try:
            value: object = None
            try:
                value = call(state.cancel, state.limit)
            except BaseException:  # SystemExit and the like, from agent code: the call ends, the caller goes on
                logger.exception("agent=<%s> | a trusted call raised out of its frame", agent)
            finally:
                self._end(state, value)
            if state.returned:
                return Ended("returned", state.value, state.limit, waited_seconds=state.waited)  # type: ignore[arg-type]
            logger.warning("agent=<%s> | a trusted call returned after it was given up; its result is dropped", agent)
            return None
        finally:
            me.name = name

    def _take_slot(self, state: _Call, timeout: float, not_after: float | None) -> Ended[Any] | None:
        """Wait for a slot (under the lock) and take it for ``state``; ``None`` once taken, else how it ended."""
        queued = time.monotonic()
        wait_until = queued + timeout if not_after is None else min(queued + timeout, not_after)
        agent = state.agent
        while True:
            if self._closed:
                return Ended("closed", waited_seconds=time.monotonic() - queued)
            mine = len(self._live.get(agent, ()))
            if mine < self.per_agent and self._total < self.max_calls:
                break
            remaining = wait_until - time.monotonic()
            if remaining <= 0:
                blame: Literal["agent", "pool"] = "agent" if mine >= self.per_agent else "pool"
                return Ended("no_slot", blame=blame, waited_seconds=time.monotonic() - queued)
            self._lock.wait(remaining)
        started = time.monotonic()
        limit = timeout if not_after is None else min(timeout, not_after - started)
        if limit <= 0:
            return Ended("expired", waited_seconds=started - queued)
        self._live.setdefault(agent, set()).add(state)
        self._total += 1
        state.limit, state.waited = limit, started - queued
        return None

    def _watch(self) -> None:
        """The monitor: give up the calls run on their callers' threads at their limits, or all of them at close.

        It wakes at the earliest limit (or when an earlier one comes, or at close). With no call left to watch it
        waits until :data:`IDLE_SECONDS` have passed without a call starting, then ends (at close, at once); a call
        registered after it ended starts another. Most calls return before the monitor first looks at them: without
        the wait, each would start a thread of its own.
        """
        idle_since: float | None = None
        leaving = False
        while not leaving:
            given_up: list[tuple[_Call, Ending]] = []
            with self._lock:
                now = time.monotonic()
                for state in list(self._here):
                    if self._closed or state.ends_at <= now:
                        self._here.discard(state)
                        state.abandoned = True
                        state.cancel.set()
                        given_up.append((state, "closed" if self._closed else "timed_out"))
                earliest = min((c.ends_at for c in self._here), default=None)
                if earliest is not None:
                    idle_since, until = None, earliest
                else:
                    # Idle since it last saw a call, or since the last call came (it may have returned unseen).
                    idle_since = max(now if idle_since is None else idle_since, self._here_last)
                    until = idle_since + IDLE_SECONDS
                    if self._closed or now >= until:
                        self._monitor = None  # under the lock: a call registered after this starts a new monitor
                        leaving = True
                self._monitor_until = until
            for state, how in given_up:
                logger.debug("agent=<%s>, ending=<%s> | trusted call given up", state.agent, how)
                ended: Ended[Any] = Ended(how, limit_seconds=state.limit, waited_seconds=state.waited)
                threading.Thread(
                    target=state.take_over, args=(ended,), name=f"arbiter-trusted-{how}", daemon=True
                ).start()
            if leaving:
                return
            self._monitor_wake.wait(max(until - time.monotonic(), 0.0))
            self._monitor_wake.clear()

    def _end(self, state: _Call, value: object) -> None:
        """A call returned: free its slot and keep its value unless it was given up first (under the lock)."""
        with self._lock:
            calls = self._live.get(state.agent, set())
            calls.discard(state)
            if not calls:
                self._live.pop(state.agent, None)
            self._total -= 1
            self._here.discard(state)
            if not state.abandoned:
                state.returned, state.value = True, value
            self._lock.notify_all()

    def _serve(self, runner: _Runner) -> None:
        """Run the runner's calls one after another; wait up to :data:`IDLE_SECONDS` for each next one."""
        me = threading.current_thread()
        while True:
            with self._lock:
                job, runner.job = runner.job, None
            if job is None:
                return  # woken by close()
            me.name = f"arbiter-trusted-{job[0].agent}"
            self._main(*job)
            with self._lock:
                if self._closed:
                    return
                runner.ready.clear()
                self._idle.append(runner)
            me.name = _IDLE_NAME
            if not runner.ready.wait(IDLE_SECONDS):
                with self._lock:
                    if runner in self._idle:  # no call was handed to it meanwhile
                        self._idle.remove(runner)
                        return

    def _main(self, state: _Call, call: Callable[[threading.Event, float], object], limit: float) -> None:
        value: object = None
        try:
            value = call(state.cancel, limit)
        except BaseException:  # SystemExit and the like, from agent code on a thread of its own: the call ends
            logger.exception("agent=<%s> | a trusted call raised out of its thread", state.agent)
        finally:
            self._end(state, value)
            state.wake.set()
            if state.abandoned:
                logger.warning(
                    "agent=<%s> | a trusted call returned after its attempt ended; its result and notes are dropped",
                    state.agent,
                )

    def close(self) -> None:
        """Cancel every live call and wake everyone waiting; returns at once (abandoned calls end on their own)."""
        with self._lock:
            self._closed = True
            for calls in self._live.values():
                for state in calls:
                    state.cancel.set()
                    state.wake.set()
            idle, self._idle = self._idle, []
            self._lock.notify_all()
        self._monitor_wake.set()  # the calls on their callers' threads are given up as closed
        for runner in idle:
            runner.ready.set()  # no job: it exits
