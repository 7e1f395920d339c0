"""Checks of tool calls as a reply writes them: a call refused is not made, and the reply stops before it.

A caller that can tell from a call's first fields that it will refuse the call asks for it with ``with
call_checks({"fabricate": check}): ...``. A provider that writes replies token by token (the local model) calls
``check(arguments)`` each time another field of such a call is written whole, with the fields written so far,
and once more with the whole call; when it returns a problem, the provider stops the reply there, drops the call
(and anything written after it: what follows a call usually builds on it), and does not offer that tool again in
the same turn. The planner uses it for ``fabricate``: a small model that has called every step of its runbook
asks for a worker it already used, and 300 tokens of a request that would be refused cost 12 seconds on 2 cores.

A check sees the leading fields only; it returns a problem only when those suffice to judge. Providers that write
the whole reply at once ignore the checks, and the caller judges the calls as it always does. The setting holds
for the calls made in the block, in this thread and in the tasks and threads it starts with a copy of its
context, as :mod:`wrapper.field_checks` does.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from wrapper._fenced_tool_calls import parse_reply

__all__ = ["CallCheck", "CallScreen", "Refusal", "call_checks", "current_call_checks", "leading_fields", "open_call"]

#: A check of one call's arguments (the fields written so far): ``None`` when it may stand, else the problem.
CallCheck = Callable[[Mapping[str, Any]], str | None]

logger = logging.getLogger(__name__)

_NONE: Mapping[str, CallCheck] = MappingProxyType({})
_current: contextvars.ContextVar[Mapping[str, CallCheck]] = contextvars.ContextVar("arbiter_call_checks", default=_NONE)

_OPEN = "<tool_call>"
_CLOSE = "</tool_call>"
_HEAD = re.compile(r'\s*\{\s*"name"\s*:\s*"(?P<name>[^"\\]*)"\s*,\s*"arguments"\s*:\s*\{')
_DECODER = json.JSONDecoder()


def current_call_checks() -> Mapping[str, CallCheck]:
    """The call checks asked for by the calling block (by tool name; empty when none)."""
    return _current.get()


@contextmanager
def call_checks(checks: Mapping[str, CallCheck]) -> Iterator[None]:
    """Check the calls of the named tools in the replies written inside the block, as they are written."""
    token = _current.set(MappingProxyType(dict(checks)))
    try:
        yield
    finally:
        _current.reset(token)


def leading_fields(body: str) -> tuple[str, dict[str, Any]] | None:
    """The tool and the whole leading argument fields of a call being written, or ``None`` before its name is.

    ``body`` is what follows ``<tool_call>``: ``{"name": ..., "arguments": {...``. A field counts once a ``,`` or
    ``}`` follows its value, so that ``25`` is not read while ``250`` is being written.
    """
    head = _HEAD.match(body)
    if head is None:
        return None
    fields: dict[str, Any] = {}
    position = head.end()
    while True:
        position = _skip_space(body, position)
        if position >= len(body) or body[position] != '"':
            break
        try:
            key, position = _DECODER.raw_decode(body, position)
            position = _skip_space(body, position)
            if body[position : position + 1] != ":":
                break
            value, end = _DECODER.raw_decode(body, _skip_space(body, position + 1))
        except (ValueError, RecursionError):  # not a whole value yet, or nested past what the decoder takes
            break
        end = _skip_space(body, end)
        if body[end : end + 1] not in (",", "}"):
            break
        fields[str(key)] = value
        position = end + 1
        if body[end] == "}":
            break
    return head.group("name"), fields


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


@dataclass(frozen=True)
class Refusal:
    """A call a check refused: where its ``<tool_call>`` starts in the reply, the tool, and the problem."""

    start: int
    name: str
    problem: str


class CallScreen:
    """The checks applied to one reply as it grows; :meth:`refusal` is cheap to call after every token."""

    def __init__(self, checks: Mapping[str, CallCheck], names: Collection[str]) -> None:
        self._checks = checks
        self._names = set(names)
        self._judged: dict[tuple[int, int], str | None] = {}
        self.refused: Refusal | None = None

    def __bool__(self) -> bool:
        return bool(self._checks)

    def refusal(self, text: str) -> Refusal | None:
        """The first call of ``text`` (whole or being written) that a check refuses, remembered once found."""
        if self.refused is not None or not self._checks:
            return self.refused
        position = 0
        while (start := text.find(_OPEN, position)) >= 0:
            end = text.find(_CLOSE, start)
            body = text[start + len(_OPEN) : end if end >= 0 else len(text)]
            problem = self._judge(start, body, whole=end >= 0)
            if problem is not None:
                self.refused = Refusal(start, problem[0], problem[1])
                return self.refused
            if end < 0:
                break
            position = end + len(_CLOSE)
        return None

    def _judge(self, start: int, body: str, *, whole: bool) -> tuple[str, str] | None:
        read = leading_fields(body)
        if read is None or read[0] not in self._checks:
            return None
        name, fields = read
        if whole:
            parsed = parse_reply(_OPEN + body + _CLOSE, self._names)
            if len(parsed.calls) == 1:
                fields = dict(parsed.calls[0].input)
        key = (start, len(fields) + (1 if whole else 0))
        if key not in self._judged:
            self._judged[key] = _ask(self._checks[name], name, fields) if fields or whole else None
        problem = self._judged[key]
        return None if problem is None else (name, problem)


def _ask(check: CallCheck, name: str, fields: dict[str, Any]) -> str | None:
    """The check's verdict; a check that fails lets the call stand (its caller judges the whole call anyway)."""
    try:
        return check(MappingProxyType(fields))
    except Exception:
        logger.warning(
            "tool=<%s> | the call check failed; the call is not checked as it is written", name, exc_info=True
        )
        return None


def open_call(text: str) -> tuple[int, str | None] | None:
    """A call left unfinished at the end of ``text``: where its ``<tool_call>`` starts and its tool, if written."""
    start = text.rfind(_OPEN)
    if start < 0 or text.rfind(_CLOSE) > start:
        return None
    read = leading_fields(text[start + len(_OPEN) :])
    return start, None if read is None else read[0]
