"""Probe inputs: the caller's example inputs pushed to the edges a capability's rules are about, with no expected value.

A worker that reproduces the caller's examples can still misread a rule the examples do not exercise: which
characters count (an accented letter), the sign of a negative number, an empty text or list, zero. A probe is an
example input with one field changed towards such an edge: the empty value, a lone element, an accented or
upper-cased text, zero, the negated number. Nothing expected is known for a probe; what it is for is comparison:
two candidates written apart that both reproduce the examples should also give the same output on every probe
(see :mod:`fabricator.crosscheck`). Probes are built by rule from the inputs, never by the model, so that they do not
share the model's misreading.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fabricator.cases import input_key

__all__ = ["MAX_PROBES", "probes"]

#: The most probes one fabrication runs per candidate.
MAX_PROBES = 12

_ACCENTED = str.maketrans({"a": "á", "e": "é", "o": "ö", "u": "ü", "i": "î", "n": "ñ", "c": "ç"})


def _accented(text: str) -> str:
    """``text`` with its first accentable letter given an accent (``café`` from ``cafe``); unchanged if none."""
    for index, char in enumerate(text):
        mark = char.translate(_ACCENTED)
        if mark != char:
            return text[:index] + mark + text[index + 1 :]
    return text


def _texts(value: str) -> list[str]:
    variants = ["", value[:1], value.upper(), _accented(value), f" {value}! ", value + value[-1:]]
    if any(c.isdigit() for c in value):
        variants.append("".join(c for c in value if not c.isdigit()) or "x")
    return variants


def _numbers(value: int | float) -> list[Any]:
    if isinstance(value, int):
        return [0, -value, value * 10, 1, -1]
    return [0.0, -value, round(value + 0.5, 6)]


def _lists(value: list[Any]) -> list[Any]:
    return [[], value[:1], value[::-1], value[:1] + value]


def _variants(value: Any) -> list[Any]:
    """Edge variants of one input value, most telling first; ``[]`` for a value that has none."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int | float):
        return _numbers(value)
    if isinstance(value, str):
        return _texts(value)
    if isinstance(value, list):
        return _lists(value) if value else []
    if isinstance(value, Mapping):
        return [{}] if value else []
    return []


def probes(inputs: Iterable[Mapping[str, Any]], *, limit: int = MAX_PROBES) -> list[dict[str, Any]]:
    """Up to ``limit`` probe inputs from ``inputs`` (the caller's example inputs): one field changed at a time.

    The variants are taken round-robin over the inputs and their fields, so that each field gets its most telling
    edges first; a probe equal to a given input, or to an earlier probe, is left out.
    """
    given = [dict(data) for data in inputs]
    seen = {input_key(data) for data in given}
    queues: list[list[dict[str, Any]]] = []
    for data in given:
        for field, value in data.items():
            queues.append([{**data, field: variant} for variant in _variants(value)])
    chosen: list[dict[str, Any]] = []
    while len(chosen) < limit and any(queues):
        for queue in queues:
            if not queue or len(chosen) >= limit:
                continue
            probe = queue.pop(0)
            key = input_key(probe)
            if key not in seen:
                seen.add(key)
                chosen.append(probe)
    return chosen
