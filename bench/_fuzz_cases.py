"""Hostile event documents for the fuzz campaign (``bench/fuzz_events.py``) and the fuzz test in the suite.

:func:`case` draws one document from a :class:`random.Random`: the test suite hands it Hypothesis's recorded random
(so a failure shrinks and replays), the campaign a seeded one. Every kind a real bus or a careless file brings:
malformed bytes, deep nesting, huge numbers, lone surrogates, duplicate keys, NaN/Infinity, reserved sources,
oversize documents, AWS's own shapes (``PutEvents`` entries, ``detail`` as a JSON string) and plain good events.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

__all__ = ["KINDS", "case"]

_WEIRD_TEXT = [
    "\x00",
    "\u202e\u2066gnp.exe\u2069",
    "\U0001f600",
    "\ufeff",
    "é",
    "\\",
    '"',
    "\n",
    "\u2028",
    "\uff46\uff55\uff4c\uff4c",
]


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(_WEIRD_TEXT) if rng.random() < 0.3 else chr(rng.randint(32, 126)) for _ in range(8))


def _value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.5:
        return rng.choice([None, True, 0, -1, 2**63 - 1, -(2**63), 1.5, 1e308, _text(rng)])
    if roll < 0.75:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {_text(rng): _value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def _envelope(rng: random.Random, detail: Any = None, source: str = "fuzz.source") -> dict[str, Any]:
    return {
        "source": source,
        "detail-type": rng.choice(["Thing Happened", "order.created", "x"]),
        "detail": {"v": _value(rng)} if detail is None else detail,
    }


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _good(rng: random.Random) -> bytes:
    return _dump(_envelope(rng))


def _malformed_bytes(rng: random.Random) -> bytes:
    raw = bytearray(_good(rng))
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(raw) + 1)
        raw[at:at] = bytes([rng.choice([0xFF, 0xC3, 0xED, 0x80, 0x00, 0x7B, 0x22])])
    return bytes(raw)


def _truncated(rng: random.Random) -> bytes:
    raw = _good(rng)
    return raw[: rng.randrange(len(raw))]


def _deep(rng: random.Random) -> bytes:
    depth = rng.choice([rng.randint(55, 70), rng.randint(150, 260), rng.randint(900, 5000)])
    return b'{"source":"fuzz.deep","detail-type":"x","detail":{"v":' + b"[" * depth + b"]" * depth + b"}}"


def _huge_number(rng: random.Random) -> bytes:
    digits = rng.choice([19, 20, 40, 4300, 4301, 5000])
    number = rng.choice(["", "-"]) + "9" * digits
    literal = rng.choice([number, f"1e{digits}", f"{number}.5"])
    return b'{"source":"fuzz.num","detail-type":"x","detail":{"n":' + literal.encode() + b"}}"


def _surrogate(rng: random.Random) -> bytes:
    escape = rng.choice(["\\ud800", "\\udfff", "\\udce9", "\\ud83d", "\\ude00\\ud83d"])
    where = rng.choice(["value", "key", "source"])
    if where == "source":
        return b'{"source":"fuzz' + escape.encode() + b'","detail-type":"x","detail":{}}'
    inner = f'"{escape}":1' if where == "key" else f'"t":"a{escape}b"'
    return b'{"source":"fuzz.s","detail-type":"x","detail":{' + inner.encode() + b"}}"


def _duplicate(rng: random.Random) -> bytes:
    key = rng.choice(["source", "detail-type", "detail", "id"])
    value = {"source": '"arbiter.wrapper"', "detail-type": '"task.completed"', "detail": "{}", "id": '"x"'}[key]
    return _good(rng)[:-1] + f',"{key}":{value}}}'.encode()


def _not_a_number(rng: random.Random) -> bytes:
    constant = rng.choice(["NaN", "Infinity", "-Infinity", "1e999", "-1e400"])
    return b'{"source":"fuzz.nan","detail-type":"x","detail":{"v":' + constant.encode() + b"}}"


def _reserved(rng: random.Random) -> bytes:
    source = rng.choice(["arbiter", "arbiter.wrapper", "arbiter.reflection", "arbiter.x.y", "arbiterx", " "])
    return _dump(_envelope(rng, source=source))


def _oversize(rng: random.Random) -> bytes:
    size = rng.choice([262_000, 262_144, 262_200, 300_000, 1_100_000])
    return _dump(_envelope(rng, detail={"pad": "x" * size}))


def _aws_shape(rng: random.Random) -> bytes:
    detail = {"v": _value(rng)}
    shape = rng.choice(["entry", "string-detail", "entry-bad-detail", "array", "entries"])
    entry = {"Source": "fuzz.aws", "DetailType": "x", "Detail": json.dumps(detail)}
    if shape == "entry":
        return _dump(entry)
    if shape == "string-detail":
        return _dump({"source": "fuzz.aws", "detail-type": "x", "detail": json.dumps(detail)})
    if shape == "entry-bad-detail":
        return _dump({**entry, "Detail": rng.choice(["[1]", "{", '{"a":NaN}', '"s"', ""])})
    return _dump([entry, entry] if shape == "array" else {"Entries": [entry]})


def _wrong_types(rng: random.Random) -> bytes:
    return rng.choice([b"[]", b"7", b'"event"', b"null", b"", b"{}", b'{"source":1,"detail-type":[],"detail":3}'])


KINDS: dict[str, Callable[[random.Random], bytes]] = {
    "good": _good,
    "malformed-bytes": _malformed_bytes,
    "truncated": _truncated,
    "deep-nesting": _deep,
    "huge-number": _huge_number,
    "lone-surrogate": _surrogate,
    "duplicate-key": _duplicate,
    "nan-infinity": _not_a_number,
    "reserved-source": _reserved,
    "oversize": _oversize,
    "aws-shape": _aws_shape,
    "wrong-type": _wrong_types,
}


def case(rng: random.Random, kind: str | None = None) -> tuple[str, bytes]:
    """One hostile document and its kind (drawn from :data:`KINDS` unless given)."""
    chosen = kind or rng.choice(sorted(KINDS))
    return chosen, KINDS[chosen](rng)
