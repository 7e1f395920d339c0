"""Whatever crosses the strict JSON boundary is written and read back as it was, on every backend.

Hostile values (NUL, bidi controls, emoji, every non-surrogate code point, integers at the bounds, nesting at the
depth limit) go into an event's detail, a task's input and output, a note and an orchestration's output; every
read path gives them back equal. Text with a lone surrogate never reaches a store: the boundary refuses it.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from blackboard import (
    AgentRef,
    Backends,
    Orchestration,
    StrictJsonError,
    Task,
    TaskResult,
    TaskState,
    ingress_event,
    strict_json,
)
from blackboard.strict_json import MAX_DEPTH, MAX_INT, MIN_INT
from tests.hostile_json import hostile_values, nested, refused_text

_ids = itertools.count()


@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(detail=hostile_values(MAX_DEPTH - 2), value=hostile_values())
@example(detail=nested(MAX_DEPTH - 2, MAX_INT), value=nested(MAX_DEPTH, MIN_INT))
@example(detail={"big": "\u202e" * 70_000}, value={"big": "\x00\U0001f600" * 40_000})
def test_hostile_values_read_back_as_written(backends: Backends, detail: Any, value: Any) -> None:
    board = backends.blackboard
    n = next(_ids)
    event = ingress_event({"id": f"hostile-{n}", "source": "fuzz", "detail-type": "x", "detail": {"v": detail}})
    strict_json.check(value)
    created = board.create_orchestration(Orchestration(event=event)).record
    task = Task(
        orchestration_id=created.id, task_id=f"t{n}", wave=1, agent=AgentRef(name="a", version=1), input={"v": value}
    )
    assert board.add_wave(created, [task]).applied
    assert board.claim(created.id, task.task_id, 1).applied
    result = TaskResult(status=TaskState.SUCCEEDED, output=value)
    assert board.complete(created.id, task.task_id, 1, result).closes_wave
    board.put_note(created.id, "hostile", value, author="fuzz", expected_version=0)
    current = board.get_orchestration(created.id)
    assert board.update_orchestration(current, output=value).applied

    for stored in (board.get_orchestration(created.id), board.find_orchestration(event.id)):
        assert stored is not None and stored.event.detail == {"v": detail} and stored.output == value
    assert any(o.id == created.id for o in board.list_orchestrations(limit=1000))
    read = board.get_task(created.id, task.task_id)
    assert read.input == {"v": value} and read.result is not None and read.result.output == value
    assert [t.input for t in board.list_tasks(created.id)] == [{"v": value}]
    assert [n.value for n in board.notes(created.id)] == [value]


@pytest.mark.parametrize("backend_name", ["memory"], indirect=True)
@settings(max_examples=50, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=refused_text, where=st.sampled_from(["value", "key"]))
def test_lone_surrogates_never_reach_a_store(backends: Backends, text: str, where: str) -> None:
    detail = {"v": text} if where == "value" else {text: 1}
    with pytest.raises(StrictJsonError, match="lone surrogate"):
        ingress_event({"source": "fuzz", "detail-type": "x", "detail": detail})
    with pytest.raises(StrictJsonError, match="lone surrogate"):
        strict_json.check([detail])
    assert backends.blackboard.list_orchestrations() == []
