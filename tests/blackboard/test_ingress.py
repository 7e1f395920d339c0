"""Events from outside: reserved sources refused, AWS's own shapes read, every shape across the strict boundary."""

from __future__ import annotations

import json
from typing import Any

import pytest

from blackboard import (
    Event,
    RecordValidationError,
    ReservedSourceError,
    StrictJsonError,
    ingress_event,
    ingress_events,
)
from blackboard.ingress import MAX_ENTRIES, is_reserved_source
from blackboard.messages import COMPLETION_SOURCE, ORCHESTRATION_SOURCE


def event(source: str = "acme.billing", **detail: Any) -> dict[str, Any]:
    return {"source": source, "detail-type": "Invoice Paid", "detail": detail or {"n": 1}}


@pytest.mark.parametrize("source", ["arbiter", "arbiter.wrapper", "arbiter.reflection", "arbiter.anything.else"])
def test_reserved_sources_are_refused_in_every_form(source: str) -> None:
    for data in (
        event(source),
        json.dumps(event(source)),
        json.dumps(event(source)).encode(),
        Event.parse(event(source)),
    ):
        with pytest.raises(ReservedSourceError, match="reserved for the engine's own events") as caught:
            ingress_event(data)
        assert caught.value.source == source
    entry = {"Source": source, "DetailType": "x", "Detail": "{}"}
    with pytest.raises(ReservedSourceError):
        ingress_events([event(), entry])


def test_the_engine_sources_are_reserved_and_lookalikes_are_not() -> None:
    assert is_reserved_source(ORCHESTRATION_SOURCE) and is_reserved_source(COMPLETION_SOURCE)
    for other in ("arbiterx", "acme.arbiter", "Arbiter.wrapper", "my-arbiter"):
        assert not is_reserved_source(other)
        assert ingress_event(event(other)).source == other


def test_a_duplicate_key_cannot_smuggle_a_reserved_source() -> None:
    raw = '{"source": "acme.billing", "detail-type": "task.completed", "detail": {}, "source": "arbiter.wrapper"}'
    with pytest.raises(StrictJsonError, match="the key 'source' more than once"):
        ingress_event(raw)


def test_detail_given_as_a_json_string_is_decoded_under_the_same_rules() -> None:
    parsed = ingress_event({"source": "s", "detail-type": "d", "detail": '{"order": 7, "items": ["a"]}'})
    assert parsed.detail == {"order": 7, "items": ["a"]}
    with pytest.raises(StrictJsonError, match="event detail refused: the object at \\$ has the key 'a'"):
        ingress_event({"source": "s", "detail-type": "d", "detail": '{"a": 1, "a": 2}'})
    with pytest.raises(StrictJsonError, match="NaN"):
        ingress_event({"source": "s", "detail-type": "d", "detail": '{"a": NaN}'})
    with pytest.raises(RecordValidationError, match="must hold an object"):
        ingress_event({"source": "s", "detail-type": "d", "detail": "[1, 2]"})
    deep = json.dumps(json.loads("[" * 63 + "]" * 63))  # 63 levels: 65 once inside detail and the envelope
    with pytest.raises(StrictJsonError, match="nests deeper than 64"):
        ingress_event({"source": "s", "detail-type": "d", "detail": '{"a": ' + deep + "}"})


def test_a_put_events_entry_is_an_event() -> None:
    entry = {
        "Source": "acme.billing",
        "DetailType": "Invoice Paid",
        "Detail": '{"invoice": "INV-1"}',
        "Resources": ["arn:aws:acme:invoice/1"],
        "Time": "2026-01-02T03:04:05Z",
        "EventBusName": "default",
        "TraceHeader": "Root=1-abc",
    }
    parsed = ingress_event(entry)
    assert (parsed.source, parsed.detail_type, parsed.detail) == ("acme.billing", "Invoice Paid", {"invoice": "INV-1"})
    assert parsed.resources == ["arn:aws:acme:invoice/1"] and parsed.time.year == 2026
    with pytest.raises(RecordValidationError, match="both 'Source' and 'source'"):
        ingress_event({**entry, "source": "other"})


def test_publish_takes_an_array_or_entries_and_checks_each() -> None:
    entries = [event(n=1), {"Source": "b", "DetailType": "d", "Detail": "{}"}]
    for data in (entries, {"Entries": entries}, json.dumps(entries), json.dumps({"Entries": entries}).encode()):
        assert [e.source for e in ingress_events(data)] == ["acme.billing", "b"]
    assert len(ingress_events(event())) == 1
    with pytest.raises(RecordValidationError, match="no event"):
        ingress_events([])
    with pytest.raises(RecordValidationError, match=f"at most {MAX_ENTRIES}"):
        ingress_events([event()] * (MAX_ENTRIES + 1))
    with pytest.raises(RecordValidationError, match=r"events\[1\]"):
        ingress_events([event(), {"source": "s"}])


def test_one_event_is_one_event() -> None:
    with pytest.raises(RecordValidationError, match="not an array"):
        ingress_event([event()])  # type: ignore[arg-type]
    with pytest.raises(RecordValidationError, match="a JSON object, not int"):
        ingress_event("7")


@pytest.mark.parametrize("field", ["source", "detail-type"])
def test_blank_source_or_detail_type_is_refused(field: str) -> None:
    with pytest.raises(RecordValidationError, match=f"{field}: is blank"):
        ingress_event({**event(), field: " \t "})


def test_size_limit_applies_to_every_form(monkeypatch: pytest.MonkeyPatch) -> None:
    big = event(text="x" * 300_000)
    for data in (big, json.dumps(big)):
        with pytest.raises(StrictJsonError, match="the limit is 262,144"):
            ingress_event(data)
    monkeypatch.setenv("ARBITER_MAX_EVENT_BYTES", "100")
    with pytest.raises(StrictJsonError, match="the limit is 100"):
        ingress_event(event(text="x" * 100))
    assert ingress_event(event(text="x" * 100), max_bytes=1000).detail["text"] == "x" * 100


def test_an_event_built_in_python_is_checked_too() -> None:
    with pytest.raises(StrictJsonError, match=r"nan at \$\.x"):
        ingress_event(Event.parse(event(x=float("nan"))))
