"""Reference handlers of the fabrication capability set: one ``ref_<id>`` per item of ``capabilities.json``.

They prove that every example and hidden check can be met by a careful reading of the capability text alone
(``tests/bench/test_fabrication_set.py`` runs them). They are never shown to the Fabricator.
"""

from __future__ import annotations

import calendar
import datetime as dt
import heapq
import re
import string
import unicodedata
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qsl

# --- easy -------------------------------------------------------------------------------------------------------------


def ref_count_vowels(text: str) -> dict[str, int]:
    letters = [c for c in text if c in string.ascii_letters]
    vowels = sum(1 for c in letters if c.lower() in "aeiou")
    return {"vowels": vowels, "consonants": len(letters) - vowels}


def ref_celsius_conversions(celsius: float) -> dict[str, float]:
    return {"fahrenheit": celsius * 9 / 5 + 32, "kelvin": celsius + 273.15}


def ref_is_palindrome(text: str) -> dict[str, Any]:
    kept = "".join(c for c in text if c.isalnum()).lower()
    return {"palindrome": kept == kept[::-1], "normalized": kept}


def ref_day_of_week(date: str) -> dict[str, Any]:
    day = dt.date.fromisoformat(date)
    return {
        "weekday": calendar.day_name[day.weekday()],
        "iso_weekday": day.isoweekday(),
        "day_of_year": day.timetuple().tm_yday,
    }


def ref_digit_stats(n: int) -> dict[str, int]:
    digits = str(abs(n))
    reversed_value = int(digits[::-1])
    return {
        "digits": len(digits),
        "digit_sum": sum(int(d) for d in digits),
        "reversed": -reversed_value if n < 0 else reversed_value,
    }


def ref_snake_to_camel(identifier: str) -> dict[str, str]:
    parts = [p for p in identifier.split("_") if p]
    if not parts:
        return {"camel": "", "pascal": ""}
    titled = [p[0].upper() + p[1:].lower() for p in parts]
    return {"camel": parts[0].lower() + "".join(titled[1:]), "pascal": "".join(titled)}


def ref_list_stats(numbers: list[float]) -> dict[str, float]:
    ordered = sorted(numbers)
    n = len(ordered)
    median = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    return {
        "min": ordered[0],
        "max": ordered[-1],
        "mean": sum(ordered) / n,
        "median": median,
        "range": ordered[-1] - ordered[0],
    }


def ref_dedupe_strings(items: list[str]) -> dict[str, Any]:
    kept = list(dict.fromkeys(items))
    return {"items": kept, "removed": len(items) - len(kept)}


def ref_leap_year(year: int) -> dict[str, Any]:
    leap = calendar.isleap(year)
    return {"leap": leap, "days": 366 if leap else 365, "february_days": 29 if leap else 28}


def ref_name_initials(name: str) -> dict[str, str]:
    return {"initials": "".join(part[0].upper() for part in re.split(r"[\s-]+", name) if part)}


def ref_seconds_to_hms(seconds: int) -> dict[str, Any]:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return {"hms": f"{hours}:{minutes:02d}:{secs:02d}", "total_minutes": seconds // 60}


def ref_hex_color(color: str) -> dict[str, Any]:
    match = re.fullmatch(r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})", color)
    if match is None:
        return {"valid": False, "rgb": None}
    digits = match.group(1)
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    return {"valid": True, "rgb": [int(digits[i : i + 2], 16) for i in (0, 2, 4)]}


def ref_caesar_shift(text: str, shift: int) -> dict[str, str]:
    def moved(c: str) -> str:
        for alphabet in (string.ascii_lowercase, string.ascii_uppercase):
            if c in alphabet:
                return alphabet[(alphabet.index(c) + shift) % 26]
        return c

    return {"text": "".join(moved(c) for c in text)}


def ref_count_by_field(records: list[dict[str, Any]], field: str) -> dict[str, Any]:
    counts = Counter(str(r[field]) if field in r else "(missing)" for r in records)
    return {"counts": dict(counts), "distinct": len(counts)}


def ref_spreadsheet_column(label: str) -> dict[str, Any]:
    if not label or not all("A" <= c <= "Z" for c in label):
        raise ValueError(f"not a column label of upper-case letters: {label!r}")
    number = 0
    for c in label:
        number = number * 26 + ord(c) - ord("A") + 1
    following, letters = number + 1, ""
    while following:
        following, rest = divmod(following - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return {"number": number, "next": letters}


# --- medium -----------------------------------------------------------------------------------------------------------

_DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def ref_parse_duration(text: str) -> dict[str, Any]:
    stripped = text.strip()
    if not re.fullmatch(r"(\d+[dhms]\s*)+", stripped):
        return {"valid": False, "seconds": None}
    seconds = sum(int(n) * _DURATION_UNITS[u] for n, u in re.findall(r"(\d+)([dhms])", stripped))
    return {"valid": True, "seconds": seconds}


_ROMAN = [
    (1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
    (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"),
]  # fmt: skip


def ref_roman_numeral(number: int) -> dict[str, Any]:
    out = ""
    for value, symbol in _ROMAN:
        count, number = divmod(number, value)
        out += symbol * count
    return {"roman": out, "length": len(out)}


def ref_business_days(start: str, end: str, holidays: list[str]) -> dict[str, int]:
    first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    off = {dt.date.fromisoformat(h) for h in holidays}
    count, day = 0, first
    while day <= last:
        count += day.weekday() < 5 and day not in off
        day += dt.timedelta(days=1)
    return {"business_days": count}


def ref_query_string(query: str) -> dict[str, Any]:
    params: dict[str, list[str]] = {}
    pairs = parse_qsl(query.removeprefix("?"), keep_blank_values=True)
    for key, value in pairs:
        params.setdefault(key, []).append(value)
    return {"params": params, "count": len(pairs)}


def ref_group_anagrams(words: list[str]) -> dict[str, Any]:
    groups: dict[str, list[str]] = {}
    for word in words:
        groups.setdefault("".join(sorted(word.lower())), []).append(word)
    return {"groups": list(groups.values())}


def ref_run_length_encode(text: str) -> dict[str, Any]:
    runs = [m.group(0) for m in re.finditer(r"(.)\1*", text, re.DOTALL)]
    return {"encoded": "".join((str(len(r)) if len(r) > 1 else "") + r[0] for r in runs), "runs": len(runs)}


def ref_merge_intervals(intervals: list[list[int]]) -> dict[str, Any]:
    merged: list[list[int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return {"merged": merged, "total_length": sum(e - s for s, e in merged)}


def ref_split_money(amount: str, parts: int) -> dict[str, list[str]]:
    cents = int(Decimal(amount) * 100)
    base, extra = divmod(cents, parts)
    shares = [base + 1] * extra + [base] * (parts - extra)
    return {"shares": [f"{c // 100}.{c % 100:02d}" for c in shares]}


def ref_flatten_json(data: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict) and value:
            for key, inner in value.items():
                walk(inner, f"{path}.{key}" if path else key)
        elif isinstance(value, list) and value:
            for index, inner in enumerate(value):
                walk(inner, f"{path}[{index}]")
        else:
            flat[path] = value

    for key, value in data.items():
        walk(value, key)
    return {"flat": flat, "leaves": len(flat)}


def ref_isbn_check(isbn: str) -> dict[str, Any]:
    text = re.sub(r"[\s-]", "", isbn)
    if re.fullmatch(r"\d{9}[\dXx]", text):
        values = [10 if c in "Xx" else int(c) for c in text]
        if sum(v * w for v, w in zip(values, range(10, 0, -1), strict=True)) % 11:
            return {"kind": "ISBN-10", "valid": False, "isbn13": None}
        body = "978" + text[:9]
        check = -sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(body)) % 10
        return {"kind": "ISBN-10", "valid": True, "isbn13": body + str(check)}
    if re.fullmatch(r"\d{13}", text):
        valid = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(text)) % 10 == 0
        return {"kind": "ISBN-13", "valid": valid, "isbn13": text if valid else None}
    return {"kind": None, "valid": False, "isbn13": None}


def _birthday(birth: dt.date, year: int) -> dt.date:
    if birth.month == 2 and birth.day == 29 and not calendar.isleap(year):
        return dt.date(year, 3, 1)
    return birth.replace(year=year)


def ref_age_on_date(birth_date: str, on_date: str) -> dict[str, int]:
    birth, on = dt.date.fromisoformat(birth_date), dt.date.fromisoformat(on_date)
    years = on.year - birth.year - (on < _birthday(birth, on.year))
    upcoming = _birthday(birth, on.year)
    if upcoming < on:
        upcoming = _birthday(birth, on.year + 1)
    return {"years": years, "days_to_birthday": (upcoming - on).days}


def ref_top_words(text: str, k: int) -> dict[str, Any]:
    spaced = "".join(c if c.isalpha() else " " for c in text)
    counts = Counter(w.lower() for w in spaced.split())
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {"top": [[w, c] for w, c in ranked[:k]]}


_MM = {"mm": 1, "cm": 10, "m": 1000, "km": 1_000_000, "in": 25.4, "ft": 304.8, "yd": 914.4, "mi": 1_609_344}


def ref_convert_length(value: float, from_unit: str, to_unit: str) -> dict[str, Any]:
    return {"value": value * _MM[from_unit] / _MM[to_unit], "unit": to_unit}


def ref_bracket_balance(text: str) -> dict[str, Any]:
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[tuple[str, int]] = []
    for index, c in enumerate(text):
        if c in "([{":
            stack.append((c, index))
        elif c in pairs:
            if not stack or stack[-1][0] != pairs[c]:
                return {"balanced": False, "error_index": index}
            stack.pop()
    if stack:
        return {"balanced": False, "error_index": stack[0][1]}
    return {"balanced": True, "error_index": None}


def ref_slugify(title: str) -> dict[str, str]:
    decomposed = unicodedata.normalize("NFKD", title)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return {"slug": re.sub(r"[^a-z0-9]+", "-", plain).strip("-")}


def ref_compress_ranges(numbers: list[int]) -> dict[str, Any]:
    values = sorted(set(numbers))
    out: list[str] = []
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        if j - i >= 2:
            out.append(f"{values[i]}-{values[j]}")
        else:
            out += [str(v) for v in values[i : j + 1]]
        i = j + 1
    return {"ranges": ",".join(out), "count": len(values)}


def ref_lru_cache_trace(capacity: int, accesses: list[str]) -> dict[str, Any]:
    cache: OrderedDict[str, None] = OrderedDict()
    hits = misses = 0
    for key in accesses:
        if key in cache:
            hits += 1
            cache.move_to_end(key)
            continue
        misses += 1
        if capacity == 0:
            continue
        if len(cache) == capacity:
            cache.popitem(last=False)
        cache[key] = None
    return {"hits": hits, "misses": misses, "contents": list(reversed(cache))}


def ref_next_weekdays(after: str, weekday: str, count: int) -> dict[str, list[str]]:
    target = [d.lower() for d in calendar.day_name].index(weekday.lower())
    day = dt.date.fromisoformat(after) + dt.timedelta(days=1)
    while day.weekday() != target:
        day += dt.timedelta(days=1)
    return {"dates": [(day + dt.timedelta(weeks=i)).isoformat() for i in range(count)]}


# --- hard -------------------------------------------------------------------------------------------------------------


def ref_evaluate_expression(expression: str) -> dict[str, float]:
    tokens = re.findall(r"\d+(?:\.\d+)?|\.\d+|[-+*/()]", expression)
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        position += 1
        return tokens[position - 1]

    def expr() -> float:
        value = term()
        while peek() in ("+", "-"):
            value = value + term() if take() == "+" else value - term()
        return value

    def term() -> float:
        value = factor()
        while peek() in ("*", "/"):
            value = value * factor() if take() == "*" else value / factor()
        return value

    def factor() -> float:
        token = take()
        if token == "-":
            return -factor()
        if token == "(":
            value = expr()
            take()
            return value
        return float(token)

    return {"value": expr()}


def ref_topological_order(dependencies: dict[str, list[str]]) -> dict[str, Any]:
    tasks = set(dependencies) | {d for deps in dependencies.values() for d in deps}
    waiting = {t: set(dependencies.get(t, [])) for t in tasks}
    dependents: dict[str, list[str]] = {t: [] for t in tasks}
    for task, deps in waiting.items():
        for dep in deps:
            dependents[dep].append(task)
    ready = [t for t, deps in waiting.items() if not deps]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        task = heapq.heappop(ready)
        order.append(task)
        for other in dependents[task]:
            waiting[other].discard(task)
            if not waiting[other]:
                heapq.heappush(ready, other)
    if len(order) < len(tasks):
        return {"order": None, "cycle": True}
    return {"order": order, "cycle": False}


def ref_grid_shortest_path(grid: list[str]) -> dict[str, Any]:
    cells = {(r, c): ch for r, row in enumerate(grid) for c, ch in enumerate(row)}
    start = next(p for p, ch in cells.items() if ch == "S")
    seen, queue = {start: 0}, deque([start])
    while queue:
        r, c = queue.popleft()
        if cells[(r, c)] == "E":
            return {"steps": seen[(r, c)], "reachable": True}
        for step in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            if cells.get(step, "#") != "#" and step not in seen:
                seen[step] = seen[(r, c)] + 1
                queue.append(step)
    return {"steps": None, "reachable": False}


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def ref_free_slots(busy: list[list[str]], day_start: str, day_end: str, min_minutes: int) -> dict[str, Any]:
    cursor, end = _minutes(day_start), _minutes(day_end)
    slots = []
    for b_start, b_end in sorted((_minutes(s), _minutes(e)) for s, e in busy):
        if b_start > cursor:
            slots.append((cursor, min(b_start, end)))
        cursor = max(cursor, b_end)
    slots.append((cursor, end))
    return {
        "slots": [
            [f"{s // 60:02d}:{s % 60:02d}", f"{e // 60:02d}:{e % 60:02d}"] for s, e in slots if e - s >= min_minutes
        ]
    }


def ref_json_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[str]]:
    added: list[str] = []
    removed: list[str] = []
    changed: list[str] = []

    def walk(old: dict[str, Any], new: dict[str, Any], prefix: str) -> None:
        for key in old.keys() | new.keys():
            path = prefix + key
            if key not in new:
                removed.append(path)
            elif key not in old:
                added.append(path)
            elif isinstance(old[key], dict) and isinstance(new[key], dict):
                walk(old[key], new[key], path + ".")
            elif old[key] != new[key]:
                changed.append(path)

    walk(before, after, "")
    return {"added": sorted(added), "removed": sorted(removed), "changed": sorted(changed)}


def ref_justify_text(text: str, width: int) -> dict[str, list[str]]:
    words = text.split()
    lines: list[list[str]] = []
    for word in words:
        if lines and len(" ".join([*lines[-1], word])) <= width:
            lines[-1].append(word)
        else:
            lines.append([word])
    out = []
    for index, line in enumerate(lines):
        if index == len(lines) - 1 or len(line) == 1:
            out.append(" ".join(line).ljust(width))
            continue
        spaces = width - sum(len(w) for w in line)
        gaps = len(line) - 1
        text_line = ""
        for i, word in enumerate(line[:-1]):
            text_line += word + " " * (spaces // gaps + (i < spaces % gaps))
        out.append(text_line + line[-1])
    return {"lines": out}


_CRON_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]


def _cron_field(field: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in field.split(","):
        if part == "*":
            values |= set(range(low, high + 1))
        elif part.startswith("*/"):
            values |= set(range(low, high + 1, int(part[2:])))
        elif "-" in part:
            a, b = part.split("-")
            values |= set(range(int(a), int(b) + 1))
        else:
            values.add(int(part))
    return values


def ref_cron_next_runs(expression: str, after: str, count: int) -> dict[str, list[str]]:
    minute, hour, dom, month, dow = (
        _cron_field(f, lo, hi) for f, (lo, hi) in zip(expression.split(), _CRON_RANGES, strict=True)
    )
    runs: list[str] = []
    day = dt.datetime.fromisoformat(after).date()
    start = dt.datetime.fromisoformat(after)
    while len(runs) < count:
        if day.day in dom and day.month in month and (day.isoweekday() % 7) in dow:
            for h in sorted(hour):
                for m in sorted(minute):
                    moment = dt.datetime(day.year, day.month, day.day, h, m)
                    if moment > start and len(runs) < count:
                        runs.append(moment.strftime("%Y-%m-%dT%H:%M"))
        day += dt.timedelta(days=1)
    return {"runs": runs}


_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def _below_thousand(n: int) -> list[str]:
    words = []
    if n >= 100:
        words += [_ONES[n // 100], "hundred"]
        n %= 100
    if n >= 20:
        words.append(_TENS[n // 10] + (f"-{_ONES[n % 10]}" if n % 10 else ""))
    elif n:
        words.append(_ONES[n])
    return words


def ref_number_to_words(number: int) -> dict[str, str]:
    if number == 0:
        return {"words": "zero"}
    words = ["minus"] if number < 0 else []
    n = abs(number)
    for scale, name in ((1_000_000, "million"), (1000, "thousand"), (1, "")):
        group, n = divmod(n, scale)
        if group:
            words += _below_thousand(group) + ([name] if name else [])
    return {"words": " ".join(words)}


def _semver_key(version: str) -> tuple[Any, ...]:
    core, _, pre = version.split("+")[0].partition("-")
    numbers = tuple(int(x) for x in core.split("."))
    if not pre:
        return (numbers, 1, ())
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (numbers, 0, ids)


def ref_semver_sort(versions: list[str]) -> dict[str, Any]:
    ordered = sorted(versions, key=_semver_key)
    return {"sorted": ordered, "latest": ordered[-1]}


def ref_invoice_totals(lines: list[dict[str, Any]], tax_rate: str) -> dict[str, Any]:
    subtotal = sum((line["quantity"] * Decimal(line["unit_price"]) for line in lines), Decimal(0))
    tax = (subtotal * Decimal(tax_rate) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return {
        "subtotal": f"{subtotal:.2f}",
        "tax": f"{tax:.2f}",
        "total": f"{subtotal + tax:.2f}",
        "items": sum(line["quantity"] for line in lines),
    }


def _cells(line: str) -> list[str]:
    stripped = line.strip()
    stripped = stripped.removeprefix("|")
    stripped = stripped.removesuffix("|")
    return [cell.strip() for cell in stripped.split("|")]


def ref_markdown_table(table: str) -> dict[str, Any]:
    lines = [line for line in table.splitlines() if line.strip()]
    columns = _cells(lines[0])
    rows = []
    for line in lines[2:]:
        cells = _cells(line)[: len(columns)]
        cells += [""] * (len(columns) - len(cells))
        rows.append(dict(zip(columns, cells, strict=True)))
    return {"columns": columns, "rows": rows}


def ref_easter_date(year: int) -> dict[str, Any]:
    # The anonymous Gregorian algorithm (Meeus/Jones/Butcher).
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (b - (b + 8) // 25 + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    weekday = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * weekday) // 451
    month, day = divmod(h + weekday - 7 * m + 114, 31)
    return {"date": f"{year:04d}-{month:02d}-{day + 1:02d}", "month": month, "day": day + 1}


def ref_pivot_table(records: list[dict[str, Any]], row: str, column: str, value: str) -> dict[str, Any]:
    rows = sorted({r[row] for r in records})
    columns = sorted({r[column] for r in records})
    sums: Counter[tuple[str, str]] = Counter()
    for record in records:
        sums[(record[row], record[column])] += record[value]
    return {
        "rows": rows,
        "columns": columns,
        "cells": [[sums[(r, c)] for c in columns] for r in rows],
        "total": sum(r[value] for r in records),
    }


REFERENCE: dict[str, Callable[..., Any]] = {
    name.removeprefix("ref_"): function for name, function in list(globals().items()) if name.startswith("ref_")
}
