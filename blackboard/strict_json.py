r"""The strict JSON boundary: every outside input and every worker output crosses it before anything is written.

What passes can be written by every adapter and read back as it was; what does not is refused with the reason and
its position, as a :class:`~blackboard.exceptions.StrictJsonError`. The rules:

- text is UTF-8; a lone surrogate (raw, or escaped as ``\ud800``) is refused: no UTF-8 reader takes it back;
- an object has each key once (a duplicate would silently win over the first);
- no ``NaN``, ``Infinity`` or ``-Infinity``, nor a number so large that it becomes one (``1e400``);
- integers lie in ``[-2**63, 2**63 - 1]`` (:data:`MIN_INT`, :data:`MAX_INT`); larger numbers travel as strings;
- arrays and objects nest at most :data:`MAX_DEPTH` (64) levels deep, the document itself being the first;
- a document is at most a configurable number of bytes (compact UTF-8 JSON): events
  :data:`DEFAULT_MAX_EVENT_BYTES` (256 KiB, what EventBridge takes, ``ARBITER_MAX_EVENT_BYTES``), worker outputs
  :data:`DEFAULT_MAX_OUTPUT_BYTES` (32 MiB, ``ARBITER_MAX_OUTPUT_BYTES``; those over 128 KiB are still kept in the
  payload store and stored by reference).

A position is ``line L, column C`` in a text (byte offsets for bytes that are not UTF-8), or a path in the value
(``$.detail.items[2]``).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from typing import Any

from blackboard.constants import ENV_MAX_EVENT_BYTES, ENV_MAX_OUTPUT_BYTES
from blackboard.exceptions import ConfigurationError, StrictJsonError

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "DEFAULT_MAX_OUTPUT_BYTES",
    "MAX_DEPTH",
    "MAX_INT",
    "MIN_INT",
    "Problem",
    "check",
    "dumps",
    "loads",
    "max_event_bytes",
    "max_output_bytes",
    "value_problem",
]

MAX_DEPTH = 64
MIN_INT = -(2**63)
MAX_INT = 2**63 - 1
DEFAULT_MAX_EVENT_BYTES = 256 * 1024
DEFAULT_MAX_OUTPUT_BYTES = 32 * 1024**2

_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_INT_DIGITS = len(str(MAX_INT))  # 19: a longer literal is out of range without converting it
_PATH_CHARS = 240
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def _limit(explicit: int | None, variable: str, default: int) -> int:
    if explicit is not None:
        value: int | str = explicit
    else:
        value = os.environ.get(variable, "").strip() or default
    try:
        number = int(value)
    except ValueError:
        raise ConfigurationError(f"{variable}={value!r}: expected a number of bytes") from None
    if number < 1:
        raise ConfigurationError(f"a size limit must be at least 1 byte, not {number} ({variable})")
    return number


def max_event_bytes(explicit: int | None = None) -> int:
    """The largest event accepted: ``explicit``, else ``$ARBITER_MAX_EVENT_BYTES``, else 256 KiB.

    Raises:
        ConfigurationError: the variable is not a positive number.
    """
    return _limit(explicit, ENV_MAX_EVENT_BYTES, DEFAULT_MAX_EVENT_BYTES)


def max_output_bytes(explicit: int | None = None) -> int:
    """The largest worker output accepted: ``explicit``, else ``$ARBITER_MAX_OUTPUT_BYTES``, else 32 MiB.

    Raises:
        ConfigurationError: the variable is not a positive number.
    """
    return _limit(explicit, ENV_MAX_OUTPUT_BYTES, DEFAULT_MAX_OUTPUT_BYTES)


# ---------------------------------------------------------------- values


class _Refused:
    """What the parser puts where a number cannot stand (the walk reports it with its path)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class _Duplicated(dict[str, Any]):
    """An object whose text had ``key`` more than once."""

    def __init__(self, pairs: list[tuple[str, Any]], key: str) -> None:
        super().__init__(pairs)
        self.key = key


class _Problem(Exception):
    def __init__(self, sentence: str, *, foreign: bool = False) -> None:
        self.sentence = sentence
        self.foreign = foreign
        self.parts: list[str | int] = []


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a value is not strict JSON.

    Attributes:
        sentence: the reason, with the path in it.
        path: the path of the offending value (``$.stats[1].mean``).
        foreign: the value is not JSON at all (a Python object of another type), rather than JSON out of bounds.
    """

    sentence: str
    path: str
    foreign: bool = False


def _path(parts: list[str | int]) -> str:
    path = "$" + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" if part.isidentifier() else f"[{part!r}]"
        for part in reversed(parts)
    )
    return path if len(path) <= _PATH_CHARS else path[: _PATH_CHARS // 2] + "…" + path[-_PATH_CHARS // 2 :]


def _text_problem(value: str) -> str | None:
    found = _SURROGATE.search(value)
    return None if found is None else f"a lone surrogate, {found.group()!r} at index {found.start()}"


def _fine(value: Any) -> bool:
    """Whether ``value`` is a scalar that needs no closer look (the common case, kept cheap)."""
    kind = type(value)
    if kind is str:
        return value.isascii()  # type: ignore[no-any-return]
    if kind is int:
        return MIN_INT <= value <= MAX_INT  # type: ignore[no-any-return]
    if kind is float:
        return math.isfinite(value)
    return value is None or kind is bool


def _walk(value: Any, depth: int) -> None:
    """Raise :class:`_Problem` (``{at}`` stands for the path) at the first value that is not strict JSON."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        bad = _text_problem(value)
        if bad is not None:
            raise _Problem(f"the text at {{at}} is not valid Unicode ({bad}); use text UTF-8 can encode")
        return
    if isinstance(value, int):
        if not MIN_INT <= value <= MAX_INT:
            raise _Problem(_big_int(_digits(value)))
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Problem(f"{value!r} at {{at}}: JSON has no NaN or Infinity; use null or a string there instead")
        return
    if isinstance(value, _Refused):
        raise _Problem(value.text)
    if not isinstance(value, dict | list | tuple):
        raise _Problem(f"a value of type {type(value).__name__} at {{at}} is not JSON", foreign=True)
    if depth >= MAX_DEPTH:
        raise _Problem(f"the value at {{at}} nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, _Duplicated):
        raise _Problem(f"the object at {{at}} has the key {value.key!r} more than once")
    if isinstance(value, dict):
        plain = True
        for key, child in value.items():
            if not (type(key) is str and key.isascii()):
                _check_key(key)
                plain = plain and isinstance(key, str)
            if _fine(child):
                continue
            try:
                _walk(child, depth + 1)
            except _Problem as problem:
                problem.parts.append(key if isinstance(key, str) else repr(key))
                raise
        if not plain:
            _keys_stay_apart(value)
        return
    for index, child in enumerate(value):
        if _fine(child):
            continue
        try:
            _walk(child, depth + 1)
        except _Problem as problem:
            problem.parts.append(index)
            raise


def _check_key(key: object) -> None:
    if isinstance(key, str):
        bad = _text_problem(key)
        if bad is not None:
            raise _Problem(f"a key in {{at}} is not valid Unicode ({bad}); use text UTF-8 can encode")
    elif isinstance(key, int) and not isinstance(key, bool) and not MIN_INT <= key <= MAX_INT:
        raise _Problem(f"a key in {{at}} is an integer outside the range {MIN_INT}..{MAX_INT}")
    elif not (key is None or isinstance(key, int | float)):
        raise _Problem(f"a key of type {type(key).__name__} in {{at}}: JSON object keys are strings", foreign=True)


def _keys_stay_apart(value: dict[Any, Any]) -> None:
    """Refuse keys that JSON writes alike (``1`` and ``"1"``, ``True`` and ``"true"``): one would hide the other."""
    seen: set[str] = set()
    for key in value:
        name = json.dumps({key: 0})[1:].rpartition(":")[0]
        if name in seen:
            raise _Problem(f"the object at {{at}} has the key {json.loads(name)!r} more than once (as JSON writes it)")
        seen.add(name)


def _digits(value: int) -> int:
    if value.bit_length() < 10_000:  # str() of a far longer int is refused by the interpreter (4,300 digits)
        return len(str(abs(value)))
    return int(value.bit_length() * math.log10(2)) + 1


def _big_int(digits: int) -> str:
    return (
        f"the integer at {{at}} ({digits} digits) is outside the range {MIN_INT}..{MAX_INT}; "
        "send larger numbers as strings"
    )


def value_problem(value: Any) -> Problem | None:
    """The first reason ``value`` is not strict JSON, with its path; ``None`` when it is."""
    try:
        _walk(value, 0)
    except _Problem as problem:
        path = _path(problem.parts)
        return Problem(problem.sentence.replace("{at}", path), path, problem.foreign)
    except RecursionError:  # only for a caller already deep in its own stack
        return Problem(f"the value nests deeper than this process can follow (the limit is {MAX_DEPTH})", "$")
    return None


def check(value: Any, *, max_bytes: int | None = None, what: str = "value") -> None:
    """Refuse ``value`` unless it is strict JSON of at most ``max_bytes`` (no size limit when ``None``).

    Raises:
        StrictJsonError: naming the reason and the path of the first offending value.
    """
    if max_bytes is not None:
        dumps(value, max_bytes=max_bytes, what=what)
        return
    problem = value_problem(value)
    if problem is not None:
        raise StrictJsonError(what, problem.sentence, problem.path)


def dumps(value: Any, *, max_bytes: int | None = None, what: str = "value") -> str:
    """``value`` as compact JSON text, once it passed :func:`check`.

    Raises:
        StrictJsonError: naming the reason and the path of the first offending value.
    """
    problem = value_problem(value)
    if problem is not None:
        raise StrictJsonError(what, problem.sentence, problem.path)
    encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if max_bytes is not None:
        size = len(encoded.encode())
        if size > max_bytes:
            raise StrictJsonError(what, f"it is {size:,} bytes as JSON and the limit is {max_bytes:,}", "$")
    return encoded


# ---------------------------------------------------------------- text


def _int(literal: str) -> int | _Refused:
    if len(literal.lstrip("-")) > _MAX_INT_DIGITS:
        return _Refused(_big_int(len(literal.lstrip("-"))))
    return int(literal)


def _float(literal: str) -> float | _Refused:
    number = float(literal)
    if math.isfinite(number):
        return number
    shown = literal if len(literal) <= 24 else literal[:20] + "…"
    return _Refused(f"the number {shown} at {{at}} is too large: it would be Infinity; send it as a string")


def _constant(name: str) -> _Refused:
    return _Refused(f"{name} at {{at}}: JSON has no NaN or Infinity; use null or a string there instead")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) == len(pairs):
        return data
    seen: set[str] = set()
    duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
    return _Duplicated(pairs, duplicate)


def _line_column(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


def _too_deep_at(text: str) -> int:
    depth = 0
    for token in _TOKENS.finditer(text):
        mark = token.group()
        if mark in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return token.start()
        elif mark in "]}":
            depth -= 1
    return 0


def loads(raw: str | bytes | bytearray, *, max_bytes: int, what: str = "document") -> Any:
    """Parse one JSON document at the strict boundary (see the module's docstring for the rules).

    Raises:
        StrictJsonError: naming the reason and the position (line and column, or the path of the value).
    """
    if isinstance(raw, bytes | bytearray):
        size = len(raw)
        if size > max_bytes:
            raise StrictJsonError(what, f"it is {size:,} bytes and the limit is {max_bytes:,}", "$")
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            before = bytes(raw[: exc.start])
            line, column = before.count(b"\n") + 1, exc.start - before.rfind(b"\n")
            position = f"line {line}, byte {column} (offset {exc.start})"
            raise StrictJsonError(what, f"it is not UTF-8 (byte 0x{raw[exc.start]:02x})", position) from None
    else:
        text = raw
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            raise StrictJsonError(what, f"it is {size:,} bytes and the limit is {max_bytes:,}", "$")
    try:
        value = json.loads(
            text, object_pairs_hook=_object, parse_int=_int, parse_float=_float, parse_constant=_constant
        )
    except json.JSONDecodeError as exc:
        raise StrictJsonError(what, f"it is not valid JSON: {exc.msg}", _line_column(text, exc.pos)) from None
    except RecursionError:
        at = _too_deep_at(text)
        raise StrictJsonError(what, f"it nests deeper than {MAX_DEPTH} levels", _line_column(text, at)) from None
    problem = value_problem(value)
    if problem is not None:
        raise StrictJsonError(what, problem.sentence, problem.path)
    return value
