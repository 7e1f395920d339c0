"""``arbiter orchestrations`` and ``arbiter agents``: inspect runs and manage worker agents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from arbiter import decisions
from arbiter._cli_common import HOME, JSON, REASON, fail, open_runtime, print_json
from arbiter._cli_reflection import quarantine_command, release_command, stats_dict, stats_line, stats_summary
from arbiter._cli_triggers import (
    parse_trigger_options,
    publication_lines,
    publications,
    test_trigger_command,
    trigger_lines,
)
from arbiter.exceptions import UsageError
from blackboard import AgentManifest, AgentState, ArbiterError, BlackboardError, OrchestrationStatus
from fabricator import FabricationFailedError, FabricatorError
from wrapper.exceptions import ModelConfigurationError

__all__ = ["agents_app", "orchestrations_app"]

orchestrations_app = typer.Typer(help="Inspect orchestrations.", no_args_is_help=True)
agents_app = typer.Typer(help="Manage worker agents.", no_args_is_help=True)
agents_app.command("test-trigger")(test_trigger_command)

# ---------------------------------------------------------------- orchestrations


@orchestrations_app.command("list")
def orchestrations_list(
    home: Path | None = HOME,
    status: OrchestrationStatus | None = typer.Option(None, "--status", help="Only this status."),
    limit: int = typer.Option(20, "--limit", min=1),
    as_json: bool = JSON,
) -> None:
    """List orchestrations, newest first."""
    with open_runtime(home, start=False) as runtime:
        found = runtime.backends.blackboard.list_orchestrations(status, limit=limit)
    if as_json:
        print_json([_summary(o) for o in found])
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
        "triggered_by": o.triggered_by,
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
    with open_runtime(home, start=False) as runtime:
        try:
            view = runtime.orchestration(orchestration_id)
        except BlackboardError as exc:
            fail(str(exc))
    if as_json:
        print_json(
            {
                "orchestration": view.orchestration.to_dict(),
                # A running task's completion token is a secret: it is never shown.
                "tasks": [t.model_dump(mode="json", by_alias=True, exclude={"token"}) for t in view.tasks],
                "notes": [n.to_dict() for n in view.notes],
            }
        )
        return
    o = view.orchestration
    typer.echo(f"{o.id}  {o.status.value}  event {o.event.source}/{o.event.detail_type} ({o.event.id})")
    if o.triggered_by is not None:
        typer.echo(f"  standing: bus triggers fired by event {o.triggered_by} (no planner)")
    for task in view.tasks:
        error = (
            f"  {task.result.error.type}: {task.result.error.message[:80]}" if task.result and task.result.error else ""
        )
        where = f"  wave {task.wave}  {task.task_id:<24} {task.agent!s:<22}"
        fired = ""
        if task.reaction is not None:
            fired = f"  reacts to note {task.reaction.note_key!r} v{task.reaction.note_version}"
        typer.echo(f"{where} {task.state.value:<10} attempt {task.attempt}{error}{fired}")
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
    with open_runtime(home, start=False) as runtime:
        found = list(runtime.backends.registry.list_agents(state))
    if as_json:
        print_json(
            [
                {**m.model_dump(mode="json", by_alias=True, exclude={"embedding"}), "stats": stats_dict(m.stats)}
                for m in found
            ]
        )
        return
    for m in found:
        typer.echo(
            f"{m.name}@{m.version:<3} {m.state.value:<16} {m.isolation:<10} {stats_summary(m.stats)} "
            f"{m.description[:50]}"
        )


@agents_app.command("show")
def agents_show(name: str, home: Path | None = HOME, as_json: bool = JSON) -> None:
    """Show every version of an agent, oldest first, with its state and stats."""
    with open_runtime(home, start=False) as runtime:
        versions = runtime.backends.registry.versions(name)
        reports = {
            m.version: runtime.backends.code_store.get_json(m.validation_report)
            for m in versions
            if m.validation_report is not None
        }
        published = {m.version: publications(runtime.backends.blackboard, m) for m in versions}
    if not versions:
        fail(f"no agent named {name!r}")
    if as_json:
        print_json(
            [
                {
                    **m.model_dump(mode="json", by_alias=True, exclude={"embedding"}),
                    "stats": stats_dict(m.stats),
                    "report": reports.get(m.version),
                    "publications": published[m.version],
                }
                for m in versions
            ]
        )
        return
    for m in versions:
        typer.echo(
            f"{m.name}@{m.version}  {m.state.value}  origin={m.origin.value}  isolation={m.isolation}  "
            f"created {m.created_at:%Y-%m-%d %H:%M:%S}"
        )
        typer.echo(f"  {m.description}")
        typer.echo(f"  code sha256 {m.code.sha256}  timeout {m.timeout_seconds}s  input {json.dumps(m.input_schema)}")
        typer.echo(f"  stats: {stats_line(m.stats)}")
        if m.output_schema is not None:
            typer.echo(f"  output {json.dumps(m.output_schema)}")
        for line in trigger_lines(m):
            typer.echo(line)
        report = reports.get(m.version)
        if report is not None:
            typer.echo(checks_line(report))
        for line in publication_lines(published[m.version]):
            typer.echo(line)


@agents_app.command("add")
def agents_add(
    name: str,
    module: Path = typer.Option(..., "--file", help="The worker module (defines handler(**kwargs))."),
    description: str = typer.Option(..., "--description", help="What it does, written for the planner."),
    schema: Path | None = typer.Option(None, "--schema", help="A JSON file with the input JSON Schema."),
    trusted: bool = typer.Option(False, "--trusted", help="Run in the worker process instead of the sandbox."),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds one attempt may run."),
    trigger: list[str] = typer.Option(
        [],
        "--trigger",
        help='When the engine calls it on its own (repeat for more): JSON {"pattern": ..., "input": {FIELD: PATH}}, '
        'or a bare pattern such as {"note": {"key": [{"prefix": "alarm:"}]}}.',
    ),
    home: Path | None = HOME,
    as_json: bool = JSON,
) -> None:
    """Register a worker agent from a Python module (a new version if the name exists)."""
    try:
        input_schema = json.loads(schema.read_text()) if schema else None
        triggers = parse_trigger_options(trigger)
        with open_runtime(home, start=False) as runtime:
            manifest = runtime.register_agent(
                name,
                description,
                module,
                input_schema=input_schema,
                trusted=trusted,
                timeout_seconds=timeout,
                triggers=triggers,
            )
    except (UsageError, BlackboardError, ValueError, OSError) as exc:
        fail(str(exc))
    if as_json:
        print_json(manifest.model_dump(mode="json", by_alias=True, exclude={"embedding"}))
    else:
        typer.echo(f"registered {manifest.ref} ({manifest.isolation})")


@agents_app.command("fabricate")
def agents_fabricate(
    capability: str = typer.Argument(..., help="What the worker computes from its inputs and returns."),
    inputs: list[str] = typer.Option([], "--input", help="An input as NAME=DESCRIPTION (repeat for more)."),
    examples: list[str] = typer.Option(
        [], "--example", help='An acceptance example as JSON: {"input": {...}, "expected": ...} (repeat, up to 5).'
    ),
    model: str | None = typer.Option(None, "--model", help="Model spec the Fabricator writes with."),
    approval: bool = typer.Option(False, "--approval", help="The new version waits for `agents approve`."),
    home: Path | None = HOME,
    as_json: bool = JSON,
) -> None:
    """Fabricate a worker directly: reuse one that passes the examples, or write, check and publish a new one.

    Exit code 1 when no draft passed (nothing is published), 2 for a usage error.
    """
    declared: dict[str, str] = {}
    for pair in inputs:
        name, sep, about = pair.partition("=")
        if not sep or not name.strip():
            fail(f"--input {pair!r}: expected NAME=DESCRIPTION")
        declared[name.strip()] = about.strip()
    given: list[Any] = []
    for index, text in enumerate(examples):
        try:
            given.append(json.loads(text))
        except ValueError as exc:
            fail(f"--example {index + 1} is not JSON: {exc}")
    try:
        with open_runtime(home, model=model, approval=approval) as runtime:
            result = runtime.fabricate(capability, declared, given)
    except (UsageError, ModelConfigurationError) as exc:
        fail(str(exc))
    except FabricationFailedError as exc:
        fail(str(exc), code=1)
    agent, report = result.agent, result.report
    if as_json:
        print_json(
            {
                "agent": agent.name,
                "version": agent.version,
                "state": agent.state.value,
                "reused": result.reused,
                "attempts": result.attempts,
                "examples_passed": result.examples_passed,
                "seconds": round(result.duration_ms / 1000, 1),
                "report": None if report is None else report.model_dump(mode="json"),
            }
        )
        return
    verb = "reused" if result.reused else "published"
    typer.echo(
        f"{verb} {agent.ref} ({agent.state.value}) in {result.duration_ms / 1000:.1f} s, "
        f"{result.attempts} draft(s); caller examples passed: {result.examples_passed}/{len(given)}"
    )
    if report is not None:
        typer.echo(checks_line(report.model_dump(mode="json")))


agents_app.command("quarantine")(quarantine_command)
agents_app.command("release")(release_command)


@agents_app.command("retire")
def agents_retire(
    name: str,
    version: int | None = typer.Option(None, "--version", min=1, help="Only this version (in any state)."),
    reason: str = REASON,
    home: Path | None = HOME,
    as_json: bool = JSON,
) -> None:
    """Retire every active or quarantined version of an agent (or one version): the planner no longer offers it."""
    with open_runtime(home, start=False) as runtime:
        retired = decisions.retire(runtime.backends, name, version, by=decisions.who("cli"), reason=reason)
    if not retired:
        fail(f"no version of {name!r} to retire" + ("" if version is None else f" at version {version}"))
    if as_json:
        print_json({"name": name, "retired": retired})
    else:
        typer.echo(f"retired {', '.join(f'{name}@{v}' for v in retired)}")


def _ref(ref: str) -> tuple[str, int]:
    name, _, version = ref.partition("@")
    if not version.isdigit():
        fail(f"give the agent as NAME@VERSION, not {ref!r}")
    return name, int(version)


@agents_app.command("approve")
def agents_approve(
    ref: str = typer.Argument(..., help="NAME@VERSION"),
    reason: str = REASON,
    home: Path | None = HOME,
    as_json: bool = JSON,
) -> None:
    """Activate a fabricated agent version that waits for approval (recorded with who, when and why)."""
    name, version = _ref(ref)
    try:
        with open_runtime(home, start=False) as runtime:
            manifest = decisions.approve(runtime.backends, name, version, by=decisions.who("cli"), reason=reason)
            reviews = publications(runtime.backends.blackboard, manifest)
    except (ArbiterError, BlackboardError) as exc:
        fail(str(exc))
    # The approver sees what the triggers on the version's publication said (a reviewer's verdict).
    _show_version(manifest, as_json, "\n".join([f"approved {manifest.ref}", *publication_lines(reviews)]))


@agents_app.command("reject")
def agents_reject(
    ref: str = typer.Argument(..., help="NAME@VERSION"),
    reason: str = typer.Option(..., "--reason", help="Why (kept with the decision)."),
    home: Path | None = HOME,
    as_json: bool = JSON,
) -> None:
    """Retire a fabricated agent version that waits for approval, keeping the reason."""
    name, version = _ref(ref)
    try:
        with open_runtime(home, start=False) as runtime:
            manifest = decisions.reject(runtime.backends, name, version, by=decisions.who("cli"), reason=reason)
    except (ArbiterError, BlackboardError) as exc:
        fail(str(exc))
    _show_version(manifest, as_json, f"rejected {manifest.ref}: retired")


@agents_app.command("rollback")
def agents_rollback(name: str, reason: str = REASON, home: Path | None = HOME, as_json: bool = JSON) -> None:
    """Retire the newest active version of an agent and re-activate the one before it."""
    try:
        with open_runtime(home, start=False) as runtime:
            manifest = decisions.rollback(runtime.backends, name, by=decisions.who("cli"), reason=reason)
    except (FabricatorError, BlackboardError) as exc:
        fail(str(exc))
    _show_version(manifest, as_json, f"rolled back: {manifest.ref} is active")


@agents_app.command("search")
def agents_search(
    text: str = typer.Argument(..., help="What the agent should do."),
    k: int = typer.Option(8, "--k", min=1, help="How many matches."),
    bm25: bool = typer.Option(False, "--bm25", help="Use the lexical matcher even if embeddings are installed."),
    home: Path | None = HOME,
    as_json: bool = JSON,
) -> None:
    """Rank the active agents for a task description, as the planner's matcher does."""
    with open_runtime(home, start=False, matching="bm25" if bm25 else None) as runtime:
        matcher = runtime.matcher
        if matcher is None:
            fail("matching is switched off (ARBITER_MATCHING=all): every active agent is offered")
        matcher.refresh()
        matches = matcher.search(text, k)
    if as_json:
        print_json(
            {
                "provider": matcher.provider,
                "matches": [
                    {"agent": m.manifest.name, "version": m.manifest.version, "score": m.score} for m in matches
                ],
            }
        )
        return
    typer.echo(f"matcher: {matcher.provider}")
    for rank, match in enumerate(matches, 1):
        typer.echo(f"{rank:>3}. {match.score:7.3f}  {match.manifest.ref!s:<28} {match.manifest.description[:70]}")


def checks_line(report: dict[str, Any]) -> str:
    """A stored validation report in one line: every check, ok, FAILED or overruled."""

    def outcome(check: dict[str, Any]) -> str:
        return "overruled" if check.get("overruled") else "ok" if check["passed"] else "FAILED"

    checks = ", ".join(f"{c['name']} {outcome(c)}" for c in report["checks"])
    return f"  validation: {'passed' if report['passed'] else 'failed'} ({checks})"


def _show_version(manifest: AgentManifest, as_json: bool, text: str) -> None:
    if as_json:
        print_json({"agent": manifest.name, "version": manifest.version, "state": manifest.state.value})
    else:
        typer.echo(text)
