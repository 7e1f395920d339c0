"""Agent triggers: what registration refuses (with the field named), and how a trigger fires for a note."""

from __future__ import annotations

from typing import Any

import pytest

from blackboard import AgentManifest, Event, Trigger, TriggerError
from blackboard.triggers import check_triggers, event_document, fire, note_document, resolve_path
from tests.conformance.builders import manifest

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"host": {"type": "string"}, "level": {"type": "integer"}, "key": {"type": "string"}},
    "required": ["host"],
    "additionalProperties": False,
}
ALARM = {"note": {"key": [{"prefix": "alarm:"}]}}


def trigger(pattern: dict[str, Any] | None = None, **paths: str) -> Trigger:
    return Trigger(pattern=ALARM if pattern is None else pattern, input=paths or {"host": "$.note.value.host"})


def refusal(*triggers: Trigger, schema: dict[str, Any] = SCHEMA) -> TriggerError:
    with pytest.raises(TriggerError) as caught:
        check_triggers(triggers, schema)
    return caught.value


def test_a_valid_note_trigger_passes() -> None:
    check_triggers([trigger(host="$.note.value.host", level="$.note.value.level", key="$.note.key")], SCHEMA)


@pytest.mark.parametrize(
    ("pattern", "field", "words"),
    [
        ({"note": {"key": [{"prefx": "alarm:"}]}}, "triggers[0].pattern", "unknown operator 'prefx'"),
        ({"note": {"key": []}}, "triggers[0].pattern", "non-empty list"),
        ({"note": {"colour": ["red"]}}, "triggers[0].pattern.note", "key, author, value and version"),
        ({"note": {"key": ["a"]}, "source": ["x"]}, "triggers[0].pattern", "note pattern"),
        ({"detail-type": ["x"]}, "triggers[0].pattern.source", "names the sources"),
        ({"source": [{"prefix": "shop"}]}, "triggers[0].pattern.source", "names the sources"),
        ({"source": ["arbiter.wrapper"], "detail-type": ["task.completed"]}, "triggers[0].pattern.source", "reserved"),
        ({"source": ["arbiter"]}, "triggers[0].pattern.source", "reserved"),
        ({"source": ["arbiter.fabricator"]}, "triggers[0].pattern.source", "agent.published"),
    ],
)
def test_a_bad_pattern_is_refused_with_the_field_named(pattern: dict[str, Any], field: str, words: str) -> None:
    error = refusal(trigger(pattern, host="$.source" if "source" in pattern else "$.note.key"))
    assert error.field == field
    assert words in str(error)


def test_a_valid_bus_trigger_is_accepted_and_fires_with_its_input_from_the_event() -> None:
    published = Trigger(
        pattern={"source": ["arbiter.fabricator"], "detail-type": ["agent.published"]},  # an engine announcement
        input={"host": "$.detail.name", "level": "$.detail.version", "key": "$.id"},
    )
    orders = Trigger(
        pattern={"source": ["shop.orders"], "detail": {"total": [{"numeric": [">", 100]}]}},
        input={"host": "$.detail.shop"},
    )
    check_triggers([published, orders], SCHEMA)
    event = Event.parse({"id": "e1", "source": "shop.orders", "detail-type": "Order", "detail": {"total": 120}})
    assert fire(orders, event_document(event), SCHEMA).problem == "$.detail.shop: nothing at 'shop'"
    event = event.model_copy(update={"detail": {"total": 120, "shop": "north"}})
    assert fire(orders, event_document(event), SCHEMA).input == {"host": "north"}
    assert not fire(orders, event_document(event.model_copy(update={"detail": {"total": 5}})), SCHEMA).matched
    announced = Event.parse(
        {"source": "arbiter.fabricator", "detail-type": "agent.published", "detail": {"name": "x", "version": 2}}
    )
    assert fire(published, event_document(announced, "k1"), SCHEMA).input == {"host": "x", "level": 2, "key": "k1"}


def test_a_bus_trigger_input_is_checked_against_the_schema_with_the_field_named() -> None:
    error = refusal(Trigger(pattern={"source": ["shop.orders"]}, input={"host": "$.note.key"}))
    assert error.field == "triggers[0].input.host" and "leaves the matched document" in str(error)
    error = refusal(Trigger(pattern={"source": ["shop.orders"]}, input={"host": "$.detail"}))
    assert error.field == "triggers[0].input.host" and "always of type object" in str(error)
    error = refusal(Trigger(pattern={"source": ["shop.orders"]}, input={"level": "$.detail.n"}))
    assert error.field == "triggers[0].input" and "required input 'host'" in str(error)


@pytest.mark.parametrize(
    ("paths", "field", "words"),
    [
        ({"host": "note.value.host"}, "triggers[0].input.host", "starts with '$'"),
        ({"host": "$.note..host"}, "triggers[0].input.host", "position 6"),
        ({"host": "$.detail.host"}, "triggers[0].input.host", "leaves the matched document"),
        ({"host": "$.note.value.host", "colour": "$.note.key"}, "triggers[0].input.colour", "no property 'colour'"),
        ({"host": "$.note.version"}, "triggers[0].input.host", "always of type integer"),
        ({"host": "$.note.value.host", "level": "$.note.key"}, "triggers[0].input.level", "always of type string"),
        ({"level": "$.note.version"}, "triggers[0].input", "required input 'host'"),
    ],
)
def test_an_input_the_schema_refuses_is_refused_with_the_field_named(
    paths: dict[str, str], field: str, words: str
) -> None:
    error = refusal(trigger(**paths))
    assert error.field == field
    assert words in str(error)


def test_the_faulty_trigger_is_named_by_its_index() -> None:
    error = refusal(trigger(), trigger({"note": {"key": [{"numeric": [">"]}]}}))
    assert error.field == "triggers[1].pattern"


def test_an_open_schema_takes_any_field_and_a_number_takes_an_integer() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "number"}}}
    check_triggers([trigger(n="$.note.version", extra="$.note.value")], schema)


def test_a_manifest_refuses_an_invalid_trigger_and_reads_one_stored_without_triggers() -> None:
    base = manifest().model_dump(by_alias=True)
    with pytest.raises(ValueError, match=r"triggers\[0\]\.input"):
        AgentManifest.model_validate({**base, "triggers": [{"pattern": ALARM, "input": {}}]})
    stored = {k: v for k, v in base.items() if k != "triggers"}  # as written before triggers existed
    assert AgentManifest.model_validate(stored).triggers == []
    good = {**base, "triggers": [{"pattern": ALARM, "input": {"item": "$.note.key"}}]}
    assert AgentManifest.model_validate(good).triggers[0].kind == "note"


def test_fire_gives_the_mapped_input() -> None:
    document = note_document("o1", "alarm:db1", {"host": "db1", "level": 3}, "probe@1", 2)
    firing = fire(trigger(host="$.note.value.host", level="$.note.value.level", key="$.note.key"), document, SCHEMA)
    assert firing.fires and firing.input == {"host": "db1", "level": 3, "key": "alarm:db1"}


def test_fire_does_not_match_another_key() -> None:
    document = note_document("o1", "metric:cpu", {"host": "db1"}, "probe@1", 1)
    firing = fire(trigger(), document, SCHEMA)
    assert not firing.matched and not firing.fires


@pytest.mark.parametrize(
    ("value", "words"),
    [({"level": 3}, "nothing at 'host'"), ({"host": 7}, "7 is not of type 'string'"), ([1], "nothing at 'host'")],
)
def test_a_match_whose_input_is_invalid_does_not_fire(value: Any, words: str) -> None:
    firing = fire(trigger(), note_document("o1", "alarm:x", value, "", 1), SCHEMA)
    assert firing.matched and not firing.fires
    assert firing.problem is not None and words in firing.problem


def test_paths_reach_members_elements_and_odd_names() -> None:
    document = {"note": {"value": {"hosts": ["a", "b"], "odd name": {"x-y": 1}}}}
    assert resolve_path("$.note.value.hosts[1]", document) == "b"
    assert resolve_path("$.note.value['odd name'].x-y", document) == 1
    assert resolve_path("$", document) == document
    with pytest.raises(LookupError):
        resolve_path("$.note.value.hosts[2]", document)
