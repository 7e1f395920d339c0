"""Conformance: the EventBus port: pattern subscriptions, batch publish, failing handlers isolated."""

from __future__ import annotations

import pytest

from blackboard import Backends, Event, PatternError
from blackboard.adapters.inprocess_bus import InProcessEventBus
from blackboard.messages import CompletionEvent


def _event(source: str, detail_type: str, **detail: object) -> Event:
    return Event.parse({"source": source, "detail-type": detail_type, "detail": detail})


def test_delivers_matching_events_in_order(backends: Backends) -> None:
    bus = backends.bus
    got: list[str] = []
    bus.subscribe({"source": ["meal.request"], "detail-type": [{"prefix": "Order-"}]}, lambda e: got.append(e.id))
    events = [
        _event("meal.request", "Order-Placed", table=1),
        _event("meal.request", "Table-Cleared"),
        _event("other", "Order-Placed"),
        _event("meal.request", "Order-Cancelled"),
    ]
    assert bus.publish(events) == [e.id for e in events]
    assert got == [events[0].id, events[3].id]


def test_patterns_on_detail(backends: Backends) -> None:
    bus = backends.bus
    got: list[int] = []
    bus.subscribe(
        {
            "detail": {
                "severity": [{"numeric": [">=", 3]}],
                "team": [{"anything-but": "qa"}],
                "ack": [{"exists": False}],
            }
        },
        lambda e: got.append(e.detail["n"]),
    )
    bus.publish(
        [
            _event("s", "d", n=1, severity=5, team="ops"),
            _event("s", "d", n=2, severity=2, team="ops"),
            _event("s", "d", n=3, severity=4, team="qa"),
            _event("s", "d", n=4, severity=4, team="ops", ack=True),
            _event("s", "d", n=5, severity=3, team="dev"),
        ]
    )
    assert got == [1, 5]


def test_completion_events_route_by_source(backends: Backends) -> None:
    bus = backends.bus
    got: list[CompletionEvent] = []
    bus.subscribe(
        {"source": ["arbiter.wrapper"], "detail-type": ["task.completed"]},
        lambda e: got.append(CompletionEvent.parse(e.detail)),
    )
    completion = CompletionEvent.parse(
        {
            "orchestration_id": "o",
            "task_id": "t",
            "attempt": 1,
            "agent": {"name": "a", "version": 1},
            "status": "succeeded",
        }
    )
    bus.publish([completion.to_event()])
    assert got == [completion]


def test_failing_handler_does_not_stop_delivery(backends: Backends) -> None:
    bus = backends.bus
    got: list[str] = []

    def broken(event: Event) -> None:
        raise RuntimeError("handler bug")

    bus.subscribe({"source": ["s"]}, broken, name="broken")
    bus.subscribe({"source": ["s"]}, lambda e: got.append(e.id))
    event = _event("s", "d")
    assert bus.publish([event]) == [event.id]
    assert got == [event.id]
    if isinstance(bus, InProcessEventBus):
        assert [(f.subscription, f.event.id) for f in bus.failed_deliveries] == [("broken", event.id)]


def test_closed_subscription_receives_nothing(backends: Backends) -> None:
    got: list[str] = []
    subscription = backends.bus.subscribe({"source": ["s"]}, lambda e: got.append(e.id))
    subscription.close()
    subscription.close()
    backends.bus.publish([_event("s", "d")])
    assert got == []


def test_invalid_pattern_is_refused(backends: Backends) -> None:
    with pytest.raises(PatternError, match="prefx"):
        backends.bus.subscribe({"source": [{"prefx": "a"}]}, lambda e: None)
