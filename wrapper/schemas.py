"""Checking a task input or output against an agent's JSON Schemas, with a message that says where it fails."""

from __future__ import annotations

import copy
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

__all__ = ["input_problem", "modern_bounds", "output_problem"]


@lru_cache(maxsize=2048)
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json))


#: The validators of the schema objects checked last, by identity: an agent's manifest is read once and its schemas
#: checked for every task, and keying the cache by content alone meant dumping the schema for every check. An entry
#: keeps its schema object (so that its id is not reused while it is here) and a copy of its content, compared on
#: each hit: a schema changed in place since is checked against its new content.
_RECENT_SCHEMAS = 256
_recent: OrderedDict[int, tuple[Mapping[str, Any], Any, Draft202012Validator]] = OrderedDict()
_recent_lock = threading.Lock()


def _validator_of(schema: Mapping[str, Any]) -> Draft202012Validator:
    """The validator of ``schema`` (cached by identity, then by content)."""
    with _recent_lock:
        entry = _recent.get(id(schema))
    if entry is not None and entry[0] is schema and entry[1] == schema:
        return entry[2]
    dumped = json.dumps(schema, sort_keys=True, default=str)
    validator = _validator(dumped)
    with _recent_lock:
        _recent[id(schema)] = (schema, copy.deepcopy(schema), validator)
        while len(_recent) > _RECENT_SCHEMAS:
            _recent.popitem(last=False)
    return validator


def input_problem(schema: Mapping[str, Any], data: Mapping[str, Any]) -> str | None:
    """``None`` if ``data`` matches ``schema``; else ``"<path>: <what is wrong>"`` for the most relevant error.

    Validators are cached by the schema object and its content, so checking many inputs against one agent's schema is
    cheap.
    """
    return _problem(schema, dict(data), "(input)")


def output_problem(schema: Mapping[str, Any], value: Any) -> str | None:
    """``None`` if an output ``value`` matches an agent's output ``schema``; else ``"<path>: <what is wrong>"``."""
    return _problem(schema, value, "(output)")


def _problem(schema: Mapping[str, Any], value: Any, whole: str) -> str | None:
    validator = _validator_of(schema)
    error = best_match(validator.iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or whole
    return f"{where}: {error.message}"


def modern_bounds(schema: Any) -> Any:
    """``schema`` with draft-04 exclusive bounds written as 2020-12 ones, everywhere in it.

    Draft 4 wrote ``{"minimum": 0, "exclusiveMinimum": true}``; 2020-12 writes ``{"exclusiveMinimum": 0}`` (and a
    boolean there is invalid). Models trained on older schemas write the first; it means the second.
    """
    if isinstance(schema, list):
        return [modern_bounds(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: modern_bounds(value) for key, value in schema.items()}
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        flag = result.get(exclusive)
        if isinstance(flag, bool):
            del result[exclusive]
            if flag and bound in result:
                result[exclusive] = result.pop(bound)
    return result
