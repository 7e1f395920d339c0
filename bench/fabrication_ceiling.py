"""Fabrication ceiling: how often a model's drafts are right at all, and how well the caller's examples sort them.

Run: ``.venv/bin/python bench/fabrication_ceiling.py --model local:qwen2.5-coder-1.5b --samples 4`` with, optionally,
``--only id1,id2``, ``--difficulty easy``, ``--limit N``, ``--threads 2`` and ``--out PATH.jsonl``;
``--summary PATH.jsonl`` prints the table of an earlier run.

For each capability of ``bench/data/fabrication/capabilities.json`` the Fabricator's generator writes its most likely
draft and ``--samples`` sampled ones, all from the first prompt (the caller's examples shown, no feedback), with the
Fabricator's certain repairs applied. Every draft then runs every example and every hidden check in the sandbox, and
is ``correct`` (all pass), ``examples_only`` (the examples pass, a hidden check does not: the draft a selection by
examples would publish wrongly), ``wrong`` (an example fails) or ``broken`` (it does not compile or its policy check
fails).

The table answers two questions that ``bench/fabrication_quality.py`` cannot: the *ceiling* (the share of
capabilities for which at least one of the drafts is correct: no way of choosing among them can do better without
more or better drafts) and the *precision of the examples* (among the drafts that pass the caller's examples, the
share that are correct).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._fabrication_support import DIFFICULTIES, clipped, read_results
from bench.fabrication_quality import _run_case, _select, load_items
from blackboard import AgentManifest, FabricationRequest, memory_backends
from fabricator.cases import Case, examples_of
from fabricator.fabricator import Fabricator
from fabricator.generator import GenerationError
from fabricator.harness import Candidate
from fabricator.publisher import safe_name
from wrapper.models import resolve_model
from wrapper.sandbox import SandboxPool

RESULTS = Path(__file__).resolve().parent / "results" / "fabrication"


def judge_draft(
    item: dict[str, Any], fabricator: Fabricator, code: str, cases: list[Case], pool: SandboxPool
) -> dict[str, Any]:
    """The status of one draft's code: the Fabricator's own code checks with the examples, then the hidden checks."""
    report = fabricator._validate(
        Candidate(name="draft", description="", code=code, input_schema={"type": "object"}, cases=cases),
        code_only=True,
    )
    if not report.passed:
        examples_only = all(check.name.startswith("example[") for check in report.failed)
        return {"status": "wrong" if examples_only else "broken", "why": clipped(report.to_feedback())}
    agent = AgentManifest.model_construct(name=safe_name("ceiling"), version=1, entrypoint="handler")
    encoded = code.encode("utf-8")
    for kind, status in (("examples", "wrong"), ("checks", "examples_only")):
        for index, case in enumerate(item[kind]):
            problem = _run_case(agent, encoded, case, pool, f"{kind}{index}")
            if problem is not None:
                return {"status": status, "why": clipped({"case": f"{kind}[{index}]", **problem})}
    return {"status": "correct"}


def run_item(item: dict[str, Any], *, model: Any, model_spec: str, pool: SandboxPool, samples: int) -> dict[str, Any]:
    """The greedy draft and ``samples`` sampled drafts of one capability, each judged."""
    fabricator = Fabricator(memory_backends(), model, pool, model_spec=model_spec)
    request = FabricationRequest(
        orchestration_id="bench",
        task_id=item["id"],
        capability=item["capability"],
        inputs=item["inputs"],
        examples=item["examples"],
    )
    cases = examples_of(request.examples)
    drafts: list[dict[str, Any]] = []
    started = time.perf_counter()
    for sample in range(samples + 1):
        began = time.perf_counter()
        try:
            draft = fabricator._repaired(fabricator.generator.draft(request, set(), cases=cases, sample=sample))
        except GenerationError as exc:
            drafts.append({"sample": sample, "status": "broken", "why": clipped(str(exc))})
            continue
        verdict = judge_draft(item, fabricator, draft.code, cases, pool)
        drafts.append({"sample": sample, **verdict, "seconds": round(time.perf_counter() - began, 3)})
    return {
        "id": item["id"],
        "difficulty": item["difficulty"],
        "category": item["category"],
        "model": model_spec,
        "drafts": drafts,
        "seconds": round(time.perf_counter() - started, 3),
    }


def summary(records: list[dict[str, Any]], title: str) -> None:
    """The ceiling and the precision of the examples, by difficulty."""
    print(f"\n{title}: {len(records)} capabilities")
    header = ("difficulty", "items", "greedy right", "any right", "drafts", "right", "pass examples", "precision")
    print("  ".join(f"{h:>13}" for h in header))
    for label in (*DIFFICULTIES, "all"):
        rows = [r for r in records if label in ("all", r["difficulty"])]
        if not rows:
            continue
        drafts = [d for r in rows for d in r["drafts"]]
        greedy = sum(1 for r in rows if r["drafts"] and r["drafts"][0]["status"] == "correct")
        anyone = sum(1 for r in rows if any(d["status"] == "correct" for d in r["drafts"]))
        right = sum(1 for d in drafts if d["status"] == "correct")
        passing = sum(1 for d in drafts if d["status"] in ("correct", "examples_only"))
        precision = f"{100 * right / passing:.0f}%" if passing else "-"
        cells = (
            label,
            str(len(rows)),
            f"{greedy} ({100 * greedy / len(rows):.0f}%)",
            f"{anyone} ({100 * anyone / len(rows):.0f}%)",
            str(len(drafts)),
            str(right),
            str(passing),
            precision,
        )
        print("  ".join(f"{c:>13}" for c in cells))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", help="model spec, e.g. local:qwen2.5-coder-1.5b")
    parser.add_argument("--samples", type=int, default=4, help="sampled drafts beside the most likely one")
    parser.add_argument("--only", help="comma-separated capability ids")
    parser.add_argument("--difficulty", choices=DIFFICULTIES)
    parser.add_argument("--limit", type=int, help="at most this many capabilities")
    parser.add_argument("--out", type=Path, help="results file (JSON lines, appended)")
    parser.add_argument("--threads", type=int, help="a local model's CPU threads")
    parser.add_argument("--summary", nargs="+", type=Path, metavar="PATH", help="print the table of results files")
    args = parser.parse_args(argv)
    if args.summary:
        for path in args.summary:
            summary(read_results(path), str(path))
        return 0
    if not args.model:
        parser.error("--model is required (or --summary)")
    items = _select(load_items(), args, parser)
    out: Path = args.out or RESULTS / f"ceiling-{time.strftime('%Y%m%dT%H%M%S')}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    model = resolve_model(args.model, **({"n_threads": args.threads} if args.threads else {}))
    drafts = args.samples + 1
    print(f"{len(items)} capabilities, {drafts} drafts each, model {args.model}, results in {out}", flush=True)
    records = []
    with SandboxPool(size=2) as pool, out.open("a", encoding="utf-8") as results:
        for index, item in enumerate(items, 1):
            record = run_item(item, model=model, model_spec=args.model, pool=pool, samples=args.samples)
            results.write(json.dumps(record, ensure_ascii=False) + "\n")
            results.flush()
            records.append(record)
            statuses = " ".join(d["status"] for d in record["drafts"])
            print(f"[{index}/{len(items)}] {record['id']}: {statuses} ({record['seconds']:.0f} s)", flush=True)
    summary(records, str(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
