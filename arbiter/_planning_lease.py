"""The planning lease: a durable mark that a process is calling the model for an orchestration.

A planner turn can take longer than the watchdog's ``stalled_after``; without a mark on the orchestration itself a
watchdog in another process would plan it a second time meanwhile. The lease follows ``blackboard.leases``:

1. *Take*: before the model call, the coordinator writes ``planner = <holder>#<turn>`` and ``planning_expires_at =
   now + L`` with a compare-and-set on the orchestration's version, only if no live lease of another turn is there
   (none, expired, or held by a process of this host that no longer runs). Two takers: one CAS applies. The write
   that creates an orchestration planned at once, and after a wave the write that appends its results, take the
   lease too (:meth:`PlanningLease.fields`): one write, not two.
2. *Renew*: while the model thinks, a thread renews the expiry every ``L / 3`` (a CAS each; nothing else writes a
   running orchestration while its wave is being planned, except finishing it).
3. *Use*: after the call the renewals stop, and the turn is stored on the version this lease wrote last (its take
   or its last renewal), with a compare-and-set: if anything else wrote the orchestration meanwhile (another turn
   took an expired lease, it was finished), the write does not apply and the turn is dropped. Only when a renewal
   could not tell (it failed, or found the lease gone) is the orchestration read again, and the turn used only if
   the lease is still this turn's and the conversation did not move. The write that stores the turn (the wave, the
   answer) clears the lease in the same compare-and-set, so a completion of the new wave can plan the next turn at
   once.
4. *Watchdog*: :func:`planning_held` tells the sweeper to leave an orchestration alone while a live lease is on it.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from blackboard import Blackboard, BlackboardError, Orchestration
from blackboard.leases import DEFAULT_LEASE_SECONDS, Holder, this_process

__all__ = ["RELEASED", "PlanningLease", "planning_held"]

logger = logging.getLogger(__name__)

#: The changes that clear a planning lease, added to the write that stores a turn.
RELEASED: dict[str, Any] = {"planner": None, "planning_expires_at": None}


def planning_held(orchestration: Orchestration, now: datetime) -> bool:
    """Whether a live planner holds the orchestration (unexpired lease, holder not known to be dead)."""
    if orchestration.planner is None or orchestration.planning_expires_at is None:
        return False
    if orchestration.planning_expires_at <= now:
        return False
    holder = Holder.parse(orchestration.planner.partition("#")[0])
    return holder is None or holder.alive() is not False


class PlanningLease:
    """Takes, renews and checks the planning lease of one turn.

    Args:
        board: the blackboard.
        clock: returns "now".
        lease_seconds: how long the lease lasts without renewal.
    """

    def __init__(
        self, board: Blackboard, clock: Callable[[], datetime], lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> None:
        self._board = board
        self._clock = clock
        self._lease = lease_seconds
        self.token = f"{this_process()}#{uuid.uuid4().hex[:12]}"
        self._settled = False
        self._lock = threading.Lock()
        self._held: Orchestration | None = None  # the version this lease wrote last, while it knows it is current

    def fields(self) -> dict[str, Any]:
        """The changes that take this lease, for a write that stores something else with them (a wave's results)."""
        return {"planner": self.token, "planning_expires_at": self._expiry()}

    def take(self, orchestration: Orchestration) -> Orchestration | None:
        """The orchestration with this turn's lease on it, or ``None`` if another live turn holds it (or it moved).

        A record that a write of :meth:`fields` gave already holds the lease: it is taken without another write.
        """
        if orchestration.planner == self.token:
            with self._lock:
                self._held = orchestration
            return orchestration
        if planning_held(orchestration, self._clock()):
            logger.debug(
                "orchestration_id=<%s>, planner=<%s> | being planned elsewhere", orchestration.id, orchestration.planner
            )
            return None
        taken = self._board.update_orchestration(orchestration, planner=self.token, planning_expires_at=self._expiry())
        if not taken.applied:
            return None
        with self._lock:
            self._held = taken.record
        return taken.record

    @contextmanager
    def renewing(self, orchestration_id: str) -> Iterator[None]:
        """Renew the lease in the background for the duration of the block (the model call)."""
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(self._lease / 3):
                try:
                    current = self._board.get_orchestration(orchestration_id)
                    if current.planner != self.token or current.finished:
                        self._forget()
                        return
                    renewed = self._board.update_orchestration(current, planning_expires_at=self._expiry())
                    with self._lock:
                        self._held = renewed.record if renewed.applied else None
                except BlackboardError:
                    self._forget()
                    logger.warning("orchestration_id=<%s> | could not renew the planning lease", orchestration_id)

        thread = threading.Thread(target=renew, name="arbiter-planning-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def after_turn(self, before: Orchestration) -> Orchestration | None:
        """The orchestration to store the turn on, or ``None``: the lease was lost, or the orchestration moved.

        The version this lease wrote last, without a read, while its renewals knew it to be current (the write that
        stores the turn is conditional on that version, so any other write meanwhile makes it not apply); else read
        again, and used only if it is still this turn's and unchanged but for the lease.
        """
        with self._lock:
            held = self._held
        if held is not None and held.id == before.id:
            return held
        current = self._board.get_orchestration(before.id)
        same = (current.status, current.wave, current.conversation) == (before.status, before.wave, before.conversation)
        if current.planner != self.token or not same:
            logger.info("orchestration_id=<%s> | planning lease lost during the model call; turn dropped", before.id)
            return None
        return current

    def _forget(self) -> None:
        with self._lock:
            self._held = None

    def settled(self) -> None:
        """Say that the turn's own write cleared the lease (a wave, an answer): :meth:`release` then reads nothing."""
        self._settled = True

    def release(self, orchestration_id: str) -> None:
        """Clear the lease if it is still this turn's (a turn that stored nothing); best effort."""
        if self._settled:
            return
        try:
            current = self._board.get_orchestration(orchestration_id)
            if current.planner == self.token and not current.finished:
                self._board.update_orchestration(current, **RELEASED)
        except BlackboardError:
            logger.warning("orchestration_id=<%s> | could not release the planning lease", orchestration_id)

    def _expiry(self) -> datetime:
        return self._clock() + timedelta(seconds=self._lease)
