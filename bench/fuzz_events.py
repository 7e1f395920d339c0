"""Fuzz campaign over the event entries: ``arbiter run``'s parser and ``LocalRuntime.submit``; prints the verdicts.

Run: ``.venv/bin/python bench/fuzz_events.py [--events 2500] [--seed 17]``.

Each event is a hostile document from ``bench/_fuzz_cases.py`` (malformed bytes, deep nesting, huge numbers, lone
surrogates, duplicate keys, NaN/Infinity, reserved sources, oversize documents, AWS shapes, good events).

- **CLI**: ``arbiter run FILE --model scripted:<missing file> --home H`` in process. Exit 2 naming the model means
  the event got past the parser (accepted: the model is resolved after the event is read, before the home is
  opened); any other exit 2 is a refusal. Any other exit code, or a traceback, is a crash; so is a home left behind.
- **submit**: the document as a Python caller would hand it over (``json.loads``; documents that Python's own
  ``json`` cannot read are not submitted) to one long-lived runtime with a scripted planner. A
  ``RecordValidationError`` (the documented refusal) is a refusal; any other exception is a crash, and so is an
  accepted event whose orchestration cannot be read back, or a refusal that wrote an orchestration anyway.

Figures are counts per verdict, overall and per kind.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from typer.testing import CliRunner

from arbiter import Deployment, LocalRuntime
from arbiter.cli import app
from arbiter.testing import ScriptedModel
from bench._fuzz_cases import case
from blackboard import RecordValidationError

_runner = CliRunner()


def cli_verdict(document: bytes, work: Path) -> str:
    """``accepted``, ``refused`` or ``crashed``: what ``arbiter run`` does with this event file."""
    event, home = work / "event.json", work / "home"
    event.write_bytes(document)
    result = _runner.invoke(
        app, ["run", str(event), "--model", f"scripted:{work / 'missing.json'}", "--home", str(home)]
    )
    if home.exists():
        return "crashed"
    if result.exit_code != 2 or (result.exception is not None and not isinstance(result.exception, SystemExit)):
        return "crashed"
    return "accepted" if "missing.json" in result.stderr else "refused"


def submit_verdict(runtime: LocalRuntime, document: bytes) -> str:
    """``accepted``, ``refused``, ``crashed`` or ``skipped`` (not a document a Python caller could decode)."""
    try:
        data: Any = json.loads(document)
    except (ValueError, RecursionError):
        return "skipped"
    board = runtime.backends.blackboard
    try:
        before = [o.id for o in board.list_orchestrations(limit=1)]
    except Exception:
        before = ["unreadable"]
    try:
        orchestration_id = runtime.submit(data)
    except RecordValidationError:
        try:
            after = [o.id for o in board.list_orchestrations(limit=1)]  # the newest: a refusal adds none
        except Exception:
            return "crashed"
        return "refused" if after == before else "crashed"
    except Exception:
        return "crashed"
    try:
        runtime.orchestration(orchestration_id)
    except Exception:
        return "crashed"
    return "accepted"


def _table(title: str, verdicts: dict[str, Counter[str]]) -> None:
    columns = ["accepted", "refused", "crashed", "skipped"]
    total: Counter[str] = sum(verdicts.values(), Counter())
    print(f"\n{title}: " + ", ".join(f"{c} {total[c]}" for c in columns if total[c] or c != "skipped"))
    print(f"  {'kind':<18}" + "".join(f"{c:>10}" for c in columns))
    for kind in sorted(verdicts):
        print(f"  {kind:<18}" + "".join(f"{verdicts[kind][c]:>10}" for c in columns))


def main() -> None:
    """Run the campaign and print the verdicts."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2500)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # the engine's own complaints about what it was fed are not the figures
    rng = random.Random(args.seed)
    cases = [case(rng) for _ in range(args.events)]
    cli: dict[str, Counter[str]] = defaultdict(Counter)
    submitted: dict[str, Counter[str]] = defaultdict(Counter)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for index, (kind, document) in enumerate(cases):
            work = root / f"cli{index}"
            work.mkdir()
            cli[kind][cli_verdict(document, work)] += 1
        turns = [{"text": "ok"}] * (args.events + 1)
        with LocalRuntime(
            root / "home", model=ScriptedModel(turns), deployment=Deployment(workers=1, sweep_interval=0.5)
        ) as runtime:
            for kind, document in cases:
                submitted[kind][submit_verdict(runtime, document)] += 1
    print(f"fuzz campaign: {args.events} events, seed {args.seed}")
    _table("arbiter run (CLI parser)", cli)
    _table("LocalRuntime.submit", submitted)


if __name__ == "__main__":
    main()
