"""Cold-start cost of the Lambda entry points: importing each handler module, then building its engine.

Run: ``.venv/bin/python bench/lambda_imports.py`` (or ``make bench``). Each figure comes from a fresh interpreter
(``-X importtime`` for the import; the engine is built on moto, as on the first invocation), median of 3 runs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["arbiter.aws_lambda", "wrapper.aws_lambda", "fabricator.aws_lambda"]

BUILD = """
import os, time
os.environ.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1",
                  ARBITER_MODEL="scripted:{root}/examples/restaurant/scripted.json", ARBITER_MATCHING="bm25")
from moto import mock_aws
with mock_aws():
    from tests.aws.deployment import MotoDeployment
    os.environ.update(MotoDeployment(name="cold").env)
    started = time.perf_counter()
    import {module} as m
    imported = time.perf_counter()
    built = {build}
    done = time.perf_counter()
    print(f"{{imported - started:.3f}} {{done - imported:.3f}}")
    reset = getattr(m, "reset")
    reset()
"""
BUILDERS = {
    "arbiter.aws_lambda": "m.coordinator()",
    "wrapper.aws_lambda": "m.executor()",
    "fabricator.aws_lambda": "m.worker()",
}


def measure(module: str) -> tuple[float, float]:
    runs = []
    for _ in range(3):
        code = BUILD.format(root=ROOT, module=module, build=BUILDERS[module])
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
        runs.append((float(out[-2]), float(out[-1])))
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    print(f"{'handler module':<24} {'import':>8} {'engine built':>13}")
    for module in MODULES:
        imported, built = measure(module)
        print(f"{module:<24} {imported:7.2f}s {built:12.2f}s")


if __name__ == "__main__":
    main()
