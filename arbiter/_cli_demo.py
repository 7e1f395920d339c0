"""``arbiter demo``: the incident example end to end, with the local model (default), any model spec, or scripted."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import typer

from arbiter._cli_common import EXAMPLES, err, fail, print_json
from arbiter._tool_calls import fabricated_names
from arbiter.exceptions import UsageError
from arbiter.inputs import load_event_file
from arbiter.runtime import LocalRuntime, OrchestrationView, RunResult
from blackboard import BlackboardError, Budget, TaskState
from wrapper.exceptions import ModelConfigurationError
from wrapper.model_catalog import DEFAULT_ALIAS
from wrapper.model_store import ModelPullError
from wrapper.models import resolve_model, track_usage

__all__ = ["DemoSummary", "run_demo"]

#: Settings for a local model in the demo: greedy decoding and a fixed seed, so that a run can be repeated.
LOCAL_SETTINGS: dict[str, Any] = {"temperature": 0.0, "seed": 0}


@dataclass
class _Calls:
    """Model calls and tokens of one role, counted from the usage each call reports."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, input_tokens: int, output_tokens: int) -> None:
        with self.lock:
            self.calls += 1
            self.input_tokens += input_tokens
            self.output_tokens += output_tokens


@dataclass(frozen=True)
class DemoSummary:
    """What a demo run did (printed at the end; ``--json`` prints it as an object)."""

    model: str
    status: str
    waves: int
    tasks: int
    fabricated: list[dict[str, Any]]
    model_calls: dict[str, int]
    tokens: int
    wall_seconds: float
    local_calls: list[dict[str, Any]] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The summary as text lines."""
        made = (
            ", ".join(
                f"{f['agent']}@{f['version']} ({'reused' if f['reused'] else 'validated'}, used {f['used']} time(s))"
                for f in self.fabricated
            )
            or "none"
        )
        calls = self.model_calls
        return [
            f"model:            {self.model}",
            f"status:           {self.status}",
            f"waves / tasks:    {self.waves} / {self.tasks}",
            f"fabricated:       {made}",
            f"model calls:      {calls['total']} (planner {calls['planner']}, fabricator {calls['fabricator']})",
            f"tokens:           {self.tokens}",
            f"wall time:        {self.wall_seconds:.1f} s",
            *_call_lines(self.local_calls),
        ]


def _call_lines(calls: list[dict[str, Any]]) -> list[str]:
    """One line per llama.cpp completion: what it evaluated, reused and wrote, and where its time went."""
    if not calls:
        return []
    total = {k: sum(c[k] for c in calls) for k in ("evaluated", "reused", "generated", "seconds", "sampling_seconds")}
    lines = [
        f"local model:      {len(calls)} completion(s): prompt tokens {total['evaluated']} evaluated, "
        f"{total['reused']} reused; {total['generated']} generated; {total['seconds']:.1f} s "
        f"({total['sampling_seconds']:.1f} s sampling)",
        "  role        grammar  prompt  eval  reused  gen      s  eval s  tok/s  samp s  threads",
    ]
    lines += [
        f"  {c['role']:<11} {'yes' if c['constrained'] else 'no':<7} {c['prompt_tokens']:>7} {c['evaluated']:>5} "
        f"{c['reused']:>7} {c['generated']:>4} {c['seconds']:>6.1f} {c['prompt_seconds']:>7.1f} "
        f"{c['tokens_per_second']:>6.1f} {c['sampling_seconds']:>7.1f} {c['threads']:>8}"
        for c in calls
    ]
    return lines


def _local_calls(**models: Any) -> list[dict[str, Any]]:
    """The figures of each local model's completions (see ``wrapper.local_model.CallFigures``), by role."""
    found = []
    for role, model in models.items():
        calls = getattr(model, "calls", None)  # a LocalModel's; other models have none (or count calls as a number)
        for figures in calls if isinstance(calls, list) else []:
            as_dict = getattr(figures, "as_dict", None)
            if callable(as_dict):
                found.append({"role": role, **as_dict()})
    return sorted(found, key=lambda c: c["started"])


#: The demo's limits: the default budget with more time, since a small local model on two CPU cores spends minutes on
#: each draft the Fabricator asks for (a planner that loops is still stopped by the waves and tasks limits).
DEMO_BUDGET = Budget(timeout_seconds=1800.0)


def run_demo(model: str, home: Path | None, as_json: bool) -> NoReturn:
    """Run ``examples/incident`` with ``model`` (``local``, ``scripted`` or a model spec) and print a summary."""
    scenario = EXAMPLES / "incident"
    if not scenario.is_dir():
        fail(f"the examples are not installed next to the package ({scenario} is missing); run from a source checkout")
    planner_spec, fabricator_spec, settings = _specs(model, scenario, as_json)
    if not as_json:
        err.print(f"demo: {scenario / 'event.json'} (a CloudWatch alarm) with {planner_spec}", highlight=False)
    planner_calls, fabricator_calls = _Calls(), _Calls()
    started = time.perf_counter()
    try:
        planner = track_usage(resolve_model(planner_spec, **settings), planner_calls)
        fabricator = track_usage(resolve_model(fabricator_spec, **settings), fabricator_calls)
        worker_spec = None if model == "scripted" else planner_spec
        result, view = _run(scenario, home, planner, fabricator, worker_spec, as_json)
    except (UsageError, ModelConfigurationError, BlackboardError) as exc:
        fail(str(exc))
    summary = DemoSummary(
        model=planner_spec if model != "scripted" else "scripted",
        status=result.status,
        waves=result.waves,
        tasks=result.tasks,
        fabricated=_fabricated(view),
        model_calls={
            "planner": planner_calls.calls,
            "fabricator": fabricator_calls.calls,
            "total": planner_calls.calls + fabricator_calls.calls,
        },
        tokens=result.tokens,
        wall_seconds=round(time.perf_counter() - started, 1),
        local_calls=_local_calls(planner=planner, fabricator=fabricator),
    )
    if as_json:
        print_json({**summary.__dict__, "orchestration_id": result.orchestration_id, "output": result.output})
    else:
        for task in view.tasks:
            output = task.result.output if task.result is not None else None
            err.print(
                f"  wave {task.wave}  {task.agent!s:<24} {task.state.value:<10} {str(output)[:90]}", highlight=False
            )
        for line in summary.lines():
            err.print(line, highlight=False)
        typer.echo(result.output if result.ok else f"error: {result.error}")
    raise typer.Exit(0 if result.ok else 1)


def _specs(model: str, scenario: Path, quiet: bool) -> tuple[str, str, dict[str, Any]]:
    if model == "scripted":
        return f"scripted:{scenario / 'scripted.json'}", f"scripted:{scenario / 'fabricator.json'}", {}
    if model == "local":
        from arbiter._cli_models import ensure_model

        try:
            ensure_model(DEFAULT_ALIAS, quiet=quiet)
        except (ModelConfigurationError, ModelPullError) as exc:
            fail(
                f"the local model is not available: {exc}\n"
                f"install it with `arbiter models pull {DEFAULT_ALIAS}`, or run `arbiter demo --model scripted`"
            )
        spec = f"local:{DEFAULT_ALIAS}"
        return spec, spec, dict(LOCAL_SETTINGS)
    return model, model, dict(LOCAL_SETTINGS) if model.startswith("local:") else {}


def _run(
    scenario: Path, home: Path | None, planner: Any, fabricator: Any, worker_spec: str | None, quiet: bool
) -> tuple[RunResult, OrchestrationView]:
    from arbiter.cli import _progress, read_instructions, register_agents_file

    event = load_event_file(scenario / "event.json")
    instructions = read_instructions(scenario / "event.json")
    with LocalRuntime(
        home, model=planner, fabricator_model=fabricator, worker_model=worker_spec, instructions=instructions
    ) as runtime:
        event = event.model_copy(update={"id": _run_id(runtime, event.id)})
        names = register_agents_file(runtime, scenario / "agents.json")
        if not quiet:
            err.print(f"agents: {', '.join(names)}", highlight=False)
        updates = runtime.stream(event, budget=DEMO_BUDGET)
        if not quiet:
            err.print(f"orchestration {updates.orchestration_id}", highlight=False)
        result = _progress(updates, quiet)
        return result, runtime.orchestration(result.orchestration_id)


def _run_id(runtime: LocalRuntime, event_id: str) -> str:
    """The event's id for this run: the file's, its last part the number of this run in this home.

    Each run needs an id of its own (the ingress takes an event once). A random one made the planner's prompt, and
    so all a greedy model did, differ from run to run; numbered, the n-th run in a new home is the same every time.
    """
    stem = event_id.rsplit("-", 1)[0] + "-"
    ids = [o.event.id for o in runtime.backends.blackboard.list_orchestrations(limit=10_000)]
    runs = [int(i[len(stem) :]) for i in ids if i.startswith(stem) and i[len(stem) :].isdigit()]
    return f"{stem}{max(runs, default=0) + 1:012d}"


def _fabricated(view: OrchestrationView) -> list[dict[str, Any]]:
    """Each ``fabricate`` task of this orchestration that produced an agent, and how often the planner then used it."""
    found = []
    for task in view.tasks:
        output = task.result.output if task.result is not None else None
        if task.agent.name != "fabricate" or task.state is not TaskState.SUCCEEDED or not isinstance(output, dict):
            continue
        name = output.get("agent")
        if not isinstance(name, str) or name not in fabricated_names(view.orchestration):
            continue
        used = sum(1 for t in view.tasks if t.agent.name == name and t.state is TaskState.SUCCEEDED)
        found.append(
            {"agent": name, "version": output.get("version"), "reused": bool(output.get("reused")), "used": used}
        )
    return found
