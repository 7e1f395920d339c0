"""The ``arbiter`` command line.

Exit codes: 0 success, 1 the orchestration failed (``doctor``: unreadable records remain), 2 a usage or
configuration error. ``--json`` prints one machine-readable document on standard output.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from types import FrameType
from typing import NoReturn

import typer

from arbiter import __version__
from arbiter._cli_common import (
    BACKEND,
    BACKENDS,
    HOME,
    JSON,
    err,
    fail,
    open_runtime,
    parse_resources,
    print_json,
)
from arbiter._cli_doctor import HELP as DOCTOR_HELP
from arbiter._cli_doctor import doctor_command
from arbiter._cli_inspect import agents_app, orchestrations_app
from arbiter._cli_models import models_app
from arbiter._cli_report import report
from arbiter._cli_ui import ui_command
from arbiter.constants import DEFAULT_QUEUE_VISIBILITY_SECONDS
from arbiter.exceptions import UsageError
from arbiter.inputs import load_event_file, load_events_file
from arbiter.runtime import LocalRuntime, RunResult
from arbiter.updates import (
    FabricationFailed,
    FabricationPublished,
    FabricationStarted,
    OrchestrationFinished,
    TaskFinished,
    TaskRetried,
    TaskStarted,
    Update,
    WavePlanned,
)
from blackboard import BlackboardError, Budget
from blackboard.logs import configure_logging
from wrapper import ModelConfigurationError

__all__ = ["app", "main"]

app = typer.Typer(
    name="arbiter",
    help="Event-driven multi-agent systems on the Arbiter pattern.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(orchestrations_app, name="orchestrations")
app.add_typer(agents_app, name="agents")
app.command("report")(report)
app.command("doctor", help=DOCTOR_HELP)(doctor_command)
app.add_typer(models_app, name="models")
app.command("ui")(ui_command)


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
    backend: str = typer.Option(
        "local",
        "--backend",
        envvar="ARBITER_BACKEND",
        help="Where state lives: local (ARBITER_HOME) or aws (the deployed DynamoDB, S3, SQS and EventBridge).",
    ),
    stack: str | None = typer.Option(
        None, "--stack", envvar="ARBITER_STACK", help="With --backend aws: read resource names from this stack."
    ),
    resource: list[str] = typer.Option(
        [], "--resource", help="With --backend aws: NAME=VALUE, e.g. bus_name=arbiter (else ARBITER_* variables)."
    ),
    log_format: str | None = typer.Option(
        None, "--log-format", help="Logs as 'text' or 'json' lines (default: $ARBITER_LOG_FORMAT, else text)."
    ),
) -> None:
    """Event-driven multi-agent systems on the Arbiter pattern."""
    if backend not in BACKENDS:
        fail(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    BACKEND.name, BACKEND.stack, BACKEND.resources = backend, stack, parse_resources(resource)
    try:
        configure_logging(log_format, logging.DEBUG if verbose else logging.WARNING)
    except ValueError as exc:
        fail(str(exc))


@app.command("version")
def version_command(as_json: bool = JSON) -> None:
    """Print the version."""
    if as_json:
        print_json({"version": __version__})
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
                triggers=entry.get("triggers", ()),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"{path}: agent entry {entry!r} is invalid: {exc}") from exc
        names.append(entry["name"])
    return names


def read_instructions(event_file: Path) -> str | None:
    """The deployment's instructions for the planner: ``instructions.md`` next to the event file, if there is one."""
    path = event_file.parent / "instructions.md"
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _progress(updates: Iterable[Update], quiet: bool) -> RunResult:
    """Show waves and task states as the updates come: a live line on a terminal, plain lines otherwise.

    Returns:
        How the orchestration ended (its last update).
    """
    live = err.is_terminal and not quiet
    wave, tokens, fabrications = 0, 0, 0
    states: dict[str, str] = {}
    last = ""
    with err.status("starting...", spinner="dots") if live else _Null() as status:
        for update in updates:
            if isinstance(update, OrchestrationFinished):
                return update.result
            if isinstance(update, WavePlanned):
                wave, tokens, fabrications = update.wave, update.tokens, update.fabrications
                states.update({task.task_id: "pending" for task in update.tasks})
            elif isinstance(update, TaskStarted | FabricationStarted):
                states[update.task_id] = "running"
            elif isinstance(update, TaskRetried):
                states[update.task_id] = "pending"
            elif isinstance(update, TaskFinished):
                states[update.task_id] = update.status
            elif isinstance(update, FabricationPublished):
                states[update.task_id] = "succeeded"
            elif isinstance(update, FabricationFailed):
                states[update.task_id] = "failed"
            counts = Counter(states.values())
            line = (
                f"wave {wave} | tasks: "
                + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none yet")
                + f" | fabrications {fabrications} | tokens {tokens}"
            )
            if line != last:
                if live:
                    status.update(line)
                elif not quiet:
                    err.print(line, highlight=False)
                last = line
    raise UsageError("the orchestration's updates ended before it finished")


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
    instructions = read_instructions(event_file)
    with open_runtime(
        home, model=model, fabricator_model=fabricator_model, approval=approval, instructions=instructions
    ) as runtime:
        if agents_file.is_file():
            names = register_agents_file(runtime, agents_file)
            if not as_json:
                err.print(f"agents from {agents_file}: {', '.join(names)}", highlight=False)
        updates = runtime.stream(event, budget=budget)
        if not as_json:
            err.print(f"orchestration {updates.orchestration_id}", highlight=False)
        return _progress(updates, quiet=as_json)


@app.command("run")
def run_command(
    event_file: Path = typer.Argument(..., help="An EventBridge event as JSON (source, detail-type, detail)."),
    model: str | None = typer.Option(None, "--model", help="Model spec, e.g. bedrock:<id>, scripted:<file.json>."),
    home: Path | None = HOME,
    as_json: bool = JSON,
    max_waves: int | None = typer.Option(None, "--max-waves", min=1, help="Budget: waves of tasks."),
    max_tasks: int | None = typer.Option(None, "--max-tasks", min=1, help="Budget: tasks."),
    timeout: float | None = typer.Option(None, "--timeout", min=1, help="Budget: seconds until the deadline."),
    max_trigger_depth: int | None = typer.Option(
        None, "--max-trigger-depth", min=0, help="Budget: reactive tasks a chain of triggers may add (0: none)."
    ),
    fabricator_model: str | None = typer.Option(
        None, "--fabricator-model", help="Model spec the Fabricator writes new workers with (default: --model)."
    ),
    approval: bool = typer.Option(False, "--approval", help="New fabricated agents wait for `agents approve`."),
) -> None:
    """Run one event to a terminal state (agents.json and instructions.md next to the event file are used)."""
    limits = {
        "max_waves": max_waves,
        "max_tasks": max_tasks,
        "timeout_seconds": timeout,
        "max_trigger_depth": max_trigger_depth,
    }
    given = {k: v for k, v in limits.items() if v is not None}
    budget = Budget(**given) if given else None
    try:
        result = _run(event_file, model, home, as_json, budget, fabricator_model, approval)
    except (UsageError, ModelConfigurationError, BlackboardError) as exc:
        fail(str(exc))
    _report(result, as_json)


def _report(result: RunResult, as_json: bool) -> NoReturn:
    if as_json:
        print_json(
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
def demo_command(
    home: Path | None = HOME,
    as_json: bool = JSON,
    model: str = typer.Option(
        "local",
        "--model",
        help="local (the offline Qwen2.5-Coder 1.5B, installed if missing), scripted (instant), or a model spec.",
    ),
) -> None:
    """Run the incident example end to end: plan, fabricate the missing worker, validate it, run it, answer.

    By default the planner and the Fabricator are the local model (installed on first use, about 1.1 GB); with
    ``--model scripted`` their turns are played from examples/incident/*.json and the run takes a second. Everything
    else is real: the blackboard in the home directory, the sandbox, the validation harness and the registry.
    """
    BACKEND.name = "local"  # the demo always runs embedded
    from arbiter._cli_demo import run_demo

    run_demo(model, home, as_json)


# ---------------------------------------------------------------- publish


@app.command("publish")
def publish_command(
    event_file: Path = typer.Argument(
        ..., help="An EventBridge event as JSON (source, detail-type, detail), a PutEvents entry, or an array of them."
    ),
    bus: str | None = typer.Option(
        None, "--bus", help="The event bus (default: ARBITER_BUS_NAME, else the stack's BusName with --stack)."
    ),
    as_json: bool = JSON,
) -> None:
    """Publish events to the deployed EventBridge bus (PutEvents) and print the ids EventBridge gave them, in order.

    The file holds one event, one ``PutEvents`` entry (``Source``, ``DetailType``, ``Detail``), an array of them or
    ``{"Entries": [...]}``; each is checked like an event of ``arbiter run`` before anything is sent.
    """
    from blackboard.adapters.aws.eventbridge_bus import EventBridgeBus

    try:
        events = load_events_file(event_file)
        name = bus or BACKEND.aws_config().require("bus_name").bus_name
        event_ids = EventBridgeBus(name).put(events)
    except (UsageError, BlackboardError) as exc:
        fail(str(exc))
    if as_json:
        print_json({"event_id": event_ids[0], "event_ids": event_ids, "bus": name})
    else:
        typer.echo("\n".join(event_ids))


# ---------------------------------------------------------------- worker


@app.command("worker")
def worker_command(
    home: Path | None = HOME,
    concurrency: int = typer.Option(2, "--concurrency", "-c", min=1, help="Tasks run at once."),
    model: str | None = typer.Option(None, "--model", help="Model spec workers get from wrapper.sdk.model()."),
    max_messages: int | None = typer.Option(None, "--max-messages", min=1, help="Stop after this many messages."),
    visibility: float | None = typer.Option(
        None,
        "--visibility",
        min=1,
        max=43_200,
        help="Seconds a received task message stays invisible before it is delivered again (longer than any task "
        f"runs); default {DEFAULT_QUEUE_VISIBILITY_SECONDS:g} on the local home, the queue's own with --backend aws.",
    ),
    as_json: bool = JSON,
) -> None:
    """Run task messages from the queue until interrupted (Ctrl-C finishes the running tasks first).

    With ``--backend aws`` the messages come from the deployed SQS task queue. A message for a task that does not
    exist goes to the dead-letter queue at once.
    """
    from arbiter._completions import COMPLETIONS_QUEUE, relay_completions
    from blackboard import local_backends
    from blackboard.adapters import SqliteTaskQueue
    from wrapper import Executor, SandboxPool, run_worker

    if BACKEND.name == "aws":
        from blackboard.adapters.aws import aws_backends

        try:
            backends = aws_backends(BACKEND.aws_config())
        except BlackboardError as exc:
            fail(str(exc))
    else:
        backends = local_backends(home)
        visibility = DEFAULT_QUEUE_VISIBILITY_SECONDS if visibility is None else visibility
        assert backends.database is not None
        # Completions that close a wave reach a runtime on the same home through the durable queue, at once.
        relay_completions(backends.bus, SqliteTaskQueue(backends.database, COMPLETIONS_QUEUE))
    stop = threading.Event()

    def interrupt(signum: int, frame: FrameType | None) -> None:
        err.print("stopping after the running tasks...")
        stop.set()

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    shown_visibility = "the queue's own" if visibility is None else f"{visibility:g} s"
    with SandboxPool(size=concurrency) as pool:
        caps = pool.capabilities
        err.print(
            f"worker: {concurrency} at a time; message visibility: {shown_visibility}; "
            f"sandbox: separate user={caps.separate_user}, "
            f"no network={caps.network_namespace}, private /tmp={caps.mount_namespace}, landlock={caps.landlock}",
            highlight=False,
        )
        trusted = sorted(name for name, m in backends.registry.active_agents().items() if m.isolation == "in_process")
        if trusted:
            err.print(
                f"worker: cannot run the trusted agents {', '.join(trusted)}: trusted code runs only in the process "
                "that registers it; their tasks taken here fail with TrustedHandlerUnavailable",
                highlight=False,
            )
        executor = Executor(backends, sandbox=pool, model_spec=model)
        try:
            stats = run_worker(
                backends.queue,
                executor,
                concurrency=concurrency,
                stop=stop,
                max_messages=max_messages,
                visibility_seconds=visibility,
            )
        finally:
            executor.close()
            backends.close()
    if as_json:
        print_json(vars(stats))
    else:
        typer.echo(f"executed={stats.executed} dropped={stats.dropped} rejected={stats.rejected} errors={stats.errors}")


def main() -> None:
    """Run the command line (the ``arbiter`` console script)."""
    app()
