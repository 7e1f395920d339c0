"""Which tool calls of one reply may run together: those whose argument values the model has seen.

Calls of one reply run at the same time, so none can use another's result. A small model does not keep to that:
it writes the pager's summary with a deploy version it has not read yet. A value it has seen is in its context
(the system prompt, the tools offered, the event, earlier calls and results); a value it made up is not. So the
first call of a reply always runs (it is what one call per reply would have run), and each later one runs in the
same wave only if every argument value is grounded in the context; the others are deferred: not run, and asked
for again in the next turn, with the results of this one in view.

A string is grounded when it occurs in the context as whole words (case and runs of whitespace ignored, or
JSON-escaped as it appears inside JSON text); a number when it occurs as a number (not inside an identifier such
as ``01M91G7K``); ``true``, ``false``, ``null`` and empty strings always. Free text a model composes (a summary, a
capability) is never grounded, so such a call waits for results.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

__all__ = ["context_text", "invented_values", "split_grounded", "string_values"]

C = TypeVar("C")


def _normal(text: str) -> str:
    return " ".join(text.casefold().split())


def context_text(messages: Iterable[Any], system_prompt: str | None, specs: Iterable[Any]) -> str:
    """Everything the model has seen, normalised for :func:`invented_values`."""
    parts = [system_prompt or "", json.dumps(list(specs), default=str)]
    for message in messages:
        for block in message.get("content", []):
            if "text" in block:
                parts.append(str(block["text"]))
            elif "toolUse" in block:
                parts.append(json.dumps(block["toolUse"].get("input"), default=str))
            elif "toolResult" in block:
                for item in block["toolResult"].get("content", []):
                    parts.append(str(item.get("text", "")) if "text" in item else json.dumps(item.get("json")))
    return _normal("\n".join(parts))


def _leaves(value: Any) -> Iterable[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def string_values(value: Any) -> list[str]:
    """The strings among the leaves of a JSON value, in order."""
    return [leaf for leaf in _leaves(value) if isinstance(leaf, str)]


def _number_forms(value: float) -> set[str]:
    forms = {repr(value), str(value)}
    if isinstance(value, float) and value.is_integer():
        forms.add(str(int(value)))
    if isinstance(value, int):
        forms.add(f"{value}.0")
    return forms


def _grounded(value: Any, context: str) -> bool:
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, int | float):
        return any(re.search(rf"(?<![\w.]){re.escape(form)}(?!\w|\.\d)", context) for form in _number_forms(value))
    text = _normal(str(value))
    if not text:
        return True
    return _occurs(text, context) or _occurs(_normal(json.dumps(str(value))[1:-1]), context)


def _occurs(text: str, context: str) -> bool:
    """Whether ``text`` occurs in ``context`` as whole words (``y`` is not in ``type``)."""
    before = r"(?<!\w)" if re.match(r"\w", text) else ""
    after = r"(?!\w)" if re.search(r"\w$", text) else ""
    return re.search(before + re.escape(text) + after, context) is not None


def invented_values(arguments: Any, context: str) -> list[Any]:
    """The argument values (leaves) that do not occur in ``context`` (from :func:`context_text`)."""
    return [value for value in _leaves(arguments) if not _grounded(value, context)]


def split_grounded(calls: Sequence[C], arguments_of: Any, context: str) -> tuple[list[C], list[C]]:
    """``(run, deferred)``: the first call, and each later call whose argument values are all grounded."""
    run: list[C] = list(calls[:1])
    deferred: list[C] = []
    for call in calls[1:]:
        (deferred if invented_values(arguments_of(call), context) else run).append(call)
    return run, deferred
