"""Reading what users hand the runtime: event files, and the input schema of a Python callable."""

from __future__ import annotations

import inspect
import json
import os
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from arbiter.exceptions import UsageError
from blackboard import Event

__all__ = ["load_event_file", "schema_from_signature", "source_of"]


def source_of(handler: Callable[..., Any]) -> bytes:
    """The callable's source, kept in the code store for the record (the callable itself runs)."""
    try:
        return inspect.getsource(handler).encode()
    except (OSError, TypeError):
        return f"# {getattr(handler, '__module__', '?')}.{getattr(handler, '__qualname__', repr(handler))}\n".encode()


_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "object"}


def schema_from_signature(handler: Callable[..., Any]) -> dict[str, Any]:
    """A JSON Schema of a callable's keyword arguments, from its annotations (unknown types accept anything)."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    try:
        hints = typing.get_type_hints(handler)
    except Exception:
        hints = {}
    for parameter in inspect.signature(handler).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        origin = typing.get_origin(hints.get(parameter.name)) or hints.get(parameter.name)
        kind = _JSON_TYPES.get(origin) if isinstance(origin, type) else None
        properties[parameter.name] = {"type": kind} if kind else {}
        if parameter.default is parameter.empty:
            required.append(parameter.name)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def load_event_file(path: str | os.PathLike[str]) -> Event:
    """Read an event from a JSON file.

    Raises:
        UsageError: the file cannot be read, is not JSON, or is not a valid event (the message names the field).
    """
    try:
        raw = Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from exc
    try:
        return Event.parse(data)
    except ValueError as exc:
        raise UsageError(f"{path}: {exc}") from exc
