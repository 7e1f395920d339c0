"""The ``arbiter`` command line.

Exit codes: 0 success, 1 the orchestration failed, 2 a usage or configuration error. ``--json`` prints one
machine-readable document on standard output.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import typer
from rich.console import Console

from arbiter import __version__
from arbiter.exceptions import UsageError
from arbiter.runtime import LocalRuntime, RunResult, load_event_file
from blackboard import AgentState, BlackboardError, Budget, OrchestrationStatus
from fabricator import FabricatorError
from fabricator.publisher import approve, rollback
from wrapper import ModelConfigurationError

__all__ = ["app", "main"]

app = typer.Typer(
    name="arbiter",
    help="Event-driven multi-agent systems on the Arbiter pattern.",
    no_args_is_help=True,
    add_completion=False,
)
orchestrations_app = typer.Typer(help="Inspect orchestrations.", no_args_is_help=True)
agents_app = typer.Typer(help="Manage worker agents.", no_args_is_help=True)
app.add_typer(orchestrations_app, name="orchestrations")
app.add_typer(agents_app, name="agents")

err = Console(stderr=True, soft_wrap=True)
HOME = typer.Option(None, "--home", help="State directory (default: $ARBITER_HOME or ./.arbiter).")
JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"arbiter {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what the engine does."),
) -> None:
    """Event-driven multi-agent systems on the Arbiter pattern."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )


@app.command("version")
def version_command(as_json: bool = JSON) -> None:
    """Print the version."""
    if as_json:
        _print_json({"version": __version__})
    else:
        typer.echo(f"arbiter {__version__}")


# ---------------------------------------------------------------- run


def register_agents_file(runtime: LocalRuntime, path: Path) -> list[str]:
    """Register the agents an ``agents.json`` declares (module paths are relative to the file)."""
    try:
        spec = json.loads(path.read_text())
        agents = spec["agents"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: not a valid agents file ({exc})") from exc
    names = []
    for entry in agents:
        try:
            runtime.register_agent(
                entry["name"],
                entry["description"],
                path.parent / entry["module"],
                input_schema=entry.get("input_schema"),
                trusted=entry.get("trusted", False),
                timeout_seconds=float(entry.get("timeout_seconds", 60.0)),
                max_attempts=entry.get("max_attempts"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"{path}: agent entry {entry!r} is invalid: {exc}") from exc
        names.append(entry["name"])
    return names


def _progress(runtime: LocalRuntime, orchestration_id: str, quiet: bool) -> None:
    """Show waves and task states until the orchestration ends: a live line on a terminal, plain lines otherwise."""
    live = err.is_terminal and not quiet
    last = ""
    with err.status("starting...", spinner="dots") if live else _Null() as status:
        while True:
            view = runtime.orchestration(orchestration_id)
            states = Counter(t.state.value for t in view.tasks)
            usage = view.orchestration.usage
            line = (
                f"wave {view.orchestration.wave} | tasks: "
                + (", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "none yet")
                + f" | fabrications {usage.fabrications} | tokens {usage.tokens}"
            )
            if line != last:
                if live:
                    status.update(line)
                elif not quiet:
                    err.print(line, highlight=False)
                last = line
            if view.orchestration.finished:
                return
            time.sleep(0.2)


class _Null:
    def __enter__(self) -> _Null:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, text: str) -> None:
        return None


def _run(
    event_file: Path,
    model: str | None,
    home: Path | None,
    as_json: bool,
    budget: Budget | None,
    fabricator_model: str | None = None,
    approval: bool = False,
) -> RunResult:
    event = load_event_file(event_file)
    agents_file = event_file.parent / "agents.json"
    with LocalRuntime(home, model=model, fabricator_model=fabricator_model, approval=approval) as runtime:
        if agents_file.is_file():
            names = register_agents_file(runtime, agents_file)
            if not as_json:
                err.print(f"agents from {agents_file}: {', '.join(names)}", highlight=False)
        orchestration_id = runtime.submit(event, budget=budget)
        if not as_json:
            err.print(f"orchestration {orchestration_id}", highlight=False)
        _progress(runtime, orchestration_id, quiet=as_json)
        return runtime.wait(orchestration_id)


@app.command("run")
def run_command(
    event_file: Path = typer.Argument(..., help="An EventBridge event as JSON (source, detail-type, detail)."),
    model: str | None = typer.Option(None, "--model", help="Model spec, e.g. bedrock:<id>, scripted:<file.json>."),
    home: Path | None = HOME,
    as_json: bool = JSON,
    max_waves: int | None = typer.Option(None, "--max-waves", min=1, help="Budget: waves of tasks."),
    max_tasks: int | None = typer.Option(None, "--max-tasks", min=1, help="Budget: tasks."),
    timeout: float | None = typer.Option(None, "--timeout", min=1, help="Budget: seconds until the deadline."),
    fabricator_model: str | None = typer.Option(
        None, "--fabricator-model", help="Model spec the Fabricator writes new workers with (default: --model)."
    ),
    approval: bool = typer.Option(False, "--approval", help="New fabricated agents wait for `agents approve`."),
) -> None:
    """Run one event to a terminal state (agents.json next to the event file is registered first)."""
    limits = {"max_waves": max_waves, "max_tasks": max_tasks, "timeout_seconds": timeout}
    budget = Budget(**{k: v for k, v in limits.items() if v is not None}) if any(limits.values()) else None
    try:
        result = _run(event_file, model, home, as_json, budget, fabricator_model, approval)
    except (UsageError, ModelConfigurationError, BlackboardError) as exc:
        _fail(str(exc))
    _report(result, as_json)


def _report(result: RunResult, as_json: bool) -> NoReturn:
    if as_json:
        _print_json(
            {
                "orchestration_id": result.orchestration_id,
                "status": result.status,
                "output": result.output,
                "error": result.error,
                "waves": result.waves,
                "tasks": result.tasks,
                "tokens": result.tokens,
            }
        )
    else:
        colour = "green" if result.ok else "red"
        err.print(
            f"[{colour}]{result.status}[/{colour}] after {result.waves} wave(s), {result.tasks} task(s), "
            f"{result.tokens} tokens",
            highlight=False,
        )
        typer.echo(result.output if result.ok else f"error: {result.error}")
    raise typer.Exit(0 if result.ok else 1)


@app.command("demo")
def demo_command(home: Path | None = HOME, as_json: bool = JSON) -> None:
    """Run the restaurant example end to end (its planner turns are scripted in examples/restaurant)."""
    scenario = EXAMPLES / "restaurant"
    if not scenario.is_dir():
        _fail(f"the examples are not installed next to the package ({scenario} is missing); run from a source checkout")
    if not as_json:
        err.print(f"demo: {scenario / 'event.json'} with the scripted planner {scenario / 'scripted.json'}")
    try:
        result = _run(scenario / "event.json", f"scripted:{scenario / 'scripted.json'}", home, as_json, None)
    except (UsageError, ModelConfigurationError, BlackboardError) as exc:
        _fail(str(exc))
    _report(result, as_json)


# ---------------------------------------------------------------- orchestrations


@orchestrations_app.command("list")
def orchestrations_list(
    home: Path | None = HOME,
    status: OrchestrationStatus | None = typer.Option(None, "--status", help="Only this status."),
    limit: int = typer.Option(20, "--limit", min=1),
    as_json: bool = JSON,
) -> None:
    """List orchestrations, newest first."""
    with LocalRuntime(home, start=False) as runtime:
        found = runtime.backends.blackboard.list_orchestrations(status, limit=limit)
    if as_json:
        _print_json([_summary(o) for o in found])
        return
    for o in found:
        typer.echo(
            f"{o.id}  {o.status.value:<9}  waves={o.usage.waves} tasks={o.usage.tasks}  "
            f"{o.event.source}/{o.event.detail_type}  {o.created_at:%Y-%m-%d %H:%M:%S}"
        )


def _summary(o: Any) -> dict[str, Any]:
    return {
        "id": o.id,
        "status": o.status.value,
        "event_id": o.event.id,
        "source": o.event.source,
        "detail_type": o.event.detail_type,
        "waves": o.usage.waves,
        "tasks": o.usage.tasks,
        "tokens": o.usage.tokens,
        "created_at": o.created_at.isoformat(),
        "output": o.output,
        "error": o.error,
    }


@orchestrations_app.command("show")
def orchestrations_show(orchestration_id: str, home: Path | None = HOME, as_json: bool = JSON) -> None:
    """Show one orchestration with its tasks and notes."""
    with LocalRuntime(home, start=False) as runtime:
        try:
            view = runtime.orchestration(orchestration_id)
        except BlackboardError as exc:
            _fail(str(exc))
    if as_json:
        _print_json(
            {
                "orchestration": view.orchestration.to_dict(),
                "tasks": [t.to_dict() for t in view.tasks],
                "notes": [n.to_dict() for n in view.notes],
            }
        )
        return
    o = view.orchestration
    typer.echo(f"{o.id}  {o.status.value}  event {o.event.source}/{o.event.detail_type} ({o.event.id})")
    for task in view.tasks:
        error = (
            f"  {task.result.error.type}: {task.result.error.message[:80]}" if task.result and task.result.error else ""
        )
        where = f"  wave {task.wave}  {task.task_id:<24} {task.agent!s:<22}"
        typer.echo(f"{where} {task.state.value:<10} attempt {task.attempt}{error}")
    for note in view.notes:
        typer.echo(f"  note {note.key} = {json.dumps(note.value)[:100]} (by {note.author or '?'}, v{note.version})")
    typer.echo(f"output: {o.output}" if o.status is OrchestrationStatus.COMPLETED else f"error: {o.error}")


# ---------------------------------------------------------------- agents


@agents_app.command("list")
def agents_list(
    home: Path | None = HOME,
    state: AgentState | None = typer.Option(None, "--state", help="Only versions in this state."),
    as_json: bool = JSON,
) -> None:
    """List agent versions with their state and stats."""
    with LocalRuntime(home, start=False) as runtime:
        found = list(runtime.backends.registry.list_agents(state))
    if as_json:
        _print_json([m.model_dump(mode="json", by_alias=True, exclude={"embedding"}) for m in found])
        return
    for m in found:
        s = m.stats
        typer.echo(
            f"{m.name}@{m.version:<3} {m.state.value:<16} {m.isolation:<10} runs={s.invocations} ok={s.succeeded} "
            f"failed={s.failed} timed_out={s.timed_out}  {m.description[:60]}"
        )


@agents_app.command("show")
def agents_show(name: str, home: Path | None = HOME, as_json: bool = JSON) -> None:
    """Show every version of an agent."""
    with LocalRuntime(home, start=False) as runtime:
        versions = runtime.backends.registry.versions(name)
        reports = {
            m.version: runtime.backends.code_store.get_json(m.validation_report)
            for m in versions
            if m.validation_report is not None
        }
    if not versions:
        _fail(f"no agent named {name!r}")
    if as_json:
        _print_json(
            [
                {**m.model_dump(mode="json", by_alias=True, exclude={"embedding"}), "report": reports.get(m.version)}
                for m in versions
            ]
        )
        return
    for m in versions:
        typer.echo(f"{m.name}@{m.version}  {m.state.value}  origin={m.origin.value}  isolation={m.isolation}")
        typer.echo(f"  {m.description}")
        typer.echo(f"  code sha256 {m.code.sha256}  timeout {m.timeout_seconds}s  input {json.dumps(m.input_schema)}")
        typer.echo(f"  stats {m.stats.model_dump()}")
        report = reports.get(m.version)
        if report is not None:
            checks = ", ".join(f"{c['name']} {'ok' if c['passed'] else 'FAILED'}" for c in report["checks"])
            typer.echo(f"  validation: {'passed' if report['passed'] else 'failed'} ({checks})")


@agents_app.command("add")
def agents_add(
    name: str,
    module: Path = typer.Option(..., "--file", help="The worker module (defines handler(**kwargs))."),
    description: str = typer.Option(..., "--description", help="What it does, written for the planner."),
    schema: Path | None = typer.Option(None, "--schema", help="A JSON file with the input JSON Schema."),
    trusted: bool = typer.Option(False, "--trusted", help="Run in the worker process instead of the sandbox."),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds one attempt may run."),
    home: Path | None = HOME,
    as_json: bool = JSON,
) -> None:
    """Register a worker agent from a Python module (a new version if the name exists)."""
    try:
        input_schema = json.loads(schema.read_text()) if schema else None
        with LocalRuntime(home, start=False) as runtime:
            manifest = runtime.register_agent(
                name, description, module, input_schema=input_schema, trusted=trusted, timeout_seconds=timeout
            )
    except (UsageError, BlackboardError, ValueError, OSError) as exc:
        _fail(str(exc))
    if as_json:
        _print_json(manifest.model_dump(mode="json", by_alias=True, exclude={"embedding"}))
    else:
        typer.echo(f"registered {manifest.ref} ({manifest.isolation})")


@agents_app.command("retire")
def agents_retire(name: str, home: Path | None = HOME, as_json: bool = JSON) -> None:
    """Retire every active version of an agent: the planner no longer offers it."""
    with LocalRuntime(home, start=False) as runtime:
        registry = runtime.backends.registry
        retired = [
            m.version
            for m in registry.versions(name)
            if m.state is AgentState.ACTIVE and registry.set_state(name, m.version, m.state, AgentState.RETIRED).applied
        ]
    if not retired:
        _fail(f"no active version of {name!r}")
    if as_json:
        _print_json({"name": name, "retired": retired})
    else:
        typer.echo(f"retired {', '.join(f'{name}@{v}' for v in retired)}")


@agents_app.command("approve")
def agents_approve(
    ref: str = typer.Argument(..., help="NAME@VERSION"), home: Path | None = HOME, as_json: bool = JSON
) -> None:
    """Activate a fabricated agent version that waits for approval."""
    name, _, version = ref.partition("@")
    if not version.isdigit():
        _fail(f"give the agent as NAME@VERSION, not {ref!r}")
    try:
        with LocalRuntime(home, start=False) as runtime:
            manifest = approve(runtime.backends.registry, name, int(version))
    except (FabricatorError, BlackboardError) as exc:
        _fail(str(exc))
    if as_json:
        _print_json({"agent": name, "version": manifest.version, "state": manifest.state.value})
    else:
        typer.echo(f"approved {manifest.ref}")


@agents_app.command("rollback")
def agents_rollback(name: str, home: Path | None = HOME, as_json: bool = JSON) -> None:
    """Retire the newest active version of an agent and re-activate the one before it."""
    try:
        with LocalRuntime(home, start=False) as runtime:
            manifest = rollback(runtime.backends.registry, name)
    except (FabricatorError, BlackboardError) as exc:
        _fail(str(exc))
    if as_json:
        _print_json({"agent": name, "version": manifest.version, "state": manifest.state.value})
    else:
        typer.echo(f"rolled back: {manifest.ref} is active")


# ---------------------------------------------------------------- worker


@app.command("worker")
def worker_command(
    home: Path | None = HOME,
    concurrency: int = typer.Option(2, "--concurrency", "-c", min=1, help="Tasks run at once."),
    model: str | None = typer.Option(None, "--model", help="Model spec workers get from wrapper.sdk.model()."),
    max_messages: int | None = typer.Option(None, "--max-messages", min=1, help="Stop after this many messages."),
    as_json: bool = JSON,
) -> None:
    """Run task messages from the embedded queue until interrupted (Ctrl-C finishes the running tasks first)."""
    from blackboard import local_backends
    from wrapper import Executor, SandboxPool, run_worker

    backends = local_backends(home)
    stop = threading.Event()

    def interrupt(signum: int, frame: FrameType | None) -> None:
        err.print("stopping after the running tasks...")
        stop.set()

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    with SandboxPool(size=concurrency) as pool:
        caps = pool.capabilities
        err.print(
            f"worker: {concurrency} at a time; sandbox: separate user={caps.separate_user}, "
            f"no network={caps.network_namespace}, private /tmp={caps.mount_namespace}",
            highlight=False,
        )
        executor = Executor(backends, sandbox=pool, model_spec=model)
        try:
            stats = run_worker(backends.queue, executor, concurrency=concurrency, stop=stop, max_messages=max_messages)
        finally:
            executor.close()
            backends.close()
    if as_json:
        _print_json(vars(stats))
    else:
        typer.echo(f"executed={stats.executed} dropped={stats.dropped} rejected={stats.rejected} errors={stats.errors}")


def main() -> None:
    """Run the command line (the ``arbiter`` console script)."""
    app()
