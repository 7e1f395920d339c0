"""Record ids: 26 Crockford base-32 digits of a 48-bit millisecond time and 80 random bits (the ULID layout)."""

from __future__ import annotations

import random
import re
import time

from blackboard._base import _crockford, new_id

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _digits(value: int) -> str:
    """The reference: five bits at a time, least significant first."""
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def test_the_digits_are_crockford_base_32_most_significant_first() -> None:
    rng = random.Random(7)
    values = [0, 1, 31, 32, 2**80 - 1, 2**80, 2**127, 2**128 - 1] + [rng.getrandbits(128) for _ in range(2000)]
    for value in values:
        assert _crockford(value) == _digits(value)
    assert _crockford(0) == "0" * 26 and _crockford(2**128 - 1) == "7" + "Z" * 25


def test_ids_sort_by_time_and_do_not_repeat() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_id() for _ in range(1000)]
    after = time.time_ns() // 1_000_000
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    stamps = [_time_of(i) for i in ids]
    assert stamps == sorted(stamps) and before <= stamps[0] and stamps[-1] <= after


def _time_of(identifier: str) -> int:
    value = 0
    for char in identifier[:10]:
        value = value * 32 + _CROCKFORD.index(char)
    return value  # 10 digits are the top 50 of the 130 bits: two zero bits, then the 48 of the time
