"""Checks of a structured answer's fields as they are written: a field refused stops the answer there.

A caller that can judge one field of the answer on its own asks for it with ``with field_checks({"code": check}):
...``: a provider that writes a structured answer field by field (the local model writes a code field first, then
the rest) calls ``check(value)`` once that field is written and, when it returns a problem, raises
:class:`FieldRefused` instead of writing the rest. The Fabricator runs a draft's code on the caller's examples this
way: a draft that fails them costs its code, not its code and then its name, description and schemas. A provider
that writes the whole answer at once ignores the checks; the caller judges the whole answer then, as it would
anyway. The setting holds for the calls made in the block, in this thread and in the tasks and threads it starts
with a copy of its context (``asyncio.run``, ``asyncio.to_thread``), as :mod:`wrapper.sampling` does.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType

from wrapper.exceptions import WrapperError

__all__ = ["FieldCheck", "FieldRefused", "current_field_checks", "field_checks"]

#: A check of one written field: ``None`` when it may stand, else the problem in words.
FieldCheck = Callable[[str], str | None]

_NONE: Mapping[str, FieldCheck] = MappingProxyType({})
_current: contextvars.ContextVar[Mapping[str, FieldCheck]] = contextvars.ContextVar(
    "arbiter_field_checks", default=_NONE
)


class FieldRefused(WrapperError):
    """A field of a structured answer was refused by the caller's check; the rest was not written.

    Attributes:
        field: the field's name.
        value: what was written for it.
        problem: what the check said.
        usage: the tokens the answer took so far (input, output).
    """

    def __init__(self, field: str, value: str, problem: str, usage: tuple[int, int] = (0, 0)) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        self.usage = usage
        super().__init__(f"the field {field!r} was refused: {problem[:500]}")


def current_field_checks() -> Mapping[str, FieldCheck]:
    """The field checks asked for by the calling block (by field name; empty when none)."""
    return _current.get()


@contextmanager
def field_checks(checks: Mapping[str, FieldCheck]) -> Iterator[None]:
    """Check the named fields of the structured answers written inside the block, as soon as each is written."""
    token = _current.set(MappingProxyType(dict(checks)))
    try:
        yield
    finally:
        _current.reset(token)
