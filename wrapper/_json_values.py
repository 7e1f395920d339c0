"""Why a worker's value cannot cross the strict JSON boundary, said so that its author can fix it.

``json.dumps`` says "Out of range float values are not JSON compliant" without saying where, and accepts lone
surrogates that no UTF-8 reader will take back. :func:`json_problem` names the first offending value and its path
(``$.stats[2].mean``) and what to return instead; :func:`text` makes any text safe to report.
"""

from __future__ import annotations

import inspect
import json
import math
from typing import Any

__all__ = ["CONTRACT", "json_problem", "strict_json", "text"]

#: The worker contract, as the messages name it.
CONTRACT = "a plain `def handler(**input)` that returns a JSON value (dict, list, str, number, bool or None)"


def _lone_surrogate(value: str) -> str | None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"{value[exc.start]!r} at index {exc.start}"
    return None


def _child(path: str, key: object) -> str:
    return f"{path}.{key}" if isinstance(key, str) and key.isidentifier() else f"{path}[{key!r}]"


def _scalar_problem(item: object, where: str) -> str | None:
    if isinstance(item, float) and not math.isfinite(item):
        return f"{item!r} {where}: JSON has no NaN or Infinity; return None (null) or a string there instead"
    if isinstance(item, str):
        bad = _lone_surrogate(item)
        if bad is not None:
            return f"the text {where} is not valid Unicode (a lone surrogate, {bad}); return text UTF-8 can encode"
    return None


def json_problem(value: Any) -> str | None:
    """The first reason ``value`` is not strict JSON, with its path; ``None`` when it is.

    A coroutine (what an ``async def`` handler returns) is closed, so that it does not warn about never being awaited.
    """
    stack: list[tuple[Any, str]] = [(value, "$")]
    seen: set[int] = set()
    while stack:
        item, path = stack.pop()
        if item is None or isinstance(item, bool | int | float | str):
            problem = _scalar_problem(item, f"at {path}")
            if problem is not None:
                return problem
            continue
        if isinstance(item, dict | list | tuple):
            if id(item) in seen:
                continue  # shared or circular: json.dumps tells which
            seen.add(id(item))
        if isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                if not (key is None or isinstance(key, str | int | float | bool)):
                    return f"a key of type {type(key).__name__} in {path}: JSON object keys are strings"
                problem = _scalar_problem(key, f"of a key in {path}")
                if problem is not None:
                    return problem
                stack.append((child, _child(path, key)))
        elif isinstance(item, list | tuple):
            stack.extend((item[i], f"{path}[{i}]") for i in reversed(range(len(item))))
        elif inspect.isawaitable(item):
            close = getattr(item, "close", None)
            if callable(close):
                close()
            return f"a coroutine at {path} (an async def?): the contract is {CONTRACT}"
        else:
            return f"a value of type {type(item).__name__} at {path} is not JSON; the contract is {CONTRACT}"
    return None


def strict_json(value: Any) -> str:
    """``value`` as ASCII JSON that every UTF-8 reader takes back.

    Raises:
        ValueError: it is not strict JSON; the message names the value, its path and what to return instead.
    """
    try:
        encoded = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(json_problem(value) or str(exc)) from None
    if "\\ud" in encoded:  # surrogate escapes: valid pairs (emoji) pass, a lone one is named
        problem = json_problem(value)
        if problem is not None:
            raise ValueError(problem)
    return encoded


def text(value: str) -> str:
    """``value`` with any lone surrogate written as an escape, so that it can be reported as UTF-8."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")
