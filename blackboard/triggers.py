"""Agent triggers: EventBridge-style patterns over notes or bus events, and the input a match gives the agent.

A trigger is ``{"pattern": ..., "input": {field: path}}``. A **note trigger** has a pattern over one key, ``note``,
and is matched against every note written in an orchestration, seen as the document::

    {"note": {"key": ..., "author": ..., "value": ..., "version": ...}, "orchestration_id": ...}

so ``{"note": {"key": [{"prefix": "alarm:"}]}}`` fires on every note whose key starts with ``alarm:``. A **bus
trigger** names the ``source`` of the bus events it selects (``{"source": ["shop.orders"], "detail-type": [...]}``)
and is matched against the event envelope. The patterns are the project's own (:mod:`blackboard.patterns`).

``input`` maps each input field of the agent to a JSONPath-like path into the matched document: ``$`` is the
document, ``.name`` a member, ``[0]`` an array element, ``['odd name']`` a member with any name
(``{"host": "$.note.value.host", "alarm": "$.note.key"}``).

Everything is checked at registration (:func:`check_triggers`): a pattern that does not parse, a path that does not
parse or leaves the document, an input the agent's schema refuses whatever the note holds (a required field no path
gives, a field the schema does not allow, a path whose type the field cannot take), a bus trigger on a reserved
source. The error names the field (``triggers[0].input.host``).

A bus trigger's document is the event envelope as EventBridge delivers it (``{"id", "source", "detail-type",
"detail", "time", ...}``, :func:`event_document`); its paths start at one of those members (``$.detail.name``). What
a bus trigger starts is a standing orchestration per event (:mod:`blackboard.standing`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from pydantic import Field

from blackboard._base import Record
from blackboard.announcements import AGENT_PUBLISHED_DETAIL_TYPE, FABRICATOR_SOURCE
from blackboard.exceptions import PatternError, TriggerError
from blackboard.messages import Event
from blackboard.patterns import matches, validate_pattern

__all__ = [
    "MAX_TRIGGERS",
    "TRIGGERABLE_ENGINE_EVENTS",
    "Firing",
    "Trigger",
    "check_triggers",
    "event_document",
    "fire",
    "note_document",
    "resolve_path",
]

#: The most triggers one agent version may declare.
MAX_TRIGGERS = 16
#: Engine events a bus trigger may select although their source is reserved: announcements, not control flow.
#: (``task.completed`` and ``orchestration.*`` drive the engine itself: a trigger on them would feed on its own work.)
TRIGGERABLE_ENGINE_EVENTS: Mapping[str, frozenset[str]] = {FABRICATOR_SOURCE: frozenset({AGENT_PUBLISHED_DETAIL_TYPE})}

_SEGMENT = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d{1,9})\]|\['([^'\\]*)'\]")
_NOTE_TOP = frozenset({"note", "orchestration_id"})
_NOTE_FIELDS = frozenset({"key", "author", "value", "version"})
_EVENT_TOP = frozenset({"version", "id", "source", "account", "time", "region", "resources", "detail-type", "detail"})
#: JSON types of the paths whose type is known whatever the note or event holds.
_KNOWN_TYPES: Mapping[tuple[str | int, ...], str] = {
    ("note",): "object",
    ("note", "key"): "string",
    ("note", "author"): "string",
    ("note", "version"): "integer",
    ("orchestration_id",): "string",
    ("source",): "string",
    ("detail-type",): "string",
    ("id",): "string",
    ("time",): "string",
    ("detail",): "object",
    ("resources",): "array",
}
_MISSING = object()


class Trigger(Record):
    """One trigger of an agent: a pattern over notes or bus events, and the input a match gives the agent."""

    pattern: dict[str, Any]
    input: dict[str, str] = Field(default_factory=dict)

    @property
    def kind(self) -> Literal["note", "bus"]:
        """``note`` for a pattern over notes (its only key is ``note``), ``bus`` for one over bus events."""
        return "note" if "note" in self.pattern else "bus"


@dataclass(frozen=True, slots=True)
class Firing:
    """Whether a trigger fires for a document, and with which input.

    Attributes:
        matched: the pattern matches the document.
        input: the agent's input (``None`` unless it matched and the input is valid).
        problem: why a match gives no valid input (a path that finds nothing, a value the schema refuses).
    """

    matched: bool
    input: dict[str, Any] | None = None
    problem: str | None = None

    @property
    def fires(self) -> bool:
        """The trigger matches and gives a valid input: a task would be added."""
        return self.input is not None


def note_document(orchestration_id: str, key: str, value: Any, author: str, version: int) -> dict[str, Any]:
    """The document a note trigger's pattern and paths see for one note."""
    return {
        "note": {"key": key, "author": author, "value": value, "version": version},
        "orchestration_id": orchestration_id,
    }


def event_document(event: Event, event_id: str | None = None) -> dict[str, Any]:
    """The document a bus trigger's pattern and paths see for one event: its envelope (``id``: ``event_id``)."""
    document = event.to_dict()
    if event_id is not None:
        document["id"] = event_id
    return document


def _parse_path(path: str) -> tuple[str | int, ...]:
    """The segments of a path, or ``PatternError`` naming the position where it stops being one."""
    if not isinstance(path, str) or not path.startswith("$"):
        raise PatternError(f"a path starts with '$', got {path!r}")
    segments: list[str | int] = []
    position = 1
    while position < len(path):
        found = _SEGMENT.match(path, position)
        if found is None:
            raise PatternError(f"{path!r} is not a path at position {position} (use $.name, [0] or ['name'])")
        name, index, quoted = found.groups()
        segments.append(int(index) if index is not None else (name if name is not None else quoted))
        position = found.end()
    return tuple(segments)


def resolve_path(path: str, document: Any) -> Any:
    """The value ``path`` selects in ``document``.

    Raises:
        LookupError: the path leads nowhere in this document.
        PatternError: ``path`` is not a path.
    """
    value = document
    for segment in _parse_path(path):
        if isinstance(segment, int) and isinstance(value, list) and segment < len(value):
            value = value[segment]
        elif isinstance(segment, str) and isinstance(value, Mapping) and segment in value:
            value = value[segment]
        else:
            raise LookupError(f"{path}: nothing at {segment!r}")
    return value


def _types_of(schema: Any) -> set[str] | None:
    if not isinstance(schema, Mapping) or "type" not in schema:
        return None
    declared = schema["type"]
    return set(declared) if isinstance(declared, list) else {declared}


def _check_pattern(where: str, trigger: Trigger) -> None:
    try:
        validate_pattern(trigger.pattern)
    except PatternError as exc:
        raise TriggerError(f"{where}.pattern", str(exc)) from None
    top = set(trigger.pattern)
    if trigger.kind == "note":
        if not top <= _NOTE_TOP or not isinstance(trigger.pattern["note"], Mapping):
            raise TriggerError(f"{where}.pattern", 'a note pattern is {"note": {...}} (over key, author, value)')
        unknown = set(trigger.pattern["note"]) - _NOTE_FIELDS - {"$or"}
        if unknown:
            raise TriggerError(f"{where}.pattern.note", f"a note has key, author, value and version, not {unknown}")
        return
    sources = trigger.pattern.get("source")
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise TriggerError(
            f"{where}.pattern.source",
            'a trigger selects notes ({"note": {...}}) or names the sources of the bus events it selects '
            '(a list of strings: {"source": ["shop.orders"]})',
        )
    for source in sources:
        if source != "arbiter" and not source.startswith("arbiter."):
            continue
        allowed = TRIGGERABLE_ENGINE_EVENTS.get(source)
        kinds = trigger.pattern.get("detail-type")
        exact = isinstance(kinds, list) and all(isinstance(k, str) for k in kinds)
        if allowed is None or not exact or not set(kinds) <= allowed:  # type: ignore[arg-type]
            engine = ", ".join(f"{s} {sorted(t)}" for s, t in TRIGGERABLE_ENGINE_EVENTS.items())
            raise TriggerError(
                f"{where}.pattern.source",
                f"{source!r} is reserved for the engine's own events; a trigger may select only these of them, "
                f"named by their detail-type: {engine}",
            )


def _check_input(where: str, trigger: Trigger, schema: Mapping[str, Any]) -> None:
    properties = schema.get("properties") or {}
    closed = schema.get("additionalProperties") is False
    for name, path in trigger.input.items():
        field = f"{where}.input.{name}"
        try:
            segments = _parse_path(path)
        except PatternError as exc:
            raise TriggerError(field, str(exc)) from None
        top = _NOTE_TOP if trigger.kind == "note" else _EVENT_TOP
        if not segments or segments[0] not in top:
            raise TriggerError(field, f"{path!r} leaves the matched document: it starts at one of {sorted(top)}")
        if closed and name not in properties:
            raise TriggerError(field, f"the input schema has no property {name!r} (it allows no others)")
        known = _KNOWN_TYPES.get(segments)
        allowed = _types_of(properties.get(name))
        if known is not None and allowed is not None:
            fits = known in allowed or (known == "integer" and "number" in allowed)
            if not fits:
                raise TriggerError(field, f"{path!r} is always of type {known}; the schema wants {sorted(allowed)}")
    missing = [name for name in schema.get("required") or [] if name not in trigger.input]
    if missing:
        raise TriggerError(f"{where}.input", f"gives no value for the required input {missing[0]!r}")


def check_triggers(triggers: Sequence[Trigger], input_schema: Mapping[str, Any]) -> None:
    """Check an agent's triggers against its input schema (see the module doc for what is refused).

    Raises:
        TriggerError: naming the first faulty field.
    """
    if len(triggers) > MAX_TRIGGERS:
        raise TriggerError("triggers", f"at most {MAX_TRIGGERS} triggers per agent, got {len(triggers)}")
    for index, trigger in enumerate(triggers):
        where = f"triggers[{index}]"
        _check_pattern(where, trigger)
        _check_input(where, trigger, input_schema)


def fire(trigger: Trigger, document: Mapping[str, Any], input_schema: Mapping[str, Any]) -> Firing:
    """Whether ``trigger`` (already checked) fires for ``document``, and the input it gives the agent."""
    if not matches(trigger.pattern, document):
        return Firing(matched=False)
    data: dict[str, Any] = {}
    for name, path in trigger.input.items():
        try:
            data[name] = resolve_path(path, document)
        except LookupError as exc:
            return Firing(matched=True, problem=str(exc))
    error = best_match(Draft202012Validator(dict(input_schema)).iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(input)"
        return Firing(matched=True, problem=f"the input does not match the input schema: {where}: {error.message}")
    return Firing(matched=True, input=data)
