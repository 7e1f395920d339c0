"""``arbiter agents quarantine|release`` and the stats columns of ``agents list`` / ``agents show``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from arbiter._cli_common import HOME, JSON, fail, open_runtime, print_json
from arbiter.reflection import Reflector
from blackboard import AgentManifest, AgentState, AgentStats, BlackboardError, Registry

__all__ = ["quarantine_command", "release_command", "stats_dict", "stats_line", "stats_summary"]

VERSION = typer.Option(None, "--version", min=1, help="This version (default: see the command's help).")


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.1f}s" if value >= 10_000 else f"{value:.0f}ms"


def stats_summary(stats: AgentStats) -> str:
    """One short column set for ``agents list``: invocations, success share, p95 and tokens."""
    success = f"{stats.succeeded / stats.invocations:.0%}" if stats.invocations else "-"
    return f"runs={stats.invocations:<5} ok={success:<4} p95={_ms(stats.p95_ms):<7} tokens={stats.tokens:<7}"


def stats_line(stats: AgentStats) -> str:
    """Every counter of one version, for ``agents show``."""
    return (
        f"{stats.invocations} invocations: {stats.succeeded} succeeded, {stats.failed} failed, "
        f"{stats.timed_out} timed out ({stats.failure_rate:.0%} failures); mean {_ms(stats.mean_ms)}, "
        f"p95 {_ms(stats.p95_ms)}; {stats.tokens} model tokens"
    )


def stats_dict(stats: AgentStats) -> dict[str, Any]:
    """The stats with the derived figures, for ``--json``."""
    return {**stats.model_dump(), "p95_ms": stats.p95_ms, "mean_ms": stats.mean_ms, "failure_rate": stats.failure_rate}


def _pick(registry: Registry, name: str, version: int | None, state: AgentState) -> AgentManifest:
    versions = registry.versions(name)
    if not versions:
        fail(f"no agent named {name!r}")
    if version is not None:
        chosen = [m for m in versions if m.version == version]
        if not chosen:
            fail(f"{name!r} has no version {version}; it has {', '.join(str(m.version) for m in versions)}")
        if chosen[0].state is not state:
            fail(f"{name}@{version} is {chosen[0].state.value}, not {state.value}")
        return chosen[0]
    candidates = [m for m in versions if m.state is state]
    if not candidates:
        fail(f"{name!r} has no {state.value} version (see `arbiter agents show {name}`)")
    return candidates[-1]


def quarantine_command(
    name: str,
    version: int | None = VERSION,
    reason: str = typer.Option("quarantined by hand", "--reason", help="Why (published with agent.quarantined)."),
    home: Path | None = HOME,
    as_json: bool = JSON,
) -> None:
    """Take an active version out of service (default: the newest active one); the planner stops offering it."""
    with open_runtime(home, start=False) as runtime:
        registry = runtime.backends.registry
        chosen = _pick(registry, name, version, AgentState.ACTIVE)
        try:
            done = Reflector(runtime.backends).quarantine(name, chosen.version, reason, by="person")
        except BlackboardError as exc:
            fail(str(exc))
        remaining = [m.version for m in registry.versions(name) if m.state is AgentState.ACTIVE]
    if done is None:
        fail(f"{name}@{chosen.version} changed state meanwhile; nothing done")
    if as_json:
        print_json({"agent": name, "version": chosen.version, "state": "quarantined", "reason": reason})
        return
    still = f"; {name}@{remaining[-1]} stays active" if remaining else f"; {name!r} is no longer offered"
    typer.echo(f"quarantined {name}@{chosen.version}{still}")


def release_command(name: str, version: int | None = VERSION, home: Path | None = HOME, as_json: bool = JSON) -> None:
    """Put a quarantined version back into service (default: the newest quarantined one)."""
    with open_runtime(home, start=False) as runtime:
        registry = runtime.backends.registry
        chosen = _pick(registry, name, version, AgentState.QUARANTINED)
        moved = registry.set_state(name, chosen.version, AgentState.QUARANTINED, AgentState.ACTIVE)
    if not moved.applied:
        fail(f"{name}@{chosen.version} changed state meanwhile; nothing done")
    if as_json:
        print_json({"agent": name, "version": chosen.version, "state": moved.record.state.value})
    else:
        typer.echo(f"released {name}@{chosen.version}: active again")
