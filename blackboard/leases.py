"""Claims with leases: who holds an attempt (or a planner turn), until when, and when someone else may take it.

A claim records its **holder** (host, process id and the process's start time) and a **lease expiry**. The holder
renews the lease while the attempt runs; the watchdog reclaims an attempt whose holder is gone without waiting for
the task's deadline. The protocol, and why a reclaimed attempt never counts twice:

1. *Claim*: ``dispatched → running`` at attempt ``a``, setting ``holder = h`` and ``lease_expires_at = now + L``, in
   the same conditional write as the state (one compare-and-set: attempt, state). Only one claim of ``a`` applies.
2. *Renew*: every ``L / 3`` the holder sets ``lease_expires_at = now + L`` under the condition ``state = running AND
   attempt = a AND holder = h``. A renewal that does not apply tells the holder it lost the attempt.
3. *Reclaim*: the watchdog reads a running task with lease ``e`` and decides the holder is gone: either ``e <= now``
   (no renewal for ``L``), or the holder runs on this host and its process (pid *and* start time, so a reused pid
   is not mistaken for it) no longer exists. It then writes the attempt ``timed_out`` (``LeaseExpired``, retried
   within ``max_attempts``) under ``state = running AND attempt = a AND holder = h AND lease_expires_at = e``.
   A holder that renewed after the read changed ``e``: the reclaim does not apply. A dead holder cannot renew, so
   a reclaim of a dead holder always applies once.
4. *Fence*: after a reclaim the attempt is no longer ``running`` at ``a``. The old holder's completion of ``a`` is
   a no-op (completions apply only to an active task at their attempt), its renewals do not apply, and its start
   check (below) fails, so nothing of ``a`` is recorded after the reclaim.
5. *Start fence*: right before a handler runs, the holder confirms that the task is still ``running`` at ``a``
   under ``h`` with the lease and the deadline ahead (:func:`holds`), and the handler is given
   ``start_by = min(deadline, lease expiry)``: it does not start later. Between that check and the start nobody
   else can take ``a``: by step 3 a reclaim needs the lease to have expired (after ``start_by``) or the holder
   process to be dead (then nothing starts), and the watchdog's timeout needs the deadline to have passed (after
   ``start_by``). So an attempt never starts after its deadline or after it was given to another process.

The same leases guard a planner turn on an orchestration (``planner`` / ``planning_expires_at``): the watchdog does
not plan an orchestration whose planning lease is held by a live holder, however long the model call takes.
"""

from __future__ import annotations

import functools
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime

from blackboard.records import Task
from blackboard.states import TaskState

__all__ = ["DEFAULT_LEASE_SECONDS", "Holder", "holds", "start_by", "this_process"]

#: How long a claim stays valid without a renewal; holders renew every third of it.
DEFAULT_LEASE_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Holder:
    """A process that holds claims: its host, process id and start time (a reused pid has another start time)."""

    host: str
    pid: int
    started: str

    def __str__(self) -> str:
        return f"{self.host}/{self.pid}/{self.started}"

    @classmethod
    def parse(cls, text: str | None) -> Holder | None:
        """The holder written as ``str(holder)``, or ``None`` for no holder or an unreadable one."""
        if not text:
            return None
        parts = text.split("/")
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        return cls(host=parts[0], pid=int(parts[1]), started=parts[2])

    def alive(self) -> bool | None:
        """Whether this holder's process still runs: ``None`` when that cannot be known from here (another host)."""
        if self.host != _host():
            return None
        started = _start_time(self.pid)
        if started is None:
            return False if _proc_readable() else None
        return started == self.started


def holds(task: Task, *, attempt: int, holder: str | None, now: datetime) -> bool:
    """Whether an attempt may start now: still ``running`` at ``attempt`` under ``holder``, lease and deadline ahead."""
    if task.state is not TaskState.RUNNING or task.attempt != attempt or task.holder != holder:
        return False
    if task.lease_expires_at is not None and task.lease_expires_at <= now:
        return False
    return task.deadline is None or task.deadline > now


def start_by(task: Task) -> datetime | None:
    """The latest time the attempt ``task`` is at may start: its deadline or its lease expiry, the earlier one."""
    bounds = [t for t in (task.deadline, task.lease_expires_at) if t is not None]
    return min(bounds) if bounds else None


def this_process() -> Holder:
    """The holder that stands for the calling process (computed again after a fork)."""
    return _holder(os.getpid())


@functools.cache
def _holder(pid: int) -> Holder:
    started = _start_time(pid)
    return Holder(host=_host(), pid=pid, started=started if started is not None else f"t{time.time_ns()}")


@functools.cache
def _host() -> str:
    return socket.gethostname().replace("/", "_") or "localhost"


@functools.cache
def _proc_readable() -> bool:
    return _start_time(os.getpid()) is not None


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux ``/proc``), or ``None`` if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: the fields after it start past the last ")".
    fields = stat[stat.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else None
