"""Events from outside, taken at every entry (``arbiter run``, ``submit``, ``arbiter publish``, the ingress Lambda).

Each crosses the strict JSON boundary (:mod:`blackboard.strict_json`, limit ``ARBITER_MAX_EVENT_BYTES``), then is
read in any of the shapes AWS itself uses:

- an EventBridge event (``source``, ``detail-type``, ``detail``, and optionally ``id``, ``time``, ``resources`` ...);
- a ``PutEvents`` request entry (``Source``, ``DetailType``, ``Detail``, ``Resources``, ``Time``; ``EventBusName``
  and ``TraceHeader`` are not part of the event and are ignored);
- with ``detail`` (``Detail``) given as a JSON string, decoded under the same rules;
- for :func:`ingress_events` (``arbiter publish``), also an array of such entries or ``{"Entries": [...]}``.

The engine's own sources (``arbiter``, ``arbiter.*``: completions, orchestration results, reflection) are refused
with :class:`~blackboard.exceptions.ReservedSourceError`, and so are a blank ``source`` or ``detail-type``. The
engine publishes its events on its bus directly; none of them passes here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from blackboard import strict_json
from blackboard.exceptions import RecordValidationError, ReservedSourceError
from blackboard.messages import ORCHESTRATION_SOURCE, Event

__all__ = ["MAX_ENTRIES", "ingress_event", "ingress_events", "is_reserved_source"]

#: The most events one ``arbiter publish`` file may hold.
MAX_ENTRIES = 100
_ENTRY_FIELDS = {
    "Source": "source",
    "DetailType": "detail-type",
    "Detail": "detail",
    "Resources": "resources",
    "Time": "time",
}
_ENTRY_IGNORED = frozenset({"EventBusName", "TraceHeader"})


def is_reserved_source(source: str) -> bool:
    """Whether ``source`` is one the engine's own events use (``arbiter`` or ``arbiter.<anything>``)."""
    return source == ORCHESTRATION_SOURCE or source.startswith(ORCHESTRATION_SOURCE + ".")


def _from_entry(entry: Mapping[str, Any], what: str) -> dict[str, Any]:
    """A ``PutEvents`` entry as an event envelope."""
    clash = [key for key, name in _ENTRY_FIELDS.items() if key in entry and name in entry]
    if clash:
        raise RecordValidationError(what, clash[0], f"both {clash[0]!r} and {_ENTRY_FIELDS[clash[0]]!r} are given")
    event: dict[str, Any] = {}
    for key, value in entry.items():
        if key in _ENTRY_IGNORED:
            continue
        event[_ENTRY_FIELDS.get(key, key)] = value
    return event


def _envelope(data: Mapping[str, Any], limit: int, what: str) -> Event:
    event = _from_entry(data, what) if any(key in data for key in _ENTRY_FIELDS) else dict(data)
    detail = event.get("detail")
    if isinstance(detail, str):
        decoded = strict_json.loads(detail, max_bytes=limit, what=f"{what} detail")
        if not isinstance(decoded, dict):
            raise RecordValidationError(what, "detail", "a JSON string detail must hold an object")
        event["detail"] = decoded
        strict_json.check(event, max_bytes=limit, what=what)  # the decoded detail nests one level deeper
    try:
        parsed = Event.parse(event)
    except RecordValidationError as exc:
        raise RecordValidationError(what, exc.field, str(exc).partition(": ")[2]) from None
    return _screened(parsed, what)


def _screened(event: Event, what: str) -> Event:
    for name, value in (("source", event.source), ("detail-type", event.detail_type)):
        if not value.strip():
            raise RecordValidationError(what, name, "is blank")
    if is_reserved_source(event.source):
        raise ReservedSourceError(event.source, what)
    return event


def _document(data: Event | Mapping[str, Any] | str | bytes, limit: int, what: str) -> Any:
    if isinstance(data, str | bytes | bytearray):
        return strict_json.loads(data, max_bytes=limit, what=what)
    if isinstance(data, Event):
        # Built in Python: its detail has not been through any parser yet.
        strict_json.check(data.detail, what=f"{what} detail")
        return data.to_dict()
    strict_json.check(data, max_bytes=limit, what=what)
    return data


def ingress_event(
    data: Event | Mapping[str, Any] | str | bytes, *, max_bytes: int | None = None, what: str = "event"
) -> Event:
    """One event from outside, checked and read (see the module's docstring for the shapes and rules).

    Args:
        data: the event: JSON text or bytes, a mapping, or an :class:`Event` built in Python.
        max_bytes: the size limit (default ``$ARBITER_MAX_EVENT_BYTES``, else 256 KiB).
        what: how the errors name it (``"event file e.json"``).

    Raises:
        StrictJsonError: it breaks a rule of the strict JSON boundary (the reason and the position are named).
        ReservedSourceError: its source is the engine's own.
        RecordValidationError: it is not an event (the first missing or invalid field is named).
    """
    limit = strict_json.max_event_bytes(max_bytes)
    document = _document(data, limit, what)
    if isinstance(document, list):
        raise RecordValidationError(what, "", "one event is expected, not an array (`arbiter publish` takes arrays)")
    if not isinstance(document, Mapping):
        raise RecordValidationError(what, "", f"an event is a JSON object, not {type(document).__name__}")
    if isinstance(data, Event):
        return _screened(data, what)
    return _envelope(document, limit, what)


def ingress_events(data: str | bytes | Any, *, max_bytes: int | None = None, what: str = "events") -> list[Event]:
    """Events to publish: one event or ``PutEvents`` entry, an array of them, or ``{"Entries": [...]}``.

    The text may hold up to :data:`MAX_ENTRIES` events; each is checked against the event size limit.

    Raises:
        StrictJsonError: it breaks a rule of the strict JSON boundary (the reason and the position are named).
        ReservedSourceError: an event's source is the engine's own.
        RecordValidationError: it is not an event or an array of them (the first invalid field is named).
    """
    limit = strict_json.max_event_bytes(max_bytes)
    if isinstance(data, str | bytes | bytearray):
        document = strict_json.loads(data, max_bytes=limit * MAX_ENTRIES, what=what)
    else:
        strict_json.check(data, max_bytes=limit * MAX_ENTRIES, what=what)
        document = data
    if isinstance(document, Mapping) and set(document) == {"Entries"}:
        document = document["Entries"]
    if not isinstance(document, list):
        return [ingress_event(document, max_bytes=limit, what=what)]
    if not document:
        raise RecordValidationError(what, "", "the array holds no event")
    if len(document) > MAX_ENTRIES:
        raise RecordValidationError(what, "", f"{len(document)} events; one file holds at most {MAX_ENTRIES}")
    events = []
    for index, entry in enumerate(document):
        if not isinstance(entry, Mapping):
            raise RecordValidationError(what, f"[{index}]", "an entry is a JSON object")
        events.append(ingress_event(entry, max_bytes=limit, what=f"{what}[{index}]"))
    return events
