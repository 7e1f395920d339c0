"""Triggers on the command line: ``agents add --trigger`` parsing, their lines in ``agents show``, ``test-trigger``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from arbiter._cli_common import HOME, JSON, fail, open_runtime, print_json
from arbiter.exceptions import UsageError
from blackboard import AgentManifest, AgentNotFoundError, AgentState, Blackboard, Event, RecordValidationError, Trigger
from blackboard.announcements import announcement_id
from blackboard.standing import standing_event_id, standing_key
from blackboard.triggers import event_document, fire, note_document

__all__ = ["parse_trigger_options", "publication_lines", "publications", "test_trigger_command", "trigger_lines"]

#: The orchestration id a note tried with ``test-trigger`` is given (the note belongs to none).
TEST_ORCHESTRATION = "test-trigger"


def parse_trigger_options(values: Sequence[str]) -> list[dict[str, Any]]:
    """The ``--trigger`` values: a trigger object (``{"pattern": ..., "input": ...}``) or a bare pattern each.

    Raises:
        UsageError: a value is not a JSON object.
    """
    triggers = []
    for index, value in enumerate(values):
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            raise UsageError(f"--trigger #{index + 1} is not JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise UsageError(f"--trigger #{index + 1} must be a JSON object (a pattern, or a pattern with an input)")
        triggers.append(parsed if "pattern" in parsed else {"pattern": parsed, "input": {}})
    return triggers


def trigger_lines(manifest: AgentManifest) -> list[str]:
    """How ``agents show`` lists an agent version's triggers."""
    return [
        f"  trigger {index} ({trigger.kind}): {json.dumps(trigger.pattern)}"
        + (f" input {json.dumps(trigger.input)}" if trigger.input else "")
        for index, trigger in enumerate(manifest.triggers)
    ]


def _document(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """What a trigger is matched against: a note (``key``, ``value``, ``author``, ``version``) or a bus event."""
    if "source" in data:
        event = Event.parse(data)
        return "bus", event_document(event, standing_key(event))
    if not isinstance(data.get("key"), str) or not data["key"]:
        raise UsageError('NOTE_JSON is a note ({"key": ..., "value": ...}) or a bus event (with "source")')
    version = data.get("version", 1)
    if type(version) is not int or version < 1:
        raise UsageError("the note's version is a whole number from 1")
    return "note", note_document(
        TEST_ORCHESTRATION, data["key"], data.get("value"), str(data.get("author", "")), version
    )


def _outcome(
    index: int, trigger: Trigger, kind: str, document: dict[str, Any], schema: dict[str, Any]
) -> dict[str, Any]:
    if trigger.kind != kind:
        return {"trigger": index, "fires": False, "why": f"a {trigger.kind} trigger; this is a {kind}"}
    firing = fire(trigger, document, schema)
    if firing.input is not None:
        return {"trigger": index, "fires": True, "input": firing.input}
    why = firing.problem if firing.matched else "the pattern does not match"
    return {"trigger": index, "fires": False, "matched": firing.matched, "why": why}


def test_trigger_command(
    name: str = typer.Argument(..., help="The agent (its active version)."),
    note_json: str = typer.Argument(..., help='A note {"key", "value", "author", "version"} or a bus event (JSON).'),
    version: int | None = typer.Option(None, "--version", help="This version instead of the active one."),
    home: Path | None = HOME,
    as_json: bool = JSON,
) -> None:
    """Say whether a note (or a bus event) would fire an agent's triggers, and the input the agent would get.

    Exit code 0 when a trigger fires, 1 when none does, 2 for a usage error.
    """
    try:
        data = json.loads(note_json)
        if not isinstance(data, dict):
            raise UsageError("NOTE_JSON must be a JSON object")
        kind, document = _document(data)
    except (ValueError, UsageError) as exc:
        fail(str(exc) if isinstance(exc, UsageError | RecordValidationError) else f"NOTE_JSON is not JSON: {exc}")
    with open_runtime(home, start=False) as runtime:
        registry = runtime.backends.registry
        try:
            manifest = registry.get(name, version) if version is not None else registry.active(name)
        except AgentNotFoundError as exc:
            fail(str(exc))
    outcomes = [_outcome(i, t, kind, document, manifest.input_schema) for i, t in enumerate(manifest.triggers)]
    fires = next((o for o in outcomes if o["fires"]), None)
    if as_json:
        print_json({"agent": str(manifest.ref), "fires": fires is not None, "triggers": outcomes})
    else:
        if not outcomes:
            typer.echo(f"{manifest.ref} has no triggers")
        for o in outcomes:
            if o["fires"]:
                typer.echo(f"trigger {o['trigger']}: fires: {manifest.ref} gets {json.dumps(o['input'])}")
            else:
                typer.echo(f"trigger {o['trigger']}: does not fire: {o['why']}")
    raise typer.Exit(0 if fires is not None else 1)


def publications(board: Blackboard, manifest: AgentManifest) -> list[dict[str, Any]]:
    """What the bus triggers on a version's ``agent.published`` events did (a reviewer's verdict, say).

    One entry per announcement that started a standing orchestration (published ``pending_approval``, published or
    approved ``active``): its orchestration, status and the triggered agents' outputs.
    """
    found = []
    for state in (AgentState.PENDING_APPROVAL, AgentState.ACTIVE):
        key = announcement_id(manifest.name, manifest.version, state)
        orchestration = board.find_orchestration(standing_event_id(key))
        if orchestration is not None:
            found.append(
                {
                    "announced": state.value,
                    "orchestration_id": orchestration.id,
                    "status": orchestration.status.value,
                    "outputs": orchestration.output or {},
                    "error": orchestration.error,
                }
            )
    return found


def publication_lines(entries: Sequence[dict[str, Any]]) -> list[str]:
    """The lines of ``agents show`` for :func:`publications`: a verdict (``verdict`` and ``reasons``) is spelled out."""
    lines = []
    for entry in entries:
        lines.append(
            f"  on agent.published ({entry['announced']}): orchestration {entry['orchestration_id']} {entry['status']}"
            + (f": {entry['error']}" if entry["error"] else "")
        )
        for agent, output in entry["outputs"].items():
            if isinstance(output, dict) and "verdict" in output:
                reasons = "; ".join(str(r) for r in output.get("reasons") or []) or "no reasons given"
                lines.append(f"    review by {agent}: {output['verdict']} — {reasons}")
            else:
                lines.append(f"    {agent}: {json.dumps(output, ensure_ascii=False)[:400]}")
    return lines
