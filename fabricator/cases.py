"""The cases a draft is checked against: the caller's acceptance examples and the Fabricator's own tests.

The Fabricator's model writes its tests before any code, as the asserts a programmer would write
(``assert handler(text="a b") == {"count": 2}``, or ``assert handler(text="")["count"] == 0`` for one field);
:func:`parse_tests` reads them from the syntax tree (``ast.literal_eval`` of literals only: nothing is run) and
:func:`usable_tests` keeps those that can be checked: inputs with exactly the declared names, JSON values, no input
that a caller example already answers (the caller wins), no duplicates.
"""

from __future__ import annotations

import ast
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from blackboard import AcceptanceExample

__all__ = [
    "MAX_TESTS",
    "Case",
    "as_assert",
    "call_text",
    "examples_of",
    "input_key",
    "parse_literal_assignment",
    "parse_tests",
    "python_literal",
    "usable_tests",
]

logger = logging.getLogger(__name__)

#: The most generated tests a draft is checked against.
MAX_TESTS = 6


class Case(BaseModel):
    """One input with the output expected for it.

    Attributes:
        input: the handler's keyword arguments.
        expected: the expected output (an object is a subset of the output's fields: see :mod:`fabricator.compare`).
        origin: ``example`` (the caller's: always counts) or ``test`` (the Fabricator's own: can be overruled).
    """

    model_config = ConfigDict(frozen=True)

    input: dict[str, Any]
    expected: Any
    origin: Literal["example", "test"]

    @property
    def key(self) -> str:
        """The input as canonical JSON (two cases with the same key ask about the same input)."""
        return input_key(self.input)


def input_key(data: Mapping[str, Any]) -> str:
    """An input as canonical JSON, to find the cases (and checks) about the same input."""
    return json.dumps(data, sort_keys=True, default=str)


def examples_of(examples: Iterable[AcceptanceExample]) -> list[Case]:
    """The caller's acceptance examples as cases."""
    return [Case(input=dict(e.input), expected=e.expected, origin="example") for e in examples]


def python_literal(value: Any) -> str:
    """A JSON value written as the Python literal that evaluates to it (``True``, ``None``; strings as in JSON)."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{python_literal(k)}: {python_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(python_literal(v) for v in value) + "]"
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    return json.dumps(value, ensure_ascii=False)


def call_text(data: Mapping[str, Any]) -> str:
    """``handler(name=value, ...)`` for an input, values as Python literals (for prompts and evidence)."""
    arguments = ", ".join(f"{name}={python_literal(value)}" for name, value in data.items())
    return f"handler({arguments})"


def as_assert(case: Case) -> str:
    """A case written the way the model writes tests: a Python assert that would run (for prompts and feedback)."""
    return f"assert {call_text(case.input)} == {python_literal(case.expected)}"


def parse_tests(code: str, names: Sequence[str] = ()) -> list[Case]:
    """Test cases read from asserts in ``code``; what cannot be read as literals is skipped.

    Args:
        code: Python source with ``assert handler(...) == expected`` lines (or ``handler(...)["field"] ==``).
        names: the declared input names in order, for calls that pass them positionally.
    """
    tree = _parse(code)
    cases: list[Case] = []
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.Assert):
            case = _case(node.test, names)
            if case is not None:
                cases.append(case)
    return cases


def usable_tests(
    tests: Iterable[Case], inputs: Sequence[str], examples: Sequence[Case], limit: int = MAX_TESTS
) -> list[Case]:
    """The tests that can be checked: declared input names exactly, new inputs only, at most ``limit``.

    Without declared inputs, the caller examples' names are the declared ones; without either, the first test's.
    """
    declared = set(inputs) or (set(examples[0].input) if examples else set())
    seen = {case.key for case in examples}
    kept: list[Case] = []
    for case in tests:
        names = set(case.input)
        if not declared:
            declared = names
        if names != declared or case.key in seen:
            logger.debug("input=<%s> | test left out (other names, or an input already answered)", case.key)
            continue
        seen.add(case.key)
        kept.append(case)
        if len(kept) == limit:
            break
    return kept


def parse_literal_assignment(code: str, name: str) -> tuple[bool, Any]:
    """The literal value last assigned to ``name`` in ``code``: ``(True, value)``, or ``(False, None)`` if none."""
    tree = _parse(code)
    found: tuple[bool, Any] = (False, None)
    for node in tree.body if tree is not None else ():
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == name
        ):
            ok, value = _literal(node.value)
            if ok:
                found = (True, value)
    return found


def _parse(code: str) -> ast.Module | None:
    """The module's tree; a source broken somewhere keeps the statements before the break (line by line)."""
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError):
        pass
    body: list[ast.stmt] = []
    for line in code.splitlines():
        try:
            body.extend(ast.parse(line.strip()).body)
        except (SyntaxError, ValueError):
            continue
    return ast.Module(body=body, type_ignores=[])


def _case(test: ast.expr, names: Sequence[str]) -> Case | None:
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq | ast.Is)):
        return None
    left, right = test.left, test.comparators[0]
    if not _is_call(left) and _is_call(right):
        left, right = right, left
    field: str | None = None
    if isinstance(left, ast.Subscript) and isinstance(left.slice, ast.Constant) and isinstance(left.slice.value, str):
        field, left = left.slice.value, left.value
    if not isinstance(left, ast.Call) or not _is_call(left):
        return None
    arguments = _arguments(left, names)
    ok, expected = _literal(right)
    if arguments is None or not ok:
        return None
    return Case(input=arguments, expected=expected if field is None else {field: expected}, origin="test")


def _is_call(node: ast.expr) -> bool:
    if isinstance(node, ast.Subscript):
        node = node.value
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "handler"


def _arguments(call: ast.Call, names: Sequence[str]) -> dict[str, Any] | None:
    if len(call.args) > len(names) or any(k.arg is None for k in call.keywords):
        return None
    arguments: dict[str, Any] = {}
    for name, node in [*zip(names, call.args, strict=False), *((k.arg, k.value) for k in call.keywords)]:
        ok, value = _literal(node)
        if not ok or name is None:
            return None
        arguments[name] = value
    return arguments


def _literal(node: ast.expr) -> tuple[bool, Any]:
    """A JSON value from a literal (tuples become lists); ``(False, None)`` for anything else."""
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None
    value = _jsonable(value)
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False, None
    return True, value


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()} if all(isinstance(k, str) for k in value) else value
    if isinstance(value, float) and not math.isfinite(value):
        return value  # refused by the caller's json.dumps
    return value
