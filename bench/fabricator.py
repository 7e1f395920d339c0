"""Validation time per Fabricator candidate: static checks, and each sample run in a warm sandbox pool.

Run: ``.venv/bin/python bench/fabricator.py [--runs 20]`` (or ``make bench``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fabricator import Candidate, validate
from wrapper.sandbox import SandboxPool

CODE = """import re


def handler(reason: str) -> dict:
    points = [float(v) for v in re.findall(r"-?\\d+(?:\\.\\d+)?", reason)]
    return {"count": len(points), "max": max(points) if points else None}
"""
SAMPLE = {"reason": "3 datapoints [41.0, 57.0, 66.0] above the threshold (25.0)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    schema = {"type": "object", "properties": {"reason": {"type": "string"}}, "required": ["reason"]}
    print(f"{'samples':>7} {'runs':>5} {'total p50 ms':>13} {'total p95 ms':>13} {'static p50 ms':>14}")
    with SandboxPool(size=2) as pool:
        for samples in (1, 3):
            candidate = Candidate(
                name="reason_reader",
                description="Reads numbers.",
                code=CODE,
                input_schema=schema,
                sample_inputs=[SAMPLE] * samples,
            )
            validate(candidate, sandbox=pool)  # warm up
            totals, statics = [], []
            for _ in range(args.runs):
                report = validate(candidate, sandbox=pool)
                assert report.passed, report.to_feedback()
                totals.append(report.duration_ms)
                statics.append(sum(c.duration_ms for c in report.checks if not c.name.startswith("sample")))
            p95 = sorted(totals)[int(0.95 * (len(totals) - 1))]
            print(
                f"{samples:>7} {args.runs:>5} {statistics.median(totals):>13.1f} {p95:>13.1f} "
                f"{statistics.median(statics):>14.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
