"""The executor's side of claims with leases: claim under this process's name, renew while running, fence the start.

The protocol (and why a reclaimed attempt is fenced) is in ``blackboard.leases``. Here:

- :meth:`ClaimKeeper.claim` claims an attempt with this process as the holder and a lease of ``lease_seconds``;
- while the attempt is held (between :meth:`ClaimKeeper.claim` and :meth:`ClaimKeeper.release`) one daemon thread
  renews every held lease each ``lease_seconds / 3``; a renewal that does not apply means the attempt was taken
  back (or timed out, or cancelled) and the attempt is dropped from the set;
- :meth:`ClaimKeeper.start_bound` is the start fence: right before a handler starts, the latest time it may start
  (the deadline or the lease expiry, the earlier), or ``None``. A start within :data:`FRESH_SHARE` of the lease
  after its claim is fenced by the claim itself, without a read: nobody can take the attempt back while the lease
  the claim wrote runs (a reclaim needs an expired lease or a dead holder), and the claim returned the task as it
  wrote it. A start that waited longer (for a thread, a zygote, the pool) reads the task again.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from datetime import datetime

from blackboard import Blackboard, BlackboardError, Task, TaskMessage, Transition
from blackboard.leases import start_by, this_process

__all__ = ["FRESH_SHARE", "ClaimKeeper"]

#: The share of the lease after a claim within which a start is fenced by the claim itself, without a read (the
#: first renewal is due at a third).
FRESH_SHARE = 1 / 3

logger = logging.getLogger(__name__)

_Key = tuple[str, str, int]


class ClaimKeeper:
    """Claims, renews and checks the attempts one executor runs.

    Args:
        board: the blackboard the tasks live on.
        lease_seconds: how long a claim stays valid without renewal; ``None`` claims without a lease (the
            attempt is then bounded by its deadline only).
    """

    def __init__(self, board: Blackboard, lease_seconds: float | None) -> None:
        if lease_seconds is not None and lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self._board = board
        self._lease = lease_seconds
        self._held: set[_Key] = set()
        self._fresh: dict[_Key, tuple[float, Task]] = {}  # claimed, not started yet: when (monotonic), as written
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def holder(self) -> str | None:
        """This process as a claim holder (``None`` without leases)."""
        return None if self._lease is None else str(this_process())

    def claim(self, message: TaskMessage) -> Transition:
        """Claim the message's attempt; when it applies, keep its lease renewed until :meth:`release`."""
        asked = time.monotonic()  # before the write: the lease it grants runs from no earlier than this
        claim = self._board.claim(
            message.orchestration_id,
            message.task_id,
            message.attempt,
            holder=self.holder,
            lease_seconds=self._lease,
        )
        if claim.applied and self._lease is not None:
            with self._lock:
                self._held.add(_key(message))
                self._fresh[_key(message)] = (asked, claim.task)
                self._ensure_thread()
        return claim

    def release(self, message: TaskMessage) -> None:
        """Stop renewing the attempt's lease (its result was written, or it ended otherwise)."""
        with self._lock:
            self._held.discard(_key(message))
            self._fresh.pop(_key(message), None)

    def start_bound(self, message: TaskMessage) -> float | None:
        """The start fence: the latest start (epoch seconds, ``math.inf`` for none), or ``None``: do not start.

        Fenced by the claim itself when the start follows it within :data:`FRESH_SHARE` of the lease (see the
        module docstring); otherwise by a conditional read of the task.
        """
        with self._lock:
            fresh = self._fresh.pop(_key(message), None)
        if fresh is not None and self._lease is not None and time.monotonic() - fresh[0] < self._lease * FRESH_SHARE:
            written = start_by(fresh[1])
            if written is None:
                return math.inf
            if written.timestamp() > time.time():
                return written.timestamp()
        task = self._board.check_start(message.orchestration_id, message.task_id, message.attempt, self.holder)
        if task is None:
            logger.info(
                "task_id=<%s>, attempt=<%d> | not starting: the attempt is no longer held or its deadline passed",
                message.task_id,
                message.attempt,
            )
            return None
        bound: datetime | None = start_by(task)
        return math.inf if bound is None else bound.timestamp()

    def close(self) -> None:
        """Stop the renewing thread (held leases then expire and the watchdog takes their attempts back)."""
        with self._lock:
            self._closed = True
            self._wake.notify_all()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._renew_loop, name="arbiter-leases", daemon=True)
            self._thread.start()

    def _renew_loop(self) -> None:
        assert self._lease is not None
        while True:
            with self._lock:
                self._wake.wait(self._lease / 3)
                if self._closed:
                    return
                held = sorted(self._held)
            holder = self.holder
            assert holder is not None
            for key in held:
                self._renew(key, holder)

    def _renew(self, key: _Key, holder: str) -> None:
        assert self._lease is not None
        orchestration_id, task_id, attempt = key
        try:
            renewed = self._board.renew_lease(orchestration_id, task_id, attempt, holder, self._lease)
        except BlackboardError:
            logger.warning("task_id=<%s> | could not renew the lease; trying again", task_id, exc_info=True)
            return
        if not renewed.applied:
            logger.info("task_id=<%s>, attempt=<%d> | lease lost: the attempt was taken back", task_id, attempt)
            with self._lock:
                self._held.discard(key)


def _key(message: TaskMessage) -> _Key:
    return (message.orchestration_id, message.task_id, message.attempt)
