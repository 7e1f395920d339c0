"""Fabrication quality: how many capabilities of a public set the Fabricator turns into correct workers.

Run: ``.venv/bin/python bench/fabrication_quality.py --model local:qwen2.5-coder-1.5b`` with, optionally,
``--difficulty easy``, ``--only id1,id2``, ``--limit N``, ``--out PATH.jsonl``, ``--no-examples``,
``--max-attempts 3`` and ``--tests settle|strict|off``; ``.venv/bin/python bench/fabrication_quality.py --summary
PATH.jsonl [PATH.jsonl ...]`` prints the summary of earlier runs and runs nothing.

Each capability of ``bench/data/fabrication/capabilities.json`` is fabricated on fresh in-memory backends, with its
acceptance examples where ``FabricationRequest`` takes them. A published worker then runs every hidden check and
every example in the sandbox: the item is ``correct`` if all of them give the expected value (``fabricator.compare``),
``valid_but_wrong`` if one does not, and ``failed`` if nothing was published. One JSON line per item is appended to
the results file (default ``bench/results/fabrication/<model>-<UTC time>.jsonl``) as soon as the item is done.

To measure an older checkout, copy this file, ``bench/_fabrication_support.py``, ``bench/data/fabrication/`` and
``fabricator/compare.py`` (the comparison rules) into it and run it there.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._fabrication_support import clipped, print_summary, read_results
from blackboard import AgentManifest, FabricationRequest, memory_backends
from fabricator.compare import compare
from fabricator.fabricator import FabricationFailedError, Fabricator
from wrapper.exceptions import SandboxError
from wrapper.models import resolve_model
from wrapper.sandbox import SandboxLimits, SandboxPool, SandboxRequest
from wrapper.sdk import TaskContext

BENCH = Path(__file__).resolve().parent
DATA = BENCH / "data" / "fabrication" / "capabilities.json"
RESULTS = BENCH / "results" / "fabrication"
DIFFICULTIES = ("easy", "medium", "hard")
CHECK_LIMITS = SandboxLimits(timeout_seconds=10, network=False)


def load_items(path: Path = DATA) -> list[dict[str, Any]]:
    """The capability set, in file order."""
    items: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return items


def run_item(
    item: dict[str, Any],
    *,
    model: Any,
    model_spec: str,
    pool: SandboxPool,
    max_attempts: int,
    with_examples: bool,
    tests: str | None = None,
) -> dict[str, Any]:
    """Fabricate one capability on fresh backends and judge what was published; never raises for the item's sake.

    ``tests`` is the Fabricator's way with its own tests (``settle``, ``strict``, ``off``; ``None``: its default).
    """
    backends = memory_backends()
    options: dict[str, Any] = {} if tests is None else {"tests": tests}
    fabricator = Fabricator(backends, model, pool, model_spec=model_spec, max_attempts=max_attempts, **options)
    fields: dict[str, Any] = {"capability": item["capability"], "inputs": item["inputs"]}
    examples_given = with_examples and "examples" in FabricationRequest.model_fields
    if examples_given:
        fields["examples"] = item["examples"]
    record: dict[str, Any] = {
        "id": item["id"],
        "difficulty": item["difficulty"],
        "category": item["category"],
        "model": model_spec,
        "examples_given": examples_given,
        "max_attempts": max_attempts,
        "tests": tests or getattr(fabricator, "tests", None),
    }
    tokens_before = _tokens(fabricator)
    started = time.perf_counter()
    try:
        result = fabricator.fabricate(FabricationRequest(orchestration_id="bench", task_id=item["id"], **fields))
    except FabricationFailedError as exc:
        record.update(status="failed", published=False, attempts=exc.attempts)
        record["error"] = {"type": type(exc).__name__, "message": clipped(exc.feedback)}
    except Exception as exc:  # the run goes on: whatever broke this item is its result, recorded with the cause
        record.update(status="failed", published=False, attempts=None)
        record["error"] = {"type": type(exc).__name__, "message": clipped(str(exc))}
    else:
        record.update(published=True, reused=result.reused, attempts=result.attempts, agent=_ref(result.agent))
        code = backends.code_store.get(result.agent.code.sha256)
        record.update(_judge(item, result.agent, code, pool))
        record["code"] = code.decode("utf-8", "replace")  # the published worker, to read what it got wrong
    record["seconds"] = round(time.perf_counter() - started, 3)
    tokens_after = _tokens(fabricator)
    record["tokens"] = None if tokens_before is None or tokens_after is None else tokens_after - tokens_before
    return record


def _tokens(fabricator: Fabricator) -> int | None:
    usage = getattr(getattr(fabricator, "generator", None), "usage", None)
    total = getattr(usage, "total_tokens", None)
    return total if isinstance(total, int) else None


def _ref(agent: AgentManifest) -> str:
    return f"{agent.name}@{agent.version}"


def _judge(item: dict[str, Any], agent: AgentManifest, code: bytes, pool: SandboxPool) -> dict[str, Any]:
    """Run every hidden check, then every example, in the sandbox; the first mismatch is the evidence."""
    passed = {"checks": 0, "examples": 0}
    failure: dict[str, Any] | None = None
    for kind in ("checks", "examples"):
        for index, case in enumerate(item[kind]):
            problem = _run_case(agent, code, case, pool, f"{kind}{index}")
            if problem is None:
                passed[kind] += 1
            elif failure is None:
                failure = {"case": f"{kind}[{index}]", "input": case["input"], "expected": case["expected"], **problem}
    return {
        "status": "correct" if failure is None else "valid_but_wrong",
        "checks_passed": passed["checks"],
        "checks_total": len(item["checks"]),
        "examples_passed": passed["examples"],
        "examples_total": len(item["examples"]),
        "first_failure": failure,
    }


def _run_case(
    agent: AgentManifest, code: bytes, case: dict[str, Any], pool: SandboxPool, task_id: str
) -> dict[str, Any] | None:
    """None when the worker gives the expected value; else what it gave and where it differs."""
    context = TaskContext(orchestration_id="bench", task_id=task_id, agent=_ref(agent))
    request = SandboxRequest(
        code=code,
        module_name=f"bench_{agent.name}",
        input=case["input"],
        context=context.model_dump(mode="json"),
        entrypoint=agent.entrypoint,
        limits=CHECK_LIMITS,
    )
    try:
        outcome = pool.run(request)
    except SandboxError as exc:
        return {"got": None, "where": "$", "reason": f"the sandbox could not run it: {exc}"}
    if outcome.status != "succeeded":
        return {
            "got": None,
            "where": "$",
            "reason": clipped(f"{outcome.status}: {outcome.error_type}: {outcome.error_message}"),
        }
    comparison = compare(case["expected"], outcome.output)
    if comparison.matches:
        return None
    return {"got": clipped(outcome.output), "where": comparison.where, "reason": comparison.reason}


def _select(
    items: list[dict[str, Any]], args: argparse.Namespace, parser: argparse.ArgumentParser
) -> list[dict[str, Any]]:
    if args.only:
        wanted = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = sorted(set(wanted) - {item["id"] for item in items})
        if unknown:
            parser.error(f"unknown capability id(s): {', '.join(unknown)}")
        items = [item for item in items if item["id"] in wanted]
    if args.difficulty:
        items = [item for item in items if item["difficulty"] == args.difficulty]
    return items[: args.limit] if args.limit is not None else items


def _default_out(model_spec: str) -> Path:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", model_spec).strip("_")
    return RESULTS / f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.jsonl"


def _progress(index: int, total: int, record: dict[str, Any]) -> str:
    tokens = "? tokens" if record["tokens"] is None else f"{record['tokens']:,} tokens"
    attempts = record.get("attempts")
    tried = "? attempts" if attempts is None else f"{attempts} attempt{'' if attempts == 1 else 's'}"
    line = f"[{index}/{total}] {record['id']} ({record['difficulty']}): {record['status']} in {record['seconds']:.1f} s"
    line += f", {tokens}, {tried}"
    if record.get("error"):
        line += f" - {record['error']['type']}"
    elif record.get("first_failure"):
        line += f" - {record['first_failure']['case']} {record['first_failure']['where']}"
    return line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", help="model spec, e.g. local:qwen2.5-coder-1.5b or scripted:<file.json>")
    parser.add_argument("--only", help="comma-separated capability ids")
    parser.add_argument("--difficulty", choices=DIFFICULTIES)
    parser.add_argument("--limit", type=int, help="at most this many capabilities")
    parser.add_argument("--out", type=Path, help="results file (JSON lines, appended)")
    parser.add_argument("--no-examples", action="store_true", help="do not give the acceptance examples")
    parser.add_argument("--max-attempts", type=int, default=3)
    parser.add_argument(
        "--tests",
        choices=("vote", "settle", "strict", "off"),
        help="how the Fabricator uses its own tests (default: its own)",
    )
    parser.add_argument(
        "--threads", type=int, help="a local model's CPU threads (default: the cores other processes leave idle)"
    )
    parser.add_argument("--summary", nargs="+", type=Path, metavar="PATH", help="print the summary of results files")
    args = parser.parse_args(argv)
    if args.summary:
        for path in args.summary:
            print_summary(read_results(path), title=str(path))
        return 0
    if not args.model:
        parser.error("--model is required (or --summary)")
    items = _select(load_items(), args, parser)
    out: Path = args.out or _default_out(args.model)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = resolve_model(args.model, **({"n_threads": args.threads} if args.threads else {}))
    print(f"{len(items)} capabilities, model {args.model}, results in {out}", flush=True)
    records = []
    with SandboxPool(size=2) as pool, out.open("a", encoding="utf-8") as results:
        for index, item in enumerate(items, 1):
            record = run_item(
                item,
                model=model,
                model_spec=args.model,
                pool=pool,
                max_attempts=args.max_attempts,
                with_examples=not args.no_examples,
                tests=args.tests,
            )
            results.write(json.dumps(record, ensure_ascii=False) + "\n")
            results.flush()
            records.append(record)
            print(_progress(index, len(items), record), flush=True)
    print_summary(records, title=str(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
