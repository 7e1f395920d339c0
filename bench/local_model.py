"""The local model's cost per call, against the floor: tokens evaluated vs reused, tok/s, and the grammar's share.

Runs the incident's first planner turn (system prompt, runbook, tools, event) and a forced ``fabricate`` call
(a JSON object under the tool's schema) with the installed model, three ways: free generation (no grammar),
llama.cpp's grammar sampler, and the grammar gate (the model's choice checked first, see
``wrapper/_grammar_gate.py``), and prints one line per llama.cpp completion, then the constrained/free speed ratio
and whether the gate wrote the same text as llama.cpp's grammar sampler.

Run: ``.venv/bin/python bench/local_model.py [--model qwen2.5-coder-1.5b] [--threads N]`` (model in the cache).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arbiter.cli import read_instructions
from arbiter.inputs import load_event_file
from arbiter.prompts import FABRICATE_TOOL, event_message, system_prompt
from wrapper.local_model import CallFigures, LocalModel

SCENARIO = Path(__file__).resolve().parents[1] / "examples" / "incident"


def _specs() -> list[dict[str, Any]]:
    agents = json.loads((SCENARIO / "agents.json").read_text())["agents"]
    tools = [
        {"name": a["name"], "description": a["description"], "inputSchema": {"json": a["input_schema"]}} for a in agents
    ]
    return [*tools, FABRICATE_TOOL]


def _turn(model: LocalModel, forced: bool) -> str:
    event = load_event_file(SCENARIO / "event.json")
    system = system_prompt(read_instructions(SCENARIO / "event.json"))
    choice: Any = {"tool": {"name": "fabricate"}} if forced else None

    async def run() -> str:
        parts = []
        async for e in model.stream([event_message(event)], _specs(), system, tool_choice=choice):  # type: ignore[list-item]
            delta = e.get("contentBlockDelta", {}).get("delta", {})
            parts.append(delta.get("text") or delta.get("toolUse", {}).get("input", ""))
        return "".join(parts)

    return asyncio.run(run())


def _line(mode: str, case: str, f: CallFigures) -> str:
    return (
        f"{mode:<8} {case:<10} {'yes' if f.constrained else 'no':>4} {f.prompt_tokens:>7} {f.evaluated:>6} "
        f"{f.reused:>6} {f.generated:>5} {f.seconds:>7.1f} {f.prompt_seconds:>7.1f} {f.generate_seconds:>7.1f} "
        f"{f.sampling_seconds:>7.1f} {f.tokens_per_second:>6.1f} {f.full_checks:>5}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--threads", type=int, default=0, help="n_threads (0: the provider's choice)")
    parser.add_argument("--modes", default="free,grammar,gate", help="which of free, grammar, gate to run")
    args = parser.parse_args()
    extra = {"n_threads": args.threads} if args.threads else {}
    modes = {
        "free": {"constrain_tools": False, "json_first": True},
        "grammar": {"fast_grammar": False, "json_first": False},
        "gate": {"fast_grammar": True, "json_first": False},
    }
    header = (
        f"{'mode':<8} {'case':<10} {'gram':>4} {'prompt':>7} {'eval':>6} {'reused':>6} {'gen':>5} {'s':>7} "
        f"{'eval s':>7} {'gen s':>7} {'samp s':>7} {'tok/s':>6} {'full':>5}"
    )
    print(header, flush=True)
    texts: dict[tuple[str, str], str] = {}
    speed: dict[str, list[CallFigures]] = {}
    wanted = args.modes.split(",")
    for mode, config in ((m, c) for m, c in modes.items() if m in wanted):
        model = LocalModel(
            args.model, temperature=0.0, seed=0, prompt_cache_bytes=0, prompt_state_bytes=0, **config, **extra
        )
        for case, forced in (("plan", False), ("fabricate", True)):
            before = len(model.calls)
            started = time.perf_counter()
            texts[(mode, case)] = _turn(model, forced)
            for figures in model.calls[before:]:
                print(_line(mode, case, figures), flush=True)
                speed.setdefault(mode, []).append(figures)
            print(f"{'':<8} {case:<10} turn {time.perf_counter() - started:.1f} s", flush=True)

    def rate(mode: str, constrained: bool) -> float:
        calls = [f for f in speed.get(mode, []) if f.constrained == constrained and f.generated]
        spent = sum(f.seconds - f.prompt_seconds for f in calls)
        return sum(f.generated for f in calls) / spent if spent else 0.0

    free = rate("free", False)
    for mode in (m for m in ("grammar", "gate") if m in wanted):
        constrained = rate(mode, True)
        ratio = free / constrained if constrained else float("inf")
        print(f"{mode}: constrained {constrained:.1f} tok/s, free {free:.1f} tok/s, free/constrained {ratio:.2f}x")
    for case in ("plan", "fabricate") if {"grammar", "gate"} <= set(wanted) else ():
        same = texts[("grammar", case)] == texts[("gate", case)]
        print(f"{case}: the gate wrote {'the same text as' if same else 'OTHER TEXT than'} llama.cpp's grammar sampler")


if __name__ == "__main__":
    main()
