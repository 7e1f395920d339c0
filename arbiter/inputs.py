"""Reading what users hand the runtime: event files, and the source and input schema of a Python callable."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from arbiter._signature import schema_from_signature
from arbiter.exceptions import UsageError
from blackboard import BlackboardError, Event, ingress_event, ingress_events

__all__ = ["load_event_file", "load_event_text", "load_events_file", "schema_from_signature", "source_of"]


def source_of(handler: Callable[..., Any]) -> bytes:
    """The callable's source, kept in the code store for the record (the callable itself runs)."""
    try:
        return inspect.getsource(handler).encode()
    except (OSError, TypeError):
        return f"# {getattr(handler, '__module__', '?')}.{getattr(handler, '__qualname__', repr(handler))}\n".encode()


def _read(path: str | os.PathLike[str]) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc


def load_event_file(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> Event:
    """Read one event from a JSON file, across the strict JSON boundary (:func:`blackboard.ingress_event`).

    The file holds an EventBridge event or a ``PutEvents`` entry; ``detail`` may be a JSON string.

    Raises:
        UsageError: the file cannot be read, breaks a rule of the boundary (the message names the reason and the
            position), names a reserved source, or is not a valid event (the message names the field).
    """
    return load_event_text(_read(path), max_bytes=max_bytes, what=f"event file {path}")


def load_event_text(raw: str | bytes, *, max_bytes: int | None = None, what: str = "event") -> Event:
    """Read one event from JSON text (pasted or uploaded), with the rules and messages of :func:`load_event_file`.

    Raises:
        UsageError: as :func:`load_event_file`; ``what`` names the text in the message.
    """
    try:
        return ingress_event(raw, max_bytes=max_bytes, what=what)
    except BlackboardError as exc:
        raise UsageError(str(exc)) from exc


def load_events_file(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> list[Event]:
    """Read the events of a JSON file: one event or ``PutEvents`` entry, an array of them, or ``{"Entries": [...]}``.

    Raises:
        UsageError: as :func:`load_event_file`, for any of the events.
    """
    raw = _read(path)
    try:
        return ingress_events(raw, max_bytes=max_bytes, what=f"event file {path}")
    except BlackboardError as exc:
        raise UsageError(str(exc)) from exc
