"""The Fabricator's worker on re-fabrication requests from reflection: exactly one new version, noted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from blackboard import AgentManifest, AgentOrigin, AgentState, Backends, FabricationRequest, memory_backends
from fabricator.fabricator import Fabricator
from fabricator.worker import FabricationWorker
from tests.conformance.builders import started
from wrapper import Executor
from wrapper.sandbox import SandboxPool
from wrapper.testing import ScriptedModel

GOOD = "def handler(text: str) -> dict:\n    return {'words': len(text.split())}\n"
BAD = "def handler(text: str) -> dict:\n    return {'words': 1 / 0}\n"
SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
DRAFT = {
    "structured": {
        "name": "some_other_name",
        "description": "Counts the words of a text.",
        "code": GOOD,
        "input_schema": SCHEMA,
        "output_schema": {"type": "object", "properties": {"words": {"type": "integer"}}},
        "sample_inputs": [{"text": "one two three"}],
    }
}
#: The Fabricator's own tests, written before the draft (the failure evidence's input among them).
TESTS = {
    "structured": {"tests": "assert handler(text='a b') == {'words': 2}\nassert handler(text='') == {'words': 0}\n"}
}


@pytest.fixture(scope="module")
def pool() -> Iterator[SandboxPool]:
    with SandboxPool(size=1) as sandbox:
        yield sandbox


@pytest.fixture
def backends() -> Backends:
    backends = memory_backends()
    code = backends.code_store.put(BAD.encode())
    backends.registry.put(
        AgentManifest(
            name="word_counter",
            version=1,
            description="Counts words.",
            input_schema=SCHEMA,
            code=code,
            origin=AgentOrigin.FABRICATOR,
            state=AgentState.ACTIVE,
        )
    )
    backends.registry.set_state("word_counter", 1, AgentState.ACTIVE, AgentState.QUARANTINED)
    return backends


def _request(orchestration_id: str) -> FabricationRequest:
    return FabricationRequest(
        orchestration_id=orchestration_id,
        task_id="reflection:word_counter@1",
        capability="Counts words.",
        inputs={"text": "string"},
        replaces="word_counter",
        replaces_version=1,
        evidence=[{"input": {"text": "a b"}, "error": {"type": "ZeroDivisionError", "message": "division by zero"}}],
    )


def test_a_replacement_is_the_next_version_once(backends: Backends, pool: SandboxPool) -> None:
    model = ScriptedModel([TESTS, DRAFT])
    worker = FabricationWorker(Fabricator(backends, model, pool, sample_timeout=5), Executor(backends, sandbox=pool))
    orchestration = started(backends.blackboard)
    request = _request(orchestration.id)
    assert worker.handle(request) is None  # no task of its own: nothing to complete
    v2 = backends.registry.get("word_counter", 2)
    assert (v2.state, v2.origin, v2.input_schema) == (AgentState.ACTIVE, AgentOrigin.FABRICATOR, SCHEMA)
    prompt = str(model.requests[1].messages)
    assert "keep its name" in prompt and "ZeroDivisionError" in prompt and "Names already taken" not in prompt
    note = backends.blackboard.get_note(orchestration.id, "reflection:word_counter@1")
    assert note is not None and note.value == {"replacement": "word_counter@2", "replacement_state": "active"}
    assert worker.replace(request) is None  # delivered again: v2 exists, the model is not asked again
    assert model.calls == 2 and [m.version for m in backends.registry.versions("word_counter")] == [1, 2]


def test_a_replacement_that_never_validates_is_noted(backends: Backends, pool: SandboxPool) -> None:
    bad = {
        "structured": {**DRAFT["structured"], "code": "import os\n\ndef handler(text: str) -> dict:\n    return {}\n"}
    }
    fabricator = Fabricator(backends, ScriptedModel([TESTS, bad]), pool, max_attempts=1, sample_timeout=5)
    worker = FabricationWorker(fabricator, Executor(backends, sandbox=pool))
    orchestration = started(backends.blackboard)
    assert worker.replace(_request(orchestration.id)) is None
    assert [m.version for m in backends.registry.versions("word_counter")] == [1]
    note = backends.blackboard.get_note(orchestration.id, "reflection:word_counter@1")
    assert note is not None and note.value["replacement"] is None and "no valid worker" in note.value["error"]


def test_the_completion_of_a_fabricate_task_echoes_its_token(backends: Backends, pool: SandboxPool) -> None:
    from blackboard import AgentRef, Task
    from blackboard.messages import new_completion_token

    board = backends.blackboard
    orchestration = started(board)
    task = Task(
        orchestration_id=orchestration.id,
        task_id="f1",
        wave=1,
        agent=AgentRef(name="fabricate"),
        token=new_completion_token(),
    )
    assert board.add_wave(orchestration, [task]).applied
    board.mark_dispatched([task])
    fabricator = Fabricator(backends, ScriptedModel([]), pool, max_attempts=1, sample_timeout=5)
    worker = FabricationWorker(fabricator, Executor(backends, sandbox=pool))
    request = FabricationRequest(
        orchestration_id=orchestration.id, task_id="f1", capability="Counts words.", token=task.token
    )
    completion = worker.handle(request)  # the model has nothing to say: the task fails, and still reports
    assert completion is not None and completion.token == task.token
