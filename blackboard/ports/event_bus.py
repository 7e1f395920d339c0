"""The ``EventBus`` port: publish events in batches; subscribe handlers by EventBridge-style pattern."""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from blackboard.messages import Event
from blackboard.patterns import validate_pattern

__all__ = ["EventBus", "EventHandler", "Subscription"]

EventHandler = Callable[[Event], None]


@dataclass(eq=False)
class Subscription:
    """A pattern and the handler that receives matching events until ``close()``."""

    name: str
    pattern: Mapping[str, Any]
    handler: EventHandler
    _bus: EventBus | None = field(default=None, repr=False)

    def close(self) -> None:
        """Stop delivering to this subscription."""
        if self._bus is not None:
            self._bus._unsubscribe(self)
            self._bus = None


class EventBus(abc.ABC):
    """Publishes events. Subclasses implement ``_publish`` and, where they can deliver, ``_subscribe``."""

    def publish(self, events: Sequence[Event]) -> list[str]:
        """Publish events and return their ids (in order)."""
        if events:
            self._publish(list(events))
        return [event.id for event in events]

    def subscribe(self, pattern: Mapping[str, Any], handler: EventHandler, *, name: str = "") -> Subscription:
        """Deliver every published event matching ``pattern`` to ``handler``.

        Raises:
            PatternError: the pattern is not valid.
        """
        validate_pattern(pattern)
        subscription = Subscription(name or getattr(handler, "__name__", "handler"), dict(pattern), handler, self)
        self._subscribe(subscription)
        return subscription

    # ---------------------------------------------------------------- primitives

    @abc.abstractmethod
    def _publish(self, events: list[Event]) -> None:
        """Publish the events; deliver to matching subscriptions where this bus delivers."""

    @abc.abstractmethod
    def _subscribe(self, subscription: Subscription) -> None:
        """Start delivering to ``subscription``."""

    @abc.abstractmethod
    def _unsubscribe(self, subscription: Subscription) -> None:
        """Stop delivering to ``subscription``."""
