"""Helpers of ``bench/fabrication_quality.py``: the summary table and reading results."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

DIFFICULTIES = ("easy", "medium", "hard")
_CLIP = 2000


def clipped(value: Any) -> Any:
    """``value`` itself if its JSON is short, else the start of its JSON text (results lines stay small)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    if len(text) <= _CLIP:
        return value
    return text[:_CLIP] + "..."


def read_results(path: Path) -> list[dict[str, Any]]:
    """The records of a results file (JSON lines; a torn last line of an interrupted run is skipped)."""
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def _percent(count: int, total: int) -> str:
    return f"{count} ({100 * count / total:.0f}%)" if total else "0 (-)"


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def _row(label: str, records: list[dict[str, Any]]) -> list[str]:
    total = len(records)
    count = {s: sum(1 for r in records if r["status"] == s) for s in ("correct", "valid_but_wrong", "failed")}
    published = total - count["failed"]
    seconds = [r["seconds"] for r in records if r.get("seconds") is not None]
    tokens = [r["tokens"] for r in records if r.get("tokens") is not None]
    return [
        label,
        str(total),
        _percent(published, total),
        _percent(count["correct"], total),
        _percent(count["valid_but_wrong"], total),
        _percent(count["failed"], total),
        f"{100 * count['valid_but_wrong'] / published:.0f}%" if published else "-",
        f"{statistics.median(seconds):.1f}" if seconds else "-",
        f"{_p90(seconds):.1f}" if seconds else "-",
        f"{statistics.median(tokens):,.0f}" if tokens else "-",
    ]


HEADER = ["difficulty", "items", "published", "correct", "valid-but-wrong", "failed", "wrong/publ.", "median s"]
HEADER += ["p90 s", "median tokens"]


def summary_lines(records: Iterable[dict[str, Any]]) -> list[str]:
    """The summary table by difficulty and overall, as lines of plain text."""
    records = list(records)
    rows = [_row(d, [r for r in records if r["difficulty"] == d]) for d in DIFFICULTIES]
    rows = [row for row in rows if row[1] != "0"] + [_row("all", records)]
    widths = [max(len(line[i]) for line in [HEADER, *rows]) for i in range(len(HEADER))]
    return [
        "  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths, strict=True)))
        for line in [HEADER, *rows]
    ]


def print_summary(records: Iterable[dict[str, Any]], *, title: str) -> None:
    """Print the summary of one run: which model, whether examples were given, then the table."""
    records = list(records)
    models = sorted({str(r.get("model")) for r in records})
    given = sorted({"given" if r.get("examples_given") else "not given" for r in records})
    print(f"\n{title}: model {', '.join(models) or '-'}; examples {', '.join(given) or '-'}; {len(records)} items")
    for line in summary_lines(records):
        print(line)
