"""Repairs of a draft that are certain, made before its checks instead of sending it back to the model.

A small model told what to fix often writes the same module again; where the fix follows from the draft itself,
the Fabricator makes it and the draft is checked like any other (nothing here decides that a draft is right).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

__all__ = ["with_required_parameters"]


def with_required_parameters(code: str, input_schema: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``input_schema`` with ``handler``'s parameters that have no default made required, and the names added.

    Only a parameter the schema declares among its ``properties`` is added: ``handler(numbers)`` with ``numbers``
    declared but not required is always called with it, so the schema says so. Code that does not parse, or has no
    module-level ``handler``, comes back with the schema unchanged.
    """
    schema = dict(input_schema)
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return schema, []
    handler = next((s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == "handler"), None)
    properties = schema.get("properties")
    required = schema.get("required", [])
    if handler is None or not isinstance(properties, dict) or not isinstance(required, list):
        return schema, []
    args = handler.args
    positional = [*args.posonlyargs, *args.args]
    without_default = [a.arg for a in positional[: len(positional) - len(args.defaults)]]
    without_default += [a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is None]
    added = [name for name in without_default if name in properties and name not in required]
    if added:
        schema["required"] = [*required, *added]
    return schema, added
