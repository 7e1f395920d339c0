"""Why a worker's value cannot cross the strict JSON boundary, said so that its author can fix it.

The rules and the walk are :mod:`blackboard.strict_json` (the one boundary every layer uses); this module adds what a
worker's author needs: the worker contract when the value is not JSON at all, and a closed coroutine when the
handler was an ``async def``. :func:`text` makes any text safe to report.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from blackboard.strict_json import value_problem

__all__ = ["CONTRACT", "json_problem", "strict_json", "text"]

#: The worker contract, as the messages name it.
CONTRACT = "a plain `def handler(**input)` that returns a JSON value (dict, list, str, number, bool or None)"


def json_problem(value: Any) -> str | None:
    """The first reason ``value`` is not strict JSON, with its path; ``None`` when it is.

    A coroutine (what an ``async def`` handler returns) is closed, so that it does not warn about never being awaited.
    """
    if inspect.isawaitable(value):
        close = getattr(value, "close", None)
        if callable(close):
            close()
        return f"a coroutine at $ (an async def?): the contract is {CONTRACT}"
    problem = value_problem(value)
    if problem is None:
        return None
    return f"{problem.sentence}; the contract is {CONTRACT}" if problem.foreign else problem.sentence


def strict_json(value: Any) -> str:
    """``value`` as ASCII JSON that every UTF-8 reader takes back, within the boundary's depth and integer bounds.

    Raises:
        ValueError: it is not strict JSON; the message names the value, its path and what to return instead.
    """
    problem = json_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return json.dumps(value)


def text(value: str) -> str:
    """``value`` with any lone surrogate written as an escape, so that it can be reported as UTF-8."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")
