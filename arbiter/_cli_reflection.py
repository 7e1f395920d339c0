"""``arbiter agents quarantine|release`` and the stats columns of ``agents list`` / ``agents show``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from arbiter import decisions
from arbiter._cli_common import HOME, JSON, REASON, fail, open_runtime, print_json
from blackboard import AgentState, AgentStats, ArbiterError, BlackboardError

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


def quarantine_command(
    name: str,
    version: int | None = VERSION,
    reason: str = typer.Option("quarantined by hand", "--reason", help="Why (published with agent.quarantined)."),
    home: Path | None = HOME,
    as_json: bool = JSON,
) -> None:
    """Take an active version out of service (default: the newest active one); the planner stops offering it."""
    with open_runtime(home, start=False) as runtime:
        try:
            chosen = decisions.quarantine(runtime.backends, name, version, by=decisions.who("cli"), reason=reason)
        except (ArbiterError, BlackboardError) as exc:
            fail(str(exc))
        remaining = [m.version for m in runtime.backends.registry.versions(name) if m.state is AgentState.ACTIVE]
    if as_json:
        print_json({"agent": name, "version": chosen.version, "state": "quarantined", "reason": reason})
        return
    still = f"; {name}@{remaining[-1]} stays active" if remaining else f"; {name!r} is no longer offered"
    typer.echo(f"quarantined {name}@{chosen.version}{still}")


def release_command(
    name: str, version: int | None = VERSION, reason: str = REASON, home: Path | None = HOME, as_json: bool = JSON
) -> None:
    """Put a quarantined version back into service (default: the newest quarantined one)."""
    with open_runtime(home, start=False) as runtime:
        try:
            moved = decisions.release(runtime.backends, name, version, by=decisions.who("cli"), reason=reason)
        except (ArbiterError, BlackboardError) as exc:
            fail(str(exc))
    if as_json:
        print_json({"agent": name, "version": moved.version, "state": moved.state.value})
    else:
        typer.echo(f"released {name}@{moved.version}: active again")
