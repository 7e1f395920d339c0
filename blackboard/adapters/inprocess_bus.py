"""An event bus inside one process, with EventBridge-style pattern matching."""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass

from blackboard.messages import Event
from blackboard.patterns import matches
from blackboard.ports.event_bus import EventBus, Subscription

__all__ = ["FailedDelivery", "InProcessEventBus"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FailedDelivery:
    """A handler raised on an event: kept (like a target's dead-letter queue) instead of failing the publisher."""

    subscription: str
    event: Event
    error: BaseException


class InProcessEventBus(EventBus):
    """Delivers each published event to every matching subscription, synchronously, in subscription order.

    As on EventBridge, publishing succeeds whatever the targets do: a handler that raises is logged and its failure
    kept in :attr:`failed_deliveries` (the newest ``max_failures``); the other handlers still receive the event.

    Args:
        max_failures: how many failed deliveries to keep.
    """

    def __init__(self, *, max_failures: int = 1000) -> None:
        self._lock = threading.Lock()
        self._subscriptions: tuple[Subscription, ...] = ()
        self.failed_deliveries: deque[FailedDelivery] = deque(maxlen=max_failures)

    def _publish(self, events: list[Event]) -> None:
        subscriptions = self._subscriptions  # a snapshot: handlers may subscribe or close while we deliver
        for event in events:
            wire = event.to_dict()
            for subscription in subscriptions:
                if not matches(subscription.pattern, wire):
                    continue
                try:
                    subscription.handler(event)
                except Exception as exc:
                    logger.exception("subscription=<%s>, event_id=<%s> | handler failed", subscription.name, event.id)
                    self.failed_deliveries.append(FailedDelivery(subscription.name, event, exc))

    def _subscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions = (*self._subscriptions, subscription)

    def _unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions = tuple(s for s in self._subscriptions if s is not subscription)
