"""The ``arbiter`` console script: version, run (both examples), inspection commands, exit codes."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import arbiter
from arbiter.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_version() -> None:
    code, out, _ = invoke("--version")
    assert code == 0 and out.strip() == f"arbiter {arbiter.__version__}" and arbiter.__version__ != "0.0.0"


def test_help_lists_commands() -> None:
    code, out, _ = invoke("--help")
    assert code == 0
    for command in ("run", "demo", "worker", "orchestrations", "agents"):
        assert command in out


def test_unknown_command_is_a_usage_error() -> None:
    assert invoke("frobnicate")[0] == 2


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "arbiter"
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("arbiter ")


def test_run_restaurant_example(tmp_path: Path) -> None:
    example = ROOT / "examples" / "restaurant"
    code, out, err = invoke(
        "run",
        str(example / "event.json"),
        "--model",
        f"scripted:{example / 'scripted.json'}",
        "--home",
        str(tmp_path),
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["status"] == "completed" and (result["waves"], result["tasks"]) == (2, 4)
    assert result["output"] == "Table 7 is served: two burgers and two portions of fries."

    code, out, _ = invoke("orchestrations", "show", result["orchestration_id"], "--home", str(tmp_path), "--json")
    shown = json.loads(out)
    assert code == 0 and [t["agent"]["name"] for t in shown["tasks"]] == [
        "burger_cook",
        "fry_cook",
        "fry_cook",
        "front_counter",
    ]
    assert shown["tasks"][3]["result"]["output"]["announcement"] == "Order for table 7 is ready!"
    assert [n["key"] for n in shown["notes"]] == ["grill"]
    assert not any("token" in task for task in shown["tasks"])  # completion tokens are never shown

    code, out, _ = invoke("orchestrations", "list", "--home", str(tmp_path), "--json")
    assert code == 0 and [o["id"] for o in json.loads(out)] == [result["orchestration_id"]]

    code, out, _ = invoke("agents", "list", "--home", str(tmp_path), "--json")
    stats = {a["name"]: a["stats"]["invocations"] for a in json.loads(out)}
    assert stats == {"burger_cook": 1, "fry_cook": 2, "front_counter": 1}


def test_run_incident_example_fabricates_the_missing_worker(tmp_path: Path) -> None:
    example = ROOT / "examples" / "incident"
    code, out, err = invoke(
        "run",
        str(example / "event.json"),
        "--model",
        f"scripted:{example / 'scripted.json'}",
        "--fabricator-model",
        f"scripted:{example / 'fabricator.json'}",
        "--home",
        str(tmp_path),
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["status"] == "completed" and (result["waves"], result["tasks"]) == (3, 4)
    code, out, _ = invoke("orchestrations", "show", result["orchestration_id"], "--home", str(tmp_path), "--json")
    tasks = {t["agent"]["name"]: t for t in json.loads(out)["tasks"]}
    assert {name: t["state"] for name, t in tasks.items()} == {
        "fabricate": "succeeded",
        "recent_deploys": "succeeded",
        "alarm_reason_parser": "succeeded",
        "pager": "succeeded",
    }
    assert tasks["fabricate"]["result"]["output"]["agent"] == "alarm_reason_parser"
    parsed = tasks["alarm_reason_parser"]["result"]["output"]
    assert parsed["datapoints"] == [41.0, 57.0, 66.0] and parsed["above_threshold_by"] == 41.0
    code, out, _ = invoke("agents", "show", "alarm_reason_parser", "--home", str(tmp_path), "--json")
    (agent,) = json.loads(out)
    assert agent["origin"] == "fabricator" and agent["state"] == "active" and agent["report"]["passed"]
    # With an example to reproduce, the draft has no sample inputs.
    assert [c["name"] for c in agent["report"]["checks"]] == [
        "policy", "compile", "names", "schema", "output_schema", "signature", "example[0]", "edges",
    ]  # fmt: skip
    example = agent["report"]["checks"][6]
    assert example["expected"]["threshold"] == 25.0 and example["got"]["threshold"] == 25.0 and example["rule"]
    assert agent["stats"]["example_checks"] == 1 and agent["output_schema"]["type"] == "object"


def test_failed_orchestration_exits_1(tmp_path: Path) -> None:
    example = ROOT / "examples" / "restaurant"
    code, out, _ = invoke(
        "run",
        str(example / "event.json"),
        "--model",
        f"scripted:{example / 'scripted.json'}",
        "--home",
        str(tmp_path),
        "--max-waves",
        "1",
        "--json",
    )
    assert code == 1 and json.loads(out)["error"] == "budget exhausted: max_waves"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON"),
        ('{"source": "s", "detail": {}}', "detail-type"),
        ('{"source": "s", "detail-type": "d", "detail": "text"}', "detail"),
    ],
)
def test_bad_event_file_exits_2_and_writes_nothing(tmp_path: Path, content: str, expected: str) -> None:
    event = tmp_path / "event.json"
    event.write_text(content)
    code, _, err = invoke("run", str(event), "--model", "scripted:/nonexistent.json", "--home", str(tmp_path / "home"))
    assert code == 2 and expected in err
    assert not (tmp_path / "home").exists()


def test_missing_event_file_and_bad_model(tmp_path: Path) -> None:
    code, _, err = invoke("run", str(tmp_path / "missing.json"), "--home", str(tmp_path / "home"))
    assert code == 2 and "cannot read" in err
    event = tmp_path / "event.json"
    event.write_text('{"source": "s", "detail-type": "d", "detail": {}}')
    code, _, err = invoke("run", str(event), "--model", "nosuch:thing", "--home", str(tmp_path / "home"))
    assert code == 2 and "nosuch" in err


def test_agents_add_show_retire(tmp_path: Path) -> None:
    module = tmp_path / "greeter.py"
    module.write_text("def handler(name):\n    return f'hello {name}'\n")
    home = str(tmp_path / "home")
    code, out, _ = invoke("agents", "add", "greeter", "--file", str(module), "--description", "Greets.", "--home", home)
    assert code == 0 and "registered greeter@1 (sandbox)" in out
    code, out, _ = invoke("agents", "show", "greeter", "--home", home, "--json")
    assert code == 0 and json.loads(out)[0]["state"] == "active"
    code, out, _ = invoke("agents", "retire", "greeter", "--home", home)
    assert code == 0 and "retired greeter@1" in out
    assert invoke("agents", "retire", "greeter", "--home", home)[0] == 2
    assert invoke("agents", "show", "nobody", "--home", home)[0] == 2
    assert invoke("orchestrations", "show", "nope", "--home", home)[0] == 2


def test_worker_runs_queued_tasks(tmp_path: Path) -> None:
    from blackboard import AgentManifest, AgentRef, Event, Orchestration, Task, TaskMessage, local_backends

    backends = local_backends(tmp_path)
    code = backends.code_store.put(b"def handler(n):\n    return n + 1\n")
    backends.registry.put(AgentManifest(name="inc", version=1, description="Adds one.", code=code))
    orchestration = backends.blackboard.create_orchestration(
        Orchestration(event=Event.parse({"source": "s", "detail-type": "d", "detail": {}}))
    ).record
    task = Task(
        orchestration_id=orchestration.id, task_id="t1", wave=1, agent=AgentRef(name="inc", version=1), input={"n": 1}
    )
    backends.blackboard.add_wave(orchestration, [task])
    backends.queue.send(
        [TaskMessage(orchestration_id=orchestration.id, task_id="t1", attempt=1, agent=task.agent, input={"n": 1})]
    )
    code_, out, _ = invoke("worker", "--home", str(tmp_path), "--max-messages", "1", "--concurrency", "1", "--json")
    assert code_ == 0 and json.loads(out)["executed"] == 1
    stored = backends.blackboard.get_task(orchestration.id, "t1")
    backends.close()
    assert stored.state.value == "succeeded" and stored.result is not None and stored.result.output == 2


def test_agents_approve_and_rollback(tmp_path: Path) -> None:
    from blackboard import AgentManifest, AgentState, local_backends

    home = tmp_path / "home"
    backends = local_backends(home)
    code = backends.code_store.put(b"def handler(**kw):\n    return 1\n")
    for state in (AgentState.ACTIVE, AgentState.PENDING_APPROVAL):
        version = backends.registry.next_version("parser")
        backends.registry.put(
            AgentManifest(name="parser", version=version, description="Parses.", code=code, state=state)
        )
    backends.close()
    assert invoke("agents", "approve", "parser", "--home", str(home))[0] == 2  # no version given
    code_, out, _ = invoke("agents", "approve", "parser@2", "--home", str(home))
    assert code_ == 0 and "approved parser@2" in out
    code_, _, err = invoke("agents", "approve", "parser@2", "--home", str(home))
    assert code_ == 2 and "not pending approval" in err
    code_, out, _ = invoke("agents", "rollback", "parser", "--home", str(home), "--json")
    assert code_ == 0 and json.loads(out) == {"agent": "parser", "version": 1, "state": "active"}
    code_, out, _ = invoke("agents", "show", "parser", "--home", str(home), "--json")
    assert [v["state"] for v in json.loads(out)] == ["active", "retired"]
    code_, _, err = invoke("agents", "rollback", "parser", "--home", str(home))
    assert code_ == 2 and "no earlier version" in err


def test_demo_runs_again_and_reuses_what_it_fabricated(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    first = json.loads(invoke("demo", "--model", "scripted", "--home", home, "--json")[1])
    second = json.loads(invoke("demo", "--model", "scripted", "--home", home, "--json")[1])
    assert first["status"] == second["status"] == "completed"
    # The summary: what the orchestration record and the models' usage reports say.
    assert (first["waves"], first["tasks"]) == (3, 4)
    assert first["fabricated"] == [{"agent": "alarm_reason_parser", "version": 1, "reused": False, "used": 1}]
    assert first["model_calls"] == {"planner": 4, "fabricator": 1, "total": 5}
    assert first["tokens"] == 980 + 120 + 1320 + 70 + 1490 + 64 + 1580 + 40 + 2100 + 410
    assert second["fabricated"][0]["reused"] is True and second["model_calls"]["fabricator"] == 0
    assert first["orchestration_id"] != second["orchestration_id"]  # a fresh event id each time
    code, out, _ = invoke("orchestrations", "show", second["orchestration_id"], "--home", home, "--json")
    shown = json.loads(out)
    # Numbered, not random: the n-th run's prompt is the same every time (the event's id is in it).
    assert shown["orchestration"]["event"]["id"] == "c4c1c1c9-6542-e61b-6ef0-000000000002"
    assert shown["orchestration"]["budget"]["timeout_seconds"] == 1800  # minutes per draft on a CPU: more time
    fabricated = next(t for t in shown["tasks"] if t["agent"]["name"] == "fabricate")
    assert fabricated["result"]["output"]["reused"] is True
    assert fabricated["result"]["output"]["agent"] == "alarm_reason_parser"
    code, out, _ = invoke("agents", "list", "--home", home, "--json")
    assert code == 0 and sorted(a["name"] for a in json.loads(out)) == [
        "alarm_reason_parser",
        "pager",
        "recent_deploys",
    ]


def test_agents_search_ranks_with_scores(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    for name, description in (
        ("refund_order", "Refunds a paid order to the customer."),
        ("weather_forecast", "Gives the weather forecast for a city."),
    ):
        module = tmp_path / f"{name}.py"
        module.write_text("def handler(**kw):\n    return 1\n")
        assert (
            invoke("agents", "add", name, "--file", str(module), "--description", description, "--home", home)[0] == 0
        )
    for extra in ([], ["--bm25"]):
        code, out, _ = invoke(
            "agents", "search", "give the customer their money back", "--home", home, "--json", *extra
        )
        result = json.loads(out)
        assert code == 0 and result["matches"][0]["agent"] == "refund_order"
        assert result["provider"] == ("bm25" if extra else "all-minilm-l6-v2-int8+bm25")
    code, out, _ = invoke("agents", "search", "rain tomorrow in Oslo", "--home", home, "--k", "1")
    assert code == 0 and "weather_forecast@1" in out and "matcher: all-minilm-l6-v2-int8+bm25" in out


REASON_ONE = "Threshold Crossed: 1 datapoint [0.5] was greater than the threshold (0.25)."
#: What the scripted parser's description says, so that asking again finds it.
PARSE_REASON = "Parses the state reason of a CloudWatch threshold alarm: the datapoints, the threshold, how far above."


def _fabricator_script() -> str:
    """The incident's scripted Fabricator turn (the draft) as a model spec."""
    return f"scripted:{ROOT / 'examples' / 'incident' / 'fabricator.json'}"


def test_agents_fabricate_publishes_a_worker_that_passes_the_example(tmp_path: Path) -> None:
    example = {"input": {"reason": REASON_ONE}, "expected": {"datapoints": [0.5], "threshold": 0.25}}
    common = ["--input", "reason=the state reason text", "--example", json.dumps(example), "--home", str(tmp_path)]
    code, out, err = invoke("agents", "fabricate", PARSE_REASON, *common, "--model", _fabricator_script())
    assert code == 0, err
    assert out.startswith("published alarm_reason_parser@1 (active)") and "caller examples passed: 1/1" in out
    assert "example[0] ok" in out and "test[" not in out  # the Fabricator writes no tests of its own by default
    # Asked again: the agent is reused after it reproduced the example again, with no model call.
    empty = tmp_path / "none.json"
    empty.write_text('{"turns": [{"text": "no call expected"}]}')
    code, out, err = invoke("agents", "fabricate", PARSE_REASON, *common, "--model", f"scripted:{empty}", "--json")
    assert code == 0, err
    reused = json.loads(out)
    assert reused["reused"] is True and reused["examples_passed"] == 1 and reused["agent"] == "alarm_reason_parser"


def test_agents_fabricate_refuses_what_cannot_be_met_or_does_not_fit(tmp_path: Path) -> None:
    impossible = {"input": {"reason": REASON_ONE}, "expected": {"threshold": 99}}
    (draft,) = json.loads((ROOT / "examples" / "incident" / "fabricator.json").read_text())["turns"]
    three_drafts = tmp_path / "three.json"
    three_drafts.write_text(json.dumps({"turns": [draft, draft, draft]}))
    code, _, err = invoke(
        "agents",
        "fabricate",
        "Read a CloudWatch alarm reason.",
        "--input",
        "reason=the state reason text",
        "--example",
        json.dumps(impossible),
        "--home",
        str(tmp_path),
        "--model",
        f"scripted:{three_drafts}",
    )
    assert (
        code == 1
        and "no valid worker after 3 attempt(s)" in err
        and "example[0]" in err
        and "expected 99, got 0.25" in err
    )
    assert "alarm_reason_parser" not in invoke("agents", "list", "--home", str(tmp_path))[1]
    misfit = {"input": {"text": REASON_ONE}, "expected": 1}
    code, _, err = invoke(
        "agents", "fabricate", "Read it.", "--input", "reason=the text", "--example", json.dumps(misfit),
        "--home", str(tmp_path), "--model", _fabricator_script(),
    )  # fmt: skip
    assert code == 2 and "examples[0].input has the field 'text'" in err
    assert invoke("agents", "fabricate", "x", "--example", "{nope", "--home", str(tmp_path))[0] == 2


def test_run_draws_the_live_view_from_the_orchestrations_updates(tmp_path: Path) -> None:
    example = ROOT / "examples" / "incident"
    code, _, err = invoke(
        "run",
        str(example / "event.json"),
        "--model",
        f"scripted:{example / 'scripted.json'}",
        "--fabricator-model",
        f"scripted:{example / 'fabricator.json'}",
        "--home",
        str(tmp_path),
    )
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("wave ")]
    # The planned wave, every state change after it (each line a change), and the end: no sampling by a poll.
    assert lines[0] == "wave 1 | tasks: 2 pending | fabrications 1 | tokens 1100"
    assert lines[-1] == "wave 3 | tasks: 4 succeeded | fabrications 1 | tokens 6554"
    assert "wave 2 | tasks: 1 pending, 2 succeeded | fabrications 1 | tokens 5000" in lines
    assert all(a != b for a, b in itertools.pairwise(lines))
    assert err.splitlines()[-1] == "completed after 3 wave(s), 4 task(s), 8174 tokens"
