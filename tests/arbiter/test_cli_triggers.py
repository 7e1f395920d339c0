"""``arbiter agents add --trigger``, the triggers in ``agents show``, and ``agents test-trigger``."""

from __future__ import annotations

import json
from pathlib import Path

from tests.arbiter.test_cli import invoke

TRIGGER = json.dumps({"pattern": {"note": {"key": [{"prefix": "alarm:"}]}}, "input": {"host": "$.note.value.host"}})


def add(tmp_path: Path, *triggers: str) -> tuple[int, str, str]:
    module = tmp_path / "enrich.py"
    module.write_text("def handler(host):\n    return {'host': host, 'owner': 'team-a'}\n")
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"host": {"type": "string"}}, "required": ["host"]}))
    options = [arg for t in triggers for arg in ("--trigger", t)]
    return invoke(
        "agents", "add", "enrich", "--file", str(module), "--description", "Adds the owner.", "--schema", str(schema),
        *options, "--home", str(tmp_path / "home"),
    )  # fmt: skip


def test_add_with_a_trigger_and_show_it(tmp_path: Path) -> None:
    code, out, _ = add(tmp_path, TRIGGER)
    assert code == 0 and "registered enrich@1" in out
    code, out, _ = invoke("agents", "show", "enrich", "--home", str(tmp_path / "home"))
    assert code == 0
    assert '  trigger 0 (note): {"note": {"key": [{"prefix": "alarm:"}]}} input {"host": "$.note.value.host"}' in out
    code, out, _ = invoke("agents", "show", "enrich", "--home", str(tmp_path / "home"), "--json")
    assert json.loads(out)[0]["triggers"] == [json.loads(TRIGGER)]


def test_add_refuses_a_bad_trigger_naming_the_field(tmp_path: Path) -> None:
    code, _, err = add(tmp_path, json.dumps({"note": {"key": [{"prefx": "alarm:"}]}}))
    assert code == 2 and "triggers[0].pattern: note.key: unknown operator 'prefx'" in err
    code, _, err = add(tmp_path, json.dumps({"note": {"key": ["alarm:db1"]}}))  # a bare pattern gives no host
    assert code == 2 and "triggers[0].input: gives no value for the required input 'host'" in err
    code, _, err = add(tmp_path, json.dumps({"source": ["arbiter.wrapper"]}))
    assert code == 2 and "triggers[0].pattern.source" in err and "reserved" in err
    code, _, err = add(tmp_path, "{not json")
    assert code == 2 and "--trigger #1 is not JSON" in err
    assert invoke("agents", "show", "enrich", "--home", str(tmp_path / "home"))[0] == 2  # nothing was registered


def test_test_trigger_says_whether_and_how_it_would_fire(tmp_path: Path) -> None:
    assert add(tmp_path, TRIGGER)[0] == 0
    home = str(tmp_path / "home")
    note = json.dumps({"key": "alarm:db1", "value": {"host": "db1"}})
    code, out, _ = invoke("agents", "test-trigger", "enrich", note, "--home", home)
    assert code == 0 and out.strip() == 'trigger 0: fires: enrich@1 gets {"host": "db1"}'
    code, out, _ = invoke("agents", "test-trigger", "enrich", json.dumps({"key": "metric:cpu"}), "--home", home)
    assert code == 1 and "does not fire: the pattern does not match" in out
    broken = json.dumps({"key": "alarm:db1", "value": {"host": 7}})
    code, out, _ = invoke("agents", "test-trigger", "enrich", broken, "--home", home, "--json")
    (outcome,) = json.loads(out)["triggers"]
    assert code == 1 and outcome["matched"] and "7 is not of type 'string'" in outcome["why"]
    event = json.dumps({"source": "shop.orders", "detail-type": "x", "detail": {}})
    code, out, _ = invoke("agents", "test-trigger", "enrich", event, "--home", home)
    assert code == 1 and "a note trigger; this is a bus" in out
    assert invoke("agents", "test-trigger", "enrich", "[1]", "--home", home)[0] == 2
    assert invoke("agents", "test-trigger", "nobody", note, "--home", home)[0] == 2


def test_orchestrations_show_marks_reactive_tasks(tmp_path: Path) -> None:
    from arbiter import LocalRuntime
    from arbiter.testing import ScriptedModel

    home = tmp_path / "home"
    module = tmp_path / "alarm.py"
    module.write_text("from wrapper import sdk\n\ndef handler(host):\n    sdk.note('alarm:' + host, {'host': host})\n")
    turns = [{"tool_calls": [{"name": "alarm", "input": {"host": "db1"}}]}, {"text": "done"}]
    assert add(tmp_path, TRIGGER)[0] == 0
    with LocalRuntime(home, model=ScriptedModel(turns)) as runtime:
        runtime.register_agent("alarm", "Raises an alarm.", module, input_schema={"type": "object"})
        result = runtime.run({"source": "t", "detail-type": "x", "detail": {}}, timeout=120)
    assert result.ok, result.error
    code, out, _ = invoke("orchestrations", "show", result.orchestration_id, "--home", str(home))
    assert code == 0
    (line,) = [line for line in out.splitlines() if line.startswith("  wave") and "enrich@1" in line]
    assert "succeeded" in line and line.endswith("reacts to note 'alarm:db1' v1")


def test_run_takes_triggers_from_agents_json_and_a_trigger_depth_budget(tmp_path: Path) -> None:
    import shutil

    from tests.arbiter.test_cli import ROOT

    example = tmp_path / "restaurant"
    shutil.copytree(ROOT / "examples" / "restaurant", example)
    (example / "grill_check.py").write_text("def handler(table):\n    return {'table': table, 'grill': 'clean'}\n")
    spec = json.loads((example / "agents.json").read_text())
    spec["agents"].append(
        {
            "name": "grill_check",
            "description": "Checks the grill after burgers were grilled.",
            "module": "grill_check.py",
            "input_schema": {"type": "object", "properties": {"table": {"type": "integer"}}, "required": ["table"]},
            "triggers": [{"pattern": {"note": {"key": ["grill"]}}, "input": {"table": "$.note.value.last_table"}}],
        }
    )
    (example / "agents.json").write_text(json.dumps(spec))
    tasks = []
    for depth in ([], ["--max-trigger-depth", "0"]):
        code, out, _ = invoke(
            "run", str(example / "event.json"), "--model", f"scripted:{example / 'scripted.json'}",
            "--home", str(tmp_path / f"home{len(depth)}"), "--json", *depth,
        )  # fmt: skip
        assert code == 0, out
        tasks.append(json.loads(out)["tasks"])
    assert tasks == [5, 4]  # the grill note fired grill_check, unless the budget allows no reaction


def test_a_bus_trigger_is_registered_shown_and_tested_with_an_event(tmp_path: Path) -> None:
    bus = json.dumps(
        {
            "pattern": {"source": ["arbiter.fabricator"], "detail-type": ["agent.published"]},
            "input": {"host": "$.detail.name"},
        }
    )
    assert add(tmp_path, bus)[0] == 0
    home = str(tmp_path / "home")
    code, out, _ = invoke("agents", "show", "enrich", "--home", home)
    assert code == 0 and '  trigger 0 (bus): {"source": ["arbiter.fabricator"]' in out
    event = json.dumps({"source": "arbiter.fabricator", "detail-type": "agent.published", "detail": {"name": "x"}})
    code, out, _ = invoke("agents", "test-trigger", "enrich", event, "--home", home)
    assert code == 0 and out.strip() == 'trigger 0: fires: enrich@1 gets {"host": "x"}'
    code, out, _ = invoke("agents", "test-trigger", "enrich", json.dumps({"key": "alarm:db1"}), "--home", home)
    assert code == 1 and "a bus trigger; this is a note" in out
