"""A home with a record nested too deep to read still works; ``arbiter doctor`` lists it and ``--repair`` fixes it."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from arbiter.cli import app
from blackboard import Orchestration
from blackboard.adapters import SqliteDatabase
from tests.conformance.builders import event

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "restaurant"
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def run_example(home: Path) -> tuple[int, str, str]:
    model = f"scripted:{EXAMPLE / 'scripted.json'}"
    return invoke("run", str(EXAMPLE / "event.json"), "--model", model, "--home", str(home), "--json")


def plant_deep_running_orchestration(home: Path, depth: int = 250) -> str:
    """A running orchestration whose event holds a value nested ``depth`` levels deep, written into the store as a
    write through ``submit`` once left it: stored, but too deep for the JSON parser to read back."""
    orchestration = Orchestration(event=event(), version=1)
    doc = orchestration.model_dump_json(by_alias=True)
    deep = "[" * depth + "1" + "]" * depth
    doc = doc.replace('"detail":{', '"detail":{"deep":' + deep + ",", 1)
    database = SqliteDatabase(home / "arbiter.db")
    try:
        with database.write() as conn:
            conn.execute(
                "INSERT INTO orchestrations (id, event_id, status, version, created_at, doc) VALUES (?, ?, ?, ?, ?, ?)",
                (orchestration.id, orchestration.event.id, "running", 1, orchestration.created_at.timestamp(), doc),
            )
    finally:
        database.close()
    return orchestration.id


def test_a_record_too_deep_to_read_does_not_brick_the_home(tmp_path: Path) -> None:
    code, out, err = run_example(tmp_path)
    assert code == 0, err
    first = json.loads(out)["orchestration_id"]
    bad = plant_deep_running_orchestration(tmp_path)

    code, out, err = invoke("orchestrations", "list", "--home", str(tmp_path), "--json")
    assert code == 0, err
    assert [o["id"] for o in json.loads(out)] == [first]
    code, out, err = run_example(tmp_path)  # starts the watchdog, which sweeps the running orchestrations
    assert code == 0, err
    assert json.loads(out)["status"] == "completed"

    code, out, _ = invoke("doctor", "--home", str(tmp_path), "--json")
    assert code == 1
    (found,) = json.loads(out)
    assert (found["kind"], found["key"], found["repaired"]) == ("orchestration", [bad], False)
    assert "recursion limit" in found["reason"]

    code, out, err = invoke("doctor", "--repair", "--home", str(tmp_path))
    assert code == 0, err
    assert f"orchestration {bad}  set aside" in out
    code, out, _ = invoke("orchestrations", "list", "--home", str(tmp_path), "--json")
    repaired = {o["id"]: o for o in json.loads(out)}[bad]
    assert repaired["status"] == "failed" and "set aside by `arbiter doctor`" in repaired["error"]
    assert invoke("doctor", "--home", str(tmp_path)) == (0, "no unreadable records\n", "")

    database = SqliteDatabase(tmp_path / "arbiter.db")
    try:
        with database.read() as conn:
            kept = conn.execute("SELECT kind, key, doc FROM quarantine").fetchall()
    finally:
        database.close()
    assert [(kind, key) for kind, key, _ in kept] == [("orchestration", bad)] and '"deep":[[[' in kept[0][2]
