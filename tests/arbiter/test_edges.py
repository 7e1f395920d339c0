"""The edges of the runtime: every event entry refuses hostile input cleanly, and nothing it accepts bricks a home."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from arbiter import LocalRuntime
from arbiter.cli import app
from arbiter.config import Deployment
from arbiter.testing import ScriptedModel
from bench._fuzz_cases import case
from blackboard import RecordValidationError, ReservedSourceError, StrictJsonError
from wrapper import SandboxPool

from .conftest import FAST, RuntimeFactory, event

runner = CliRunner()

_ENVELOPE = b'{"source":"s","detail-type":"d","detail":'
HOSTILE_FILES = [
    pytest.param(b'{"source": "s", "detail-type": "d", "detail": {"t": "caf\xe9"}}', "not UTF-8",
                 "at line 1, byte 57 (offset 56)", id="utf8"),
    pytest.param(_ENVELOPE + b'{"n":' + b"9" * 5000 + b"}}", "5000 digits", "$.detail.n", id="int"),
    pytest.param(_ENVELOPE + b"[" * 300 + b"]" * 300 + b"}", "deeper than 64", "$.detail", id="deep"),
    pytest.param(_ENVELOPE + b"[" * 9000 + b"]" * 9000 + b"}", "deeper than 64", "line 1", id="deeper"),
    pytest.param(_ENVELOPE + b'{"t":"\\ud800"}}', "lone surrogate", "$.detail.t", id="surrogate"),
    pytest.param(_ENVELOPE + b'{"v":NaN}}', "no NaN", "$.detail.v", id="nan"),
    pytest.param(_ENVELOPE + b'{},"source":"t"}', "key 'source' more than once", "$", id="dup"),
    pytest.param(b'{"source":"arbiter","detail-type":"d","detail":{}}', "reserved", "source", id="reserved"),
    pytest.param(_ENVELOPE + b'{"p":"' + b"x" * 262_144 + b'"}}', "limit is 262,144", "", id="size"),
    pytest.param(b'{"source":"s","detail-type":" ","detail":{}}', "blank", "detail-type", id="blank"),
]  # fmt: skip


@pytest.mark.parametrize(("content", "reason", "position"), HOSTILE_FILES)
def test_run_refuses_hostile_events_with_exit_2_and_writes_nothing(
    tmp_path: Path, content: bytes, reason: str, position: str
) -> None:
    path = tmp_path / "event.json"
    path.write_bytes(content)
    result = runner.invoke(
        app, ["run", str(path), "--model", "scripted:/nonexistent.json", "--home", str(tmp_path / "h")]
    )
    assert result.exit_code == 2, result.stderr
    assert reason in result.stderr and position in result.stderr and str(path) in result.stderr
    assert not (tmp_path / "h").exists()


def test_a_lone_surrogate_leaves_no_home_even_with_a_working_model(tmp_path: Path) -> None:
    (tmp_path / "event.json").write_bytes(b'{"source":"s","detail-type":"d","detail":{"t":"\\udce9"}}')
    (tmp_path / "model.json").write_text(json.dumps({"turns": [{"text": "done"}]}))
    args = ["run", str(tmp_path / "event.json"), "--model", f"scripted:{tmp_path / 'model.json'}"]
    result = runner.invoke(app, [*args, "--home", str(tmp_path / "h")])
    assert result.exit_code == 2 and "lone surrogate" in result.stderr
    assert not (tmp_path / "h").exists()


@pytest.mark.parametrize(
    "document",
    [
        {"Source": "acme.orders", "DetailType": "Order Placed", "Detail": json.dumps({"order": 7})},
        {"source": "acme.orders", "detail-type": "Order Placed", "detail": json.dumps({"order": 7})},
    ],
    ids=["put-events-entry", "string-detail"],
)
def test_run_takes_the_aws_shapes(tmp_path: Path, document: dict[str, Any]) -> None:
    (tmp_path / "event.json").write_text(json.dumps(document))
    (tmp_path / "model.json").write_text(json.dumps({"turns": [{"text": "done"}]}))
    args = ["run", str(tmp_path / "event.json"), "--model", f"scripted:{tmp_path / 'model.json'}", "--json"]
    result = runner.invoke(app, [*args, "--home", str(tmp_path / "h")])
    assert result.exit_code == 0, result.stderr
    orchestration_id = json.loads(result.stdout)["orchestration_id"]
    shown = runner.invoke(app, ["orchestrations", "show", orchestration_id, "--home", str(tmp_path / "h"), "--json"])
    assert shown.exit_code == 0, shown.stderr
    assert '"order": 7' in shown.stdout and "acme.orders" in shown.stdout


def test_submit_raises_typed_errors_and_writes_nothing(runtime: RuntimeFactory) -> None:
    rt = runtime([{"text": "done"}])
    hostile: list[tuple[Any, type[Exception], str]] = [
        (event(v=float("nan")), StrictJsonError, "nan at $.detail.v"),
        (event(v=json.loads("[" * 70 + "]" * 70)), StrictJsonError, "nests deeper than 64"),
        (event(v=2**64), StrictJsonError, "outside the range"),
        (event(t="\ud800"), StrictJsonError, "lone surrogate"),
        ('{"source": "a", "detail-type": "b", "detail": {}, "source": "arbiter"}', StrictJsonError, "more than once"),
        ({**event(), "source": "arbiter.wrapper"}, ReservedSourceError, "reserved"),
        (event(pad="x" * 262_144), StrictJsonError, "limit is 262,144"),
    ]
    for data, error, words in hostile:
        with pytest.raises(error) as caught:
            rt.submit(data)
        assert words in str(caught.value) and isinstance(caught.value, RecordValidationError)
    assert rt.backends.blackboard.list_orchestrations() == []
    assert rt.run(event(), timeout=30).output == "done"


def test_submit_takes_an_entry_and_json_text(runtime: RuntimeFactory) -> None:
    rt = runtime([{"text": "one"}, {"text": "two"}])
    first = rt.submit({"Source": "acme", "DetailType": "x", "Detail": '{"a": [1, 2]}'})
    second = rt.submit(b'{"source": "acme", "detail-type": "y", "detail": "{\\"b\\": null}"}')
    assert rt.orchestration(first).orchestration.event.detail == {"a": [1, 2]}
    assert rt.orchestration(second).orchestration.event.detail == {"b": None}


def test_a_replay_with_other_content_is_deduplicated_and_counted(
    runtime: RuntimeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    rt = runtime([{"text": "done"}])
    first = rt.submit({**event(n=1), "id": "evt-1"})
    assert rt.submit({**event(n=1), "id": "evt-1"}) == first
    assert rt.backends.blackboard.event_conflicts == 0
    with caplog.at_level(logging.WARNING, logger="blackboard.ports.blackboard"):
        assert rt.submit({**event(n=2), "id": "evt-1"}) == first
    assert rt.backends.blackboard.event_conflicts == 1
    assert "event_id=<evt-1>" in caplog.text and "conflict" in caplog.text
    assert rt.orchestration(first).orchestration.event.detail == {"n": 1}


def deep_output(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return value


def test_worker_outputs_out_of_bounds_fail_the_task_and_the_home_stays_readable(
    tmp_path: Path, pool: SandboxPool
) -> None:
    outputs = {"deep": deep_output(200), "huge": {"n": 10**30}, "fine": deep_output(60)}

    def produce(kind: str) -> Any:
        return outputs[kind]

    calls = [{"name": "produce", "input": {"kind": kind}} for kind in outputs]
    model = ScriptedModel([{"tool_calls": calls}, {"text": "done"}])
    with LocalRuntime(
        tmp_path / "home", model=model, settings=FAST, deployment=Deployment(sandbox=pool, sweep_interval=0.1)
    ) as rt:
        rt.register_agent("produce", "Produces an output of a kind.", produce, trusted=True, max_attempts=1)
        result = rt.run(event(), timeout=60)
        tasks = {t.input["kind"]: t for t in rt.orchestration(result.orchestration_id).tasks}
    assert result.status == "completed"
    for kind in ("deep", "huge"):
        error = tasks[kind].result.error if tasks[kind].result else None
        assert error is not None and error.type == "OutputNotSerializable" and not error.retryable, kind
    assert "nests deeper than 64" in str(tasks["deep"].result and tasks["deep"].result.error)
    assert tasks["fine"].result is not None and tasks["fine"].result.output == outputs["fine"]
    listed = runner.invoke(app, ["orchestrations", "list", "--home", str(tmp_path / "home"), "--json"])
    assert listed.exit_code == 0, listed.stderr


# ---------------------------------------------------------------- fuzz (seeded; 0 crashes allowed)


@pytest.fixture(scope="module")
def fuzz_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    home = tmp_path_factory.mktemp("fuzz") / "home"
    with LocalRuntime(
        home, model=ScriptedModel([{"text": "ok"}] * 400), deployment=Deployment(workers=1, sweep_interval=0.2)
    ) as rt:
        yield rt


@settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(rng=st.randoms(use_true_random=False))
def test_fuzz_the_cli_parser_never_crashes(tmp_path_factory: pytest.TempPathFactory, rng: random.Random) -> None:
    kind, document = case(rng)
    work = tmp_path_factory.mktemp("cli")
    (work / "event.json").write_bytes(document)
    args = ["run", str(work / "event.json"), "--model", f"scripted:{work / 'missing.json'}", "--home", str(work / "h")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (kind, document[:200], result.stderr, result.exception)
    assert not (work / "h").exists()


@settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(rng=st.randoms(use_true_random=False))
def test_fuzz_submit_never_crashes_and_what_it_takes_reads_back(fuzz_runtime: LocalRuntime, rng: random.Random) -> None:
    kind, document = case(rng)
    board = fuzz_runtime.backends.blackboard
    for data in _as_given(document):
        before = [o.id for o in board.list_orchestrations(limit=1)]  # the newest (still being planned, maybe)
        try:
            orchestration_id = fuzz_runtime.submit(data)
        except RecordValidationError:
            assert [o.id for o in board.list_orchestrations(limit=1)] == before, kind  # a refusal adds none
            continue
        assert fuzz_runtime.orchestration(orchestration_id).orchestration.event.source, kind


def _as_given(document: bytes) -> list[Any]:
    """The document as bytes, and as the mapping a Python caller would pass (when Python's json reads it)."""
    given: list[Any] = [document]
    try:
        given.append(json.loads(document))
    except (ValueError, RecursionError):
        pass
    return given
