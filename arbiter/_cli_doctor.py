"""``arbiter doctor``: find the stored records that cannot be read, and set them aside with ``--repair``."""

from __future__ import annotations

from pathlib import Path

import typer

from arbiter._cli_common import HOME, JSON, open_runtime, print_json
from blackboard.quarantine import Unreadable

__all__ = ["HELP", "doctor_command"]

#: The command's help: what counts as unreadable, and exactly what ``--repair`` does (paragraphs, one per line).
HELP = "\n\n".join(
    [
        "Find stored records that cannot be read, and with --repair set them aside.",
        "A record cannot be read when its stored document is not valid JSON, is nested deeper than the JSON parser"
        " takes, or no longer validates (written by another version, or damaged). Listings and the watchdog skip"
        " such records (and log them); this command lists every one: orchestrations (the newest --limit), their"
        " tasks and notes, and agent manifests.",
        "With --repair nothing is deleted: each original document is kept in the store's quarantine area (SQLite:"
        " the table `quarantine` of ARBITER_HOME/arbiter.db; DynamoDB: items whose pk is `QUARANTINE#<kind>`), and:",
        "- an unreadable orchestration is replaced by a `failed` one with the same id and event id, whose error"
        " gives the reason (its event is not run again);",
        "- an unreadable task or note is moved aside, and the orchestration of a task, if running, is marked"
        " `failed` (that wave can no longer finish);",
        "- an unreadable agent manifest is listed, not repaired: retire it or publish a new version.",
        "Exit codes: 0 when no unreadable record remains, 1 when some remain, 2 a usage or configuration error.",
    ]
)


def _line(entry: Unreadable, outcome: str) -> str:
    return f"{entry.label}  {outcome}  {entry.reason}"


def doctor_command(
    home: Path | None = HOME,
    repair: bool = typer.Option(False, "--repair", help="Set unreadable records aside (see above)."),
    limit: int = typer.Option(10_000, "--limit", min=1, help="Look at the newest N orchestrations."),
    as_json: bool = JSON,
) -> None:
    """Find stored records that cannot be read, and with --repair set them aside."""
    rows: list[tuple[Unreadable, str]] = []
    with open_runtime(home, start=False) as runtime:
        board, registry = runtime.backends.blackboard, runtime.backends.registry
        for entry in board.find_unreadable(limit=limit):
            if not repair:
                rows.append((entry, "unreadable"))
            else:
                rows.append((entry, "set aside" if board.set_aside(entry) else "changed meanwhile, look again"))
        rows.extend((entry, "unreadable (agents are not repaired)") for entry in registry.find_unreadable())
    remaining = [entry for entry, outcome in rows if outcome != "set aside"]
    if as_json:
        print_json(
            [
                {
                    "kind": e.kind,
                    "key": list(e.key),
                    "reason": e.reason,
                    "outcome": outcome,
                    "repaired": outcome == "set aside",
                }
                for e, outcome in rows
            ]
        )
    elif not rows:
        typer.echo("no unreadable records")
    else:
        for entry, outcome in rows:
            typer.echo(_line(entry, outcome))
        if remaining and not repair:
            typer.echo(f"{len(remaining)} unreadable record(s); `arbiter doctor --repair` sets them aside")
    if remaining:
        raise typer.Exit(1)
