"""The coordinator on its own (memory backends, no runtime): behaviour that does not need workers."""

from __future__ import annotations

from typing import Any

import pytest

from arbiter import Coordinator, Planner
from arbiter.prompts import SYSTEM_PROMPT
from arbiter.testing import ScriptedModel
from blackboard import Event, TaskState, memory_backends


def test_fabricate_without_a_fabricator_fails_that_task_clearly() -> None:
    backends = memory_backends()
    script = [{"tool_calls": [{"name": "fabricate", "input": {"capability": "juggle"}}]}, {"text": "cannot juggle"}]
    coordinator = Coordinator(backends, Planner(ScriptedModel(script), SYSTEM_PROMPT))
    orchestration = coordinator.start(Event.parse({"source": "s", "detail-type": "d", "detail": {}}))
    (task,) = backends.blackboard.list_tasks(orchestration.id)
    assert task.state is TaskState.FAILED and task.result is not None and task.result.error is not None
    assert task.result.error.type == "FabricatorUnavailable"
    finished = backends.blackboard.get_orchestration(orchestration.id)
    assert finished.status.value == "completed" and finished.output == "cannot juggle"


def test_matcher_offers_only_the_top_k_and_calls_beyond_them_still_work() -> None:
    from blackboard import AgentManifest
    from wrapper.matching import Matcher

    backends = memory_backends()
    code = backends.code_store.put(b"def handler(**kw):\n    return 1\n")
    for i in range(20):
        name = f"agent_{i:02d}"
        topic = "refund an order to the customer" if i == 7 else f"handle order topic number {i} of the catalog"
        backends.registry.put(AgentManifest(name=name, version=1, description=f"Agents {i}: {topic}.", code=code))
    model = ScriptedModel([{"tool_calls": [{"name": "agent_13", "input": {}}]}, {"text": "done"}])
    coordinator = Coordinator(backends, Planner(model, SYSTEM_PROMPT), matcher=Matcher(backends.registry), top_k=3)
    event = Event.parse({"source": "shop", "detail-type": "Refund-Requested", "detail": {"refund": "order 9"}})
    orchestration = coordinator.start(event)
    offered = model.requests[0].tool_names
    assert len(offered) == 4 and offered[-1] == "fabricate" and offered[0] == "agent_07"
    # agent_13 was not offered, but it exists and is active: the call is valid (it is dispatched, not refused).
    (task,) = backends.blackboard.list_tasks(orchestration.id)
    assert task.agent.name == "agent_13" and task.state is TaskState.DISPATCHED


ALARM = {"source": "aws.cloudwatch", "detail-type": "Alarm", "detail": {"alarmName": "cpu"}}
#: A conversation in which the planner called ``fabricate`` and got ``cpu_reader``.
FABRICATED = [
    {"role": "user", "content": [{"text": "event"}]},
    {"role": "assistant", "content": [{"toolUse": {"toolUseId": "f1", "name": "fabricate", "input": {}}}]},
    {
        "role": "user",
        "content": [
            {"toolResult": {"toolUseId": "f1", "status": "success", "content": [{"text": '{"agent": "cpu_reader"}'}]}}
        ],
    },
]


def test_fabricated_agents_are_found_in_the_conversation() -> None:
    from arbiter._tool_calls import fabricated_names, query_text
    from blackboard import Orchestration

    event = Event.parse(ALARM)
    orchestration = Orchestration(event=event, conversation=FABRICATED, wave=1)
    assert fabricated_names(orchestration) == ["cpu_reader"]
    text = query_text(orchestration)
    assert "alarmName" in text and "cpu_reader" in text


def test_an_unused_fabricated_worker_is_reminded_once() -> None:
    from arbiter._tool_calls import unused_fabrications
    from arbiter.prompts import unused_reminder
    from blackboard import Orchestration

    event = Event.parse(ALARM)
    fabricated = FABRICATED
    answered = [*fabricated, {"role": "assistant", "content": [{"text": "done"}]}]
    assert unused_fabrications(Orchestration(event=event, conversation=answered, wave=1)) == ["cpu_reader"]
    reminded = [*answered, unused_reminder(["cpu_reader"]), {"role": "assistant", "content": [{"text": "done"}]}]
    assert unused_fabrications(Orchestration(event=event, conversation=reminded, wave=1)) == []  # never twice
    called = [
        *fabricated,
        {"role": "assistant", "content": [{"toolUse": {"toolUseId": "c1", "name": "cpu_reader", "input": {}}}]},
    ]
    assert unused_fabrications(Orchestration(event=event, conversation=called, wave=2)) == []


def test_a_small_registry_is_offered_whole() -> None:
    from blackboard import AgentManifest
    from wrapper.matching import Matcher

    backends = memory_backends()
    code = backends.code_store.put(b"def handler(**kw):\n    return 1\n")
    for name in ("alpha", "beta"):
        backends.registry.put(AgentManifest(name=name, version=1, description=f"{name} does {name} things.", code=code))
    model = ScriptedModel([{"text": "nothing to do"}])
    Coordinator(backends, Planner(model, SYSTEM_PROMPT), matcher=Matcher(backends.registry), top_k=8).start(
        Event.parse({"source": "s", "detail-type": "unrelated words", "detail": {}})
    )
    assert model.requests[0].tool_names == ["alpha", "beta", "fabricate"]


def test_a_capability_that_failed_or_the_tool_description_is_refused_without_a_fabrication() -> None:
    from arbiter.prompts import FABRICATE_TOOL
    from blackboard import FabricationRequest, TaskError, TaskResult
    from blackboard.records import utcnow

    backends = memory_backends()
    asked: list[FabricationRequest] = []
    capability = "Read the numbers in an alarm reason."
    script = [
        {"tool_calls": [{"name": "fabricate", "input": {"capability": capability, "inputs": {"reason": "text"}}}]},
        {
            "tool_calls": [
                {"name": "fabricate", "input": {"capability": "  read the numbers in an ALARM reason ", "inputs": {}}},
                {"name": "fabricate", "input": {"capability": FABRICATE_TOOL["description"], "inputs": {}}},
            ]
        },
        {"text": "answered without it"},
    ]
    coordinator = Coordinator(backends, Planner(ScriptedModel(script), SYSTEM_PROMPT), fabricate=asked.append)
    orchestration = coordinator.start(Event.parse(ALARM))
    (request,) = asked
    error = TaskError(type="FabricationFailed", message="no worker could be written", retryable=False)
    failed = TaskResult(status=TaskState.FAILED, error=error, attempt=1, finished_at=utcnow())
    assert backends.blackboard.complete(orchestration.id, request.task_id, 1, failed).closes_wave
    coordinator.continue_orchestration(orchestration.id)

    assert len(asked) == 1  # neither call of the second wave reached the Fabricator
    second = [t for t in backends.blackboard.list_tasks(orchestration.id) if t.wave == 2]
    errors = [t.result.error for t in second if t.result is not None]
    assert [e.type for e in errors if e is not None] == ["InvalidToolInput", "InvalidToolInput"]
    messages = sorted(e.message for e in errors if e is not None)
    assert "description of the fabricate tool" in messages[0] and "could not be written earlier" in messages[1]
    finished = backends.blackboard.get_orchestration(orchestration.id)
    assert finished.status.value == "completed" and finished.output == "answered without it"


#: An alarm's envelope with a fixed id and time: the prompt shows both, and a number in a random id or in the clock
#: (03:15, say) would count as observed where these tests need it to be the planner's own.
_ALARM_ENVELOPE = {"source": "aws.cloudwatch", "detail-type": "Alarm", "id": "alarm-a", "time": "2026-01-01T00:00:00Z"}


def test_expected_values_the_planner_worked_out_are_not_checked() -> None:
    from blackboard import FabricationRequest

    backends = memory_backends()
    asked: list[FabricationRequest] = []
    reason = "3 datapoints [41.0, 57.0, 66.0] were greater than the threshold (25.0)."
    observed = {"input": {"reason": reason}, "expected": {"datapoints": [41.0, 57.0, 66.0], "threshold": 25.0}}
    examples = [
        # 66 - 25 is 41, not 15: a planner's arithmetic is its own guess, not something it read.
        {**observed, "expected": {**observed["expected"], "above_threshold_by": 15.0}},
        {"input": {"reason": reason}, "expected": {"count": 7}},  # nothing left: dropped
        {"input": {"reason": reason}, "expected": 25},  # a whole value, read from the event
    ]
    call = {"capability": "Read the numbers of an alarm reason.", "inputs": {"reason": "text"}, "examples": examples}
    script = [{"tool_calls": [{"name": "fabricate", "input": call}]}]
    alarm = {**_ALARM_ENVELOPE, "detail": {"state": {"reason": reason}}}
    coordinator = Coordinator(backends, Planner(ScriptedModel(script), SYSTEM_PROMPT), fabricate=asked.append)
    orchestration = coordinator.start(Event.parse(alarm))
    (request,) = asked
    assert [(e.input, e.expected) for e in request.examples] == [
        ({"reason": reason}, {"datapoints": [41.0, 57.0, 66.0], "threshold": 25.0}),
        ({"reason": reason}, 25),
    ]
    (task,) = backends.blackboard.list_tasks(orchestration.id)
    assert len(task.input["examples"]) == 2  # the task shows the examples that are checked
    assert "above_threshold_by" in str(backends.blackboard.get_orchestration(orchestration.id).conversation)


def test_an_example_whose_input_was_not_read_from_the_event_is_refused_naming_the_field() -> None:
    from blackboard import FabricationRequest

    backends = memory_backends()
    asked: list[FabricationRequest] = []
    reason = "3 datapoints [41.0, 57.0, 66.0] were greater than the threshold (25.0)."
    # The runbook describes the input; a small model copies the description where the value belongs.
    runbook = f'{SYSTEM_PROMPT}\nCall `fabricate` with `inputs` {{"reason": "the state reason text"}}.'
    expected = {"datapoints": [41.0, 57.0, 66.0]}
    placeholder = {"input": {"reason": "the state reason text"}, "expected": expected}
    call = {"capability": "Read the numbers of an alarm reason.", "inputs": {"reason": "the state reason text"}}
    script = [
        {"tool_calls": [{"name": "fabricate", "input": {**call, "examples": [placeholder]}}]},
        {
            "tool_calls": [
                {"name": "fabricate", "input": {**call, "examples": [{**placeholder, "input": {"reason": reason}}]}}
            ]
        },
    ]
    alarm = {**_ALARM_ENVELOPE, "detail": {"state": {"reason": reason}}}
    coordinator = Coordinator(backends, Planner(ScriptedModel(script), runbook), fabricate=asked.append)
    orchestration = coordinator.start(Event.parse(alarm))
    refused, again = sorted(backends.blackboard.list_tasks(orchestration.id), key=lambda t: t.wave)
    assert (
        refused.agent.name == again.agent.name == "fabricate"
        and refused.result is not None
        and refused.result.error is not None
    )
    assert refused.result.error.type == "InvalidToolInput"
    assert (
        'example[0].input.reason: "the state reason text" occurs neither in the event' in refused.result.error.message
    )
    (request,) = asked  # only the second call reached the Fabricator: its input is copied from the event
    assert request.task_id == again.task_id
    assert [(e.input, e.expected) for e in request.examples] == [({"reason": reason}, expected)]


def test_a_worker_call_with_a_phrase_of_the_instructions_where_a_value_belongs_is_refused() -> None:
    from blackboard import AgentManifest

    backends = memory_backends()
    code = backends.code_store.put(b"def handler(**kw):\n    return 1\n")
    backends.registry.put(AgentManifest(name="reason_reader", version=1, description="Reads a reason.", code=code))
    reason = "3 datapoints [41.0, 57.0, 66.0] were greater than the threshold (25.0)."
    runbook = (
        f"{SYSTEM_PROMPT}\nCall `reason_reader` with `reason` set to this alarm's reason text, severity `high`, "
        'and `note` "Checkout is down, see the board".'
    )
    calls = [
        {"reason": "this alarm's reason text"},  # the description, copied: refused
        {"reason": reason},  # the value, from the event
        {"reason": reason, "severity": "high", "note": "Checkout is down, see the board"},  # values it dictates
        {"reason": reason, "summary": "the threshold was crossed three times"},  # the model's own words
    ]
    script = [{"tool_calls": [{"name": "reason_reader", "input": call} for call in calls]}]
    alarm = {**_ALARM_ENVELOPE, "detail": {"state": {"reason": reason}}}
    orchestration = Coordinator(backends, Planner(ScriptedModel(script), runbook)).start(Event.parse(alarm))
    tasks = sorted(backends.blackboard.list_tasks(orchestration.id), key=lambda t: t.task_id)
    errors = [t.result.error if t.result is not None else None for t in tasks]
    assert [e.type if e else None for e in errors] == ["InvalidToolInput", None, None, None]
    assert errors[0] is not None and errors[0].message.startswith(
        '`reason`: "this alarm\'s reason text" is a phrase of your instructions, not a value'
    )


def test_a_capability_that_already_gave_a_worker_is_refused_with_its_name() -> None:
    from blackboard import FabricationRequest, TaskResult
    from blackboard.records import utcnow

    backends = memory_backends()
    asked: list[FabricationRequest] = []
    capability = 'Read the "datapoints" of an alarm reason.'
    script = [
        {"tool_calls": [{"name": "fabricate", "input": {"capability": capability, "inputs": {"reason": "text"}}}]},
        {"tool_calls": [{"name": "fabricate", "input": {"capability": "read the 'datapoints' of an alarm reason"}}]},
        {"text": "done"},
    ]
    coordinator = Coordinator(backends, Planner(ScriptedModel(script), SYSTEM_PROMPT), fabricate=asked.append)
    orchestration = coordinator.start(Event.parse(ALARM))
    (request,) = asked
    made = TaskResult(
        status=TaskState.SUCCEEDED,
        output={"agent": "reason_reader", "state": "active"},
        attempt=1,
        finished_at=utcnow(),
    )
    assert backends.blackboard.complete(orchestration.id, request.task_id, 1, made).closes_wave
    coordinator.continue_orchestration(orchestration.id)
    assert len(asked) == 1
    (again,) = [t for t in backends.blackboard.list_tasks(orchestration.id) if t.wave == 2]
    assert again.result is not None and again.result.error is not None
    assert "`reason_reader` was made for this capability" in again.result.error.message


class _CountingReads:
    """Counts the registry listings and orchestration reads the coordinator makes (each a call or two on AWS)."""

    def __init__(self, backends: object, monkeypatch: object) -> None:
        self.listings = 0
        self.orchestration_reads = 0
        registry, board = backends.registry, backends.blackboard  # type: ignore[attr-defined]
        listing, reading = registry.active_agents, board.get_orchestration

        def counted_listing() -> object:
            self.listings += 1
            return listing()

        def counted_read(orchestration_id: str) -> object:
            self.orchestration_reads += 1
            return reading(orchestration_id)

        monkeypatch.setattr(registry, "active_agents", counted_listing)  # type: ignore[attr-defined]
        monkeypatch.setattr(board, "get_orchestration", counted_read)  # type: ignore[attr-defined]


def test_a_planning_turn_reads_the_registry_once_and_does_not_reread_to_release_its_lease(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from blackboard import AgentManifest
    from wrapper.matching import Matcher

    backends = memory_backends()
    code = backends.code_store.put(b"def handler(**kw):\n    return 1\n")
    for name in ("alpha", "beta"):
        backends.registry.put(AgentManifest(name=name, version=1, description=f"{name} does {name} things.", code=code))
    model = ScriptedModel([{"tool_calls": [{"name": "alpha", "input": {}}]}])
    coordinator = Coordinator(backends, Planner(model, SYSTEM_PROMPT), matcher=Matcher(backends.registry), top_k=8)
    reads = _CountingReads(backends, monkeypatch)
    orchestration = coordinator.start(Event.parse({"source": "s", "detail-type": "d", "detail": {}}))
    assert model.requests[0].tool_names == ["alpha", "beta", "fabricate"]
    # The matcher's refresh lists the registry; the small registry is then offered from its index, not listed again.
    assert reads.listings == 1
    # The start's read of the new orchestration only: none after the model call (the wave is stored on the version
    # the lease wrote, conditionally), none to release a lease that the wave's own write cleared.
    assert reads.orchestration_reads == 1
    stored = backends.blackboard.get_orchestration(orchestration.id)
    assert stored.planner is None and stored.wave == 1


def test_a_turn_that_stored_nothing_still_releases_its_lease() -> None:
    backends = memory_backends()
    model = ScriptedModel([{"tool_calls": [{"name": "alpha", "input": {}}]}])
    coordinator = Coordinator(backends, Planner(model, SYSTEM_PROMPT))
    event = Event.parse({"source": "s", "detail-type": "d", "detail": {}})
    created = coordinator.create(event).record
    original = backends.blackboard.add_wave

    def moved_on(orchestration: Any, *args: Any, **kwargs: Any) -> Any:
        refused = original(orchestration.model_copy(update={"version": orchestration.version + 100}), *args, **kwargs)
        assert not refused.applied
        return refused

    backends.blackboard.add_wave = moved_on  # type: ignore[method-assign]
    coordinator.plan(created)
    assert backends.blackboard.get_orchestration(created.id).planner is None


def test_a_fabricate_request_for_what_a_worker_called_with_success_does_is_refused() -> None:
    from blackboard import AgentManifest, FabricationRequest, TaskResult
    from blackboard.records import utcnow
    from wrapper.call_checks import current_call_checks
    from wrapper.testing import ScriptedModel as Scripted

    checked: list[str | None] = []

    class CheckingModel(Scripted):
        """Scripted turns; each asks the planner's check about the capability the runbook repeats."""

        async def stream(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            check = current_call_checks().get("fabricate")
            checked.append(None if check is None else check({"capability": capability}))
            async for event in super().stream(*args, **kwargs):
                yield event

    backends = memory_backends()
    code = backends.code_store.put(b"def handler(**kw):\n    return {'n': 1}\n")
    reader = AgentManifest(
        name="reason_reader", version=1, description="Reads the numbers in an alarm reason text.", code=code
    )
    backends.registry.put(reader)
    capability = "Read the numbers in an alarm reason text."
    asked: list[FabricationRequest] = []
    script = [
        {"tool_calls": [{"name": "reason_reader", "input": {}}]},
        {"tool_calls": [{"name": "fabricate", "input": {"capability": capability, "inputs": {"reason": "t"}}}]},
        {"text": "done"},
    ]
    model = CheckingModel(script)
    coordinator = Coordinator(backends, Planner(model, SYSTEM_PROMPT), fabricate=asked.append)
    orchestration = coordinator.start(Event.parse(ALARM))
    (task,) = backends.blackboard.list_tasks(orchestration.id)
    succeeded = TaskResult(status=TaskState.SUCCEEDED, output={"n": 1}, attempt=1, finished_at=utcnow())
    backends.blackboard.claim(orchestration.id, task.task_id, 1)
    assert backends.blackboard.complete(orchestration.id, task.task_id, 1, succeeded).closes_wave
    coordinator.continue_orchestration(orchestration.id)

    assert asked == []  # the request never reached the Fabricator
    second = [t for t in backends.blackboard.list_tasks(orchestration.id) if t.wave == 2]
    (refused,) = [t.result.error for t in second if t.result is not None]
    assert refused is not None and refused.type == "InvalidToolInput"
    assert "`reason_reader` does this and was called for this event with success" in refused.message
    # The model's turns ran under the same rule: before any result nothing is refused, after it the request is.
    assert checked[0] is None and checked[1] is not None and "reason_reader" in checked[1]


def test_a_worker_that_failed_does_not_stand_in_for_a_fabrication() -> None:
    from arbiter._tool_calls import fabrication_refusal
    from blackboard import AgentManifest, Orchestration

    code_ref = memory_backends().code_store.put(b"def handler(**kw):\n    return 1\n")
    reader = AgentManifest(name="reason_reader", version=1, description="Reads an alarm reason text.", code=code_ref)

    def conversation(status: str) -> list[dict[str, Any]]:
        return [
            {"role": "user", "content": [{"text": "event"}]},
            {"role": "assistant", "content": [{"toolUse": {"toolUseId": "r1", "name": "reason_reader", "input": {}}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "r1", "status": status, "content": []}}]},
        ]

    def refusal(status: str, capability: str) -> str | None:
        orchestration = Orchestration.model_validate(
            {"id": "o1", "event": Event.parse(ALARM).model_dump(), "conversation": conversation(status)}
        )
        return fabrication_refusal(orchestration, {"capability": capability}, {"reason_reader": reader})

    assert refusal("success", "Read an alarm reason text") is not None
    assert refusal("error", "Read an alarm reason text") is None  # it failed: a new worker may do better
    assert refusal("success", "Page the on-call engineer about an alarm") is None  # another capability


def test_the_create_and_a_waves_results_each_take_the_next_turns_planning_lease() -> None:
    from blackboard import TaskResult
    from blackboard.adapters import MemoryBlackboard
    from blackboard.records import utcnow
    from wrapper.testing import ScriptedModel as Scripted

    class CountingBoard(MemoryBlackboard):
        writes = 0

        def update_orchestration(self, current: Any, **changes: Any) -> Any:
            CountingBoard.writes += 1
            return super().update_orchestration(current, **changes)

    import dataclasses

    board = CountingBoard()
    backends = dataclasses.replace(memory_backends(), blackboard=board)
    seen: list[tuple[int, str | None]] = []

    class Watching(Scripted):
        """Scripted turns; each notes the writes so far and who holds the planning lease while the model runs."""

        async def stream(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            orchestrations = board.list_orchestrations()
            seen.append((CountingBoard.writes, orchestrations[0].planner if orchestrations else None))
            async for event in super().stream(*args, **kwargs):
                yield event

    code = backends.code_store.put(b"def handler(**kw):\n    return 1\n")
    from blackboard import AgentManifest

    backends.registry.put(AgentManifest(name="cook", version=1, description="Cooks.", code=code))
    model = Watching([{"tool_calls": [{"name": "cook", "input": {}}]}, {"text": "served"}])
    coordinator = Coordinator(backends, Planner(model, SYSTEM_PROMPT))
    orchestration = coordinator.start(Event.parse(ALARM))
    writes, holder = seen[0]
    assert writes == 0 and holder is not None  # the first turn's lease came with the create: no write of its own
    (task,) = board.list_tasks(orchestration.id)
    board.claim(orchestration.id, task.task_id, 1)
    done = TaskResult(status=TaskState.SUCCEEDED, output=1, attempt=1, finished_at=utcnow())
    assert board.complete(orchestration.id, task.task_id, 1, done).closes_wave
    before = CountingBoard.writes
    coordinator.continue_orchestration(orchestration.id)

    writes, holder = seen[1]
    assert writes == before + 1  # the results and the lease: one write before the model is called
    assert holder is not None  # the lease is on the orchestration while the model runs
    finished = board.get_orchestration(orchestration.id)
    assert finished.output == "served" and finished.finished


def test_a_lease_taken_for_a_turn_another_thread_plans_is_released() -> None:
    from arbiter._planning_lease import PlanningLease
    from blackboard.records import utcnow

    backends = memory_backends()
    coordinator = Coordinator(backends, Planner(ScriptedModel([{"text": "never asked"}]), SYSTEM_PROMPT))
    board = backends.blackboard
    orchestration = coordinator.create(Event.parse(ALARM)).record
    lease = PlanningLease(board, utcnow, 60)
    held = board.update_orchestration(orchestration, **lease.fields()).record
    coordinator._planning[held.id] = (-1, 1)  # another thread of this process is calling the model for it
    coordinator.plan(held, lease=lease)
    assert board.get_orchestration(held.id).planner is None


def test_a_settled_finish_lists_no_task_but_one_that_had_to_retry_still_cancels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from blackboard import AgentManifest, OrchestrationStatus

    backends = memory_backends()
    board = backends.blackboard
    code = backends.code_store.put(b"def handler(**kw):\n    return 1\n")
    backends.registry.put(AgentManifest(name="cook", version=1, description="Cooks.", code=code))
    script = [{"tool_calls": [{"name": "cook", "input": {}}]}]
    coordinator = Coordinator(backends, Planner(ScriptedModel(script), SYSTEM_PROMPT))
    orchestration = board.get_orchestration(coordinator.start(Event.parse(ALARM)).id)
    (task,) = board.list_tasks(orchestration.id)
    listed: list[str] = []
    original = board.list_tasks
    monkeypatch.setattr(board, "list_tasks", lambda o, wave=None: listed.append(o) or original(o, wave))
    # The version read is stale (the task's wave is open on a newer one): the finish retries on the newest version,
    # so ``settled`` (which vouches only for the version it was given) no longer holds and the task is cancelled.
    stale = orchestration.model_copy(update={"version": orchestration.version - 1})
    board.update_orchestration(orchestration, output="moved on")
    assert coordinator.finish(stale, OrchestrationStatus.FAILED, error="stopped", settled=True)
    assert listed == [orchestration.id]
    assert board.get_task(orchestration.id, task.task_id).state is TaskState.CANCELLED


def test_a_settled_finish_on_the_version_given_reads_no_task() -> None:
    from blackboard import OrchestrationStatus

    backends = memory_backends()
    board = backends.blackboard
    coordinator = Coordinator(backends, Planner(ScriptedModel([]), SYSTEM_PROMPT))
    orchestration = coordinator.create(Event.parse(ALARM)).record
    listed: list[str] = []
    original = board.list_tasks
    board.list_tasks = lambda o, wave=None: listed.append(o) or original(o, wave)  # type: ignore[method-assign]
    assert coordinator.finish(orchestration, OrchestrationStatus.COMPLETED, output="done", settled=True)
    assert listed == [] and board.get_orchestration(orchestration.id).output == "done"
    assert not coordinator.finish(orchestration, OrchestrationStatus.COMPLETED, output="again", settled=True)
