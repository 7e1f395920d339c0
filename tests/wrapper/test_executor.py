"""The executor: claim → load → run → write → emit, for trusted (in-process) and sandboxed agents."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from blackboard import Backends, StoreUnavailableError, TaskState
from blackboard._base import utcnow
from blackboard.adapters import LocalCodeStore
from blackboard.messages import NoteSnapshot
from tests.wrapper.conftest import Harness
from wrapper import sdk
from wrapper.executor import MAX_INLINE_OUTPUT_BYTES, Executor
from wrapper.sandbox import SandboxPool

ECHO = "def handler(**kwargs):\n    return {'echo': kwargs}\n"
SCHEMA = {"type": "object", "properties": {"item": {"type": "string"}}, "required": ["item"]}


@pytest.fixture(scope="module")
def pool() -> Iterator[SandboxPool]:
    with SandboxPool(size=2) as sandbox:
        yield sandbox


@pytest.fixture
def executor(harness: Harness, pool: SandboxPool) -> Iterator[Executor]:
    runner = Executor(harness.backends, sandbox=pool)
    yield runner
    runner.close()


def test_sandboxed_success_writes_then_emits(harness: Harness, executor: Executor) -> None:
    agent = harness.register("echo", ECHO, schema=SCHEMA)
    (message,) = harness.wave((agent, {"item": "burger"}))
    completion = executor.execute(message)
    assert completion is not None and completion.status is TaskState.SUCCEEDED
    assert completion.output == {"echo": {"item": "burger"}} and completion.closes_wave
    task = harness.backends.blackboard.get_task(message.orchestration_id, message.task_id)
    assert task.state is TaskState.SUCCEEDED and task.result is not None and task.result.output == completion.output
    assert harness.completions == [completion]


def test_one_completion_per_attempt(harness: Harness, executor: Executor) -> None:
    agent = harness.register("echo", ECHO)
    (message,) = harness.wave((agent, {}))
    assert executor.execute(message) is not None
    assert executor.execute(message) is None  # a duplicate delivery: the claim does not apply
    assert len(harness.completions) == 1


def test_parallel_duplicates_run_once(harness: Harness, executor: Executor) -> None:
    agent = harness.register("echo", ECHO)
    messages = harness.wave(*[(agent, {"n": i}) for i in range(4)])
    threads = [threading.Thread(target=executor.execute, args=(m,)) for m in messages * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(c.task_id for c in harness.completions) == sorted(m.task_id for m in messages)
    assert sum(c.closes_wave for c in harness.completions) == 1


def test_invalid_input_fails_without_running(harness: Harness, executor: Executor) -> None:
    agent = harness.register("echo", ECHO, schema=SCHEMA)
    (message,) = harness.wave((agent, {"item": 42}))
    completion = executor.execute(message)
    assert completion is not None and completion.status is TaskState.FAILED
    assert completion.error is not None and completion.error.type == "InvalidInput" and not completion.error.retryable
    assert "item" in completion.error.message
    assert completion.closes_wave  # not retryable: the task is done at once


def test_handler_error_schedules_a_retry(harness: Harness, executor: Executor) -> None:
    agent = harness.register("boom", "def handler(**kw):\n    raise RuntimeError('kitchen on fire')\n")
    (message,) = harness.wave((agent, {}))
    completion = executor.execute(message)
    assert completion is not None and completion.status is TaskState.FAILED and not completion.closes_wave
    assert completion.error is not None and completion.error.type == "RuntimeError"
    assert "kitchen on fire" in completion.error.message and completion.error.retryable
    task = harness.backends.blackboard.get_task(message.orchestration_id, message.task_id)
    assert task.retry_at is not None and not task.done


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("import os\ndef handler(**kw):\n    os._exit(1)\n", id="exit-without-result"),
        pytest.param("import os, signal\ndef handler(**kw):\n    os.kill(os.getpid(), signal.SIGKILL)\n", id="sigkill"),
    ],
)
def test_a_worker_that_dies_without_a_result_is_retried_within_max_attempts(
    harness: Harness, executor: Executor, code: str
) -> None:
    (message,) = harness.wave((harness.register("dies", code), {}), max_attempts=2)
    first = executor.execute(message)
    assert first is not None and first.status is TaskState.FAILED and not first.closes_wave
    assert first.error is not None and first.error.type == "Crashed" and first.error.retryable
    task = harness.backends.blackboard.get_task(message.orchestration_id, message.task_id)
    assert task.retry_at is not None and not task.done
    board = harness.backends.blackboard
    assert board.retry(message.orchestration_id, message.task_id, 1).applied
    (task,) = board.list_tasks(message.orchestration_id)
    board.mark_dispatched([task])
    last = executor.execute(message.model_copy(update={"attempt": 2}))
    assert last is not None and last.closes_wave  # the second death was the last attempt
    assert board.get_task(message.orchestration_id, message.task_id).state is TaskState.FAILED


def test_non_retryable_error_from_the_sdk(harness: Harness, executor: Executor) -> None:
    code = "from wrapper import sdk\ndef handler(**kw):\n    raise sdk.NonRetryableError('no such table')\n"
    (message,) = harness.wave((harness.register("refuser", code), {}))
    completion = executor.execute(message)
    assert completion is not None and completion.error is not None and not completion.error.retryable
    assert completion.closes_wave


def test_tampered_code_is_refused(harness: Harness, executor: Executor) -> None:
    agent = harness.register("echo", ECHO)
    store = harness.backends.code_store
    assert isinstance(store, LocalCodeStore)
    path = store.path(agent.code.sha256)
    path.chmod(0o644)
    path.write_text("def handler(**kw):\n    return 'pwned'\n")
    (message,) = harness.wave((agent, {}))
    completion = executor.execute(message)
    assert completion is not None and completion.status is TaskState.FAILED
    assert completion.error is not None and completion.error.type == "IntegrityError"
    assert agent.code.sha256 in completion.error.message and not completion.error.retryable


def test_unknown_agent_version_fails(harness: Harness, executor: Executor) -> None:
    agent = harness.register("echo", ECHO)
    (message,) = harness.wave((agent, {}))
    ghost = message.model_copy(update={"agent": message.agent.model_copy(update={"version": 7})})
    completion = executor.execute(ghost)
    assert completion is not None and completion.error is not None and completion.error.type == "AgentNotFound"


def test_deadline_passed_before_start(harness: Harness, executor: Executor) -> None:
    (message,) = harness.wave((harness.register("echo", ECHO), {}))
    late = message.model_copy(update={"deadline": utcnow() - timedelta(seconds=1)})
    completion = executor.execute(late)
    assert completion is not None and completion.status is TaskState.TIMED_OUT


def test_large_output_travels_by_reference(harness: Harness, executor: Executor) -> None:
    code = f"def handler(**kw):\n    return 'x' * {MAX_INLINE_OUTPUT_BYTES + 10}\n"
    (message,) = harness.wave((harness.register("big", code), {}))
    completion = executor.execute(message)
    assert completion is not None and completion.status is TaskState.SUCCEEDED
    assert completion.output is None and completion.output_ref is not None
    assert len(json.loads(harness.backends.code_store.get(completion.output_ref))) == MAX_INLINE_OUTPUT_BYTES + 10
    assert len(completion.to_event().to_json()) < 4096


def test_notes_are_written_conditionally(harness: Harness, executor: Executor) -> None:
    code = (
        "from wrapper import sdk\n"
        "def handler(**kw):\n"
        "    seen = sdk.notes()\n"
        "    sdk.note('grill', {'temp': 230})\n"
        "    sdk.note('seen', sorted(seen))\n"
        "    return sdk.context().task_id\n"
    )
    agent = harness.register("noter", code)
    first, second = harness.wave((agent, {}), (agent, {}))
    board = harness.backends.blackboard
    board.put_note(first.orchestration_id, "menu", ["burger"])
    assert executor.execute(first) is not None
    grill = board.get_note(first.orchestration_id, "grill")
    assert grill is not None and grill.value == {"temp": 230} and grill.author == "noter@1"
    assert board.get_note(first.orchestration_id, "seen").value == ["menu"]  # type: ignore[union-attr]
    # The second task saw the notes as they were when it started (after the first): its write applies on top.
    assert executor.execute(second) is not None
    assert board.get_note(first.orchestration_id, "grill").version == 2  # type: ignore[union-attr]


def test_notes_carried_by_the_message_are_what_the_worker_sees(harness: Harness, executor: Executor) -> None:
    code = "from wrapper import sdk\ndef handler(**kw):\n    return dict(sdk.notes())\n"
    (message,) = harness.wave((harness.register("reader", code), {}))
    board = harness.backends.blackboard
    board.put_note(message.orchestration_id, "menu", ["burger"])  # written after the dispatch
    carried = message.model_copy(update={"notes": [NoteSnapshot(key="menu", value=["fries"], version=1)]})
    completion = executor.execute(carried)
    assert completion is not None, completion
    assert completion.output == {"menu": ["fries"]}, (completion.status, completion.error)  # the dispatch-time snapshot
    (message,) = harness.wave((harness.register("reader2", code), {}))
    board.put_note(message.orchestration_id, "menu", ["salad"])
    completion = executor.execute(message)  # without carried notes, the wrapper reads the blackboard
    assert completion is not None and completion.output == {"menu": ["salad"]}


def test_notes_written_over_the_carried_versions_without_a_read(harness: Harness, executor: Executor) -> None:
    code = "from wrapper import sdk\ndef handler(**kw):\n    sdk.note('grill', 'hot')\n    sdk.note('new', 1)\n"
    (message,) = harness.wave((harness.register("griller", code), {}))
    board = harness.backends.blackboard
    board.put_note(message.orchestration_id, "grill", "cold")  # version 1, as dispatched
    carried = message.model_copy(update={"notes": [NoteSnapshot(key="grill", value="cold", version=1)]})
    reads: list[str] = []
    notes = board.notes
    board.notes = lambda orchestration_id: reads.append(orchestration_id) or notes(orchestration_id)  # type: ignore[method-assign]
    completion = executor.execute(carried)
    assert completion is not None and completion.status is TaskState.SUCCEEDED, completion
    assert reads == []  # the versions came with the message
    assert board.get_note(message.orchestration_id, "grill").version == 2  # type: ignore[union-attr]
    assert board.get_note(message.orchestration_id, "new").version == 1  # type: ignore[union-attr]


def test_a_note_changed_since_the_dispatch_is_written_over_the_version_found(
    harness: Harness, executor: Executor
) -> None:
    code = (
        "from wrapper import sdk\ndef handler(**kw):\n    sdk.note('grill', 'hot')\n    sdk.note('menu', ['fries'])\n"
    )
    (message,) = harness.wave((harness.register("griller", code), {}))
    board = harness.backends.blackboard
    carried = message.model_copy(update={"notes": [NoteSnapshot(key="grill", value="cold", version=1)]})
    for value in ("cold", "warm", "hotter"):  # another task moved it to version 3 after the dispatch
        stored = board.get_note(message.orchestration_id, "grill")
        version = 0 if stored is None else stored.version
        board.put_note(message.orchestration_id, "grill", value, expected_version=version)
    board.put_note(message.orchestration_id, "menu", ["burger"])  # created after the dispatch: not carried
    completion = executor.execute(carried)
    assert completion is not None and completion.status is TaskState.SUCCEEDED, completion
    grill = board.get_note(message.orchestration_id, "grill")
    menu = board.get_note(message.orchestration_id, "menu")
    assert grill is not None and (grill.value, grill.version, grill.author) == ("hot", 4, "griller@1")
    assert menu is not None and (menu.value, menu.version) == (["fries"], 2)


def test_write_failure_still_emits(harness: Harness, pool: SandboxPool) -> None:
    class FailingWrites(type(harness.backends.blackboard)):  # type: ignore[misc]
        def complete(self, *args: Any, **kwargs: Any) -> Any:
            raise StoreUnavailableError("disk unplugged")

    board = harness.backends.blackboard
    broken = FailingWrites(board.database)  # type: ignore[attr-defined]
    backends = Backends(
        broken, harness.backends.registry, harness.backends.code_store, harness.backends.queue, harness.backends.bus
    )
    (message,) = harness.wave((harness.register("echo", ECHO), {}))
    completion = Executor(backends, sandbox=pool).execute(message)
    assert completion is not None and completion.status is TaskState.SUCCEEDED and not completion.closes_wave
    assert harness.completions == [completion]


# ---------------------------------------------------------------- trusted, in-process agents


def test_trusted_callable_runs_in_process(harness: Harness) -> None:
    calls: list[dict[str, Any]] = []

    def cook(item: str) -> dict[str, Any]:
        calls.append({"item": item, "task": sdk.context().task_id})
        sdk.note("cooked", item)
        return {"cooked": item}

    agent = harness.register(
        "cook", "def handler(**kw):\n    raise AssertionError('not this')\n", isolation="in_process"
    )
    executor = Executor(harness.backends, trusted={"cook": cook})
    (message,) = harness.wave((agent, {"item": "fries"}))
    completion = executor.execute(message)
    executor.close()
    assert completion is not None and completion.output == {"cooked": "fries"}
    assert calls == [{"item": "fries", "task": message.task_id}]
    assert harness.backends.blackboard.get_note(message.orchestration_id, "cooked").value == "fries"  # type: ignore[union-attr]


def test_in_process_results_and_failures(harness: Harness) -> None:
    release = threading.Event()
    trusted = {
        "inproc": lambda **kw: {"echo": kw},
        "inproc_bad": lambda **kw: object(),
        "inproc_slow": lambda **kw: release.wait(5),
    }
    executor = Executor(harness.backends, trusted=trusted)
    ok = harness.register("inproc", ECHO, isolation="in_process")
    bad = harness.register("inproc_bad", "def handler(**kw):\n    return object()\n", isolation="in_process")
    slow = harness.register("inproc_slow", "def handler(**kw):\n    pass\n", isolation="in_process", timeout=0.2)
    m_ok, m_bad, m_slow = harness.wave((ok, {"a": 1}), (bad, {}), (slow, {}))
    assert executor.execute(m_ok).output == {"echo": {"a": 1}}  # type: ignore[union-attr]
    failed = executor.execute(m_bad)
    assert failed is not None and failed.error is not None and failed.error.type == "OutputNotSerializable"
    timed_out = executor.execute(m_slow)
    release.set()
    assert timed_out is not None and timed_out.status is TaskState.TIMED_OUT
    executor.close()


def test_a_trusted_agent_without_its_callable_fails_and_its_source_never_runs(harness: Harness) -> None:
    import builtins

    source = "import builtins\nbuiltins.ARBITER_SOURCE_RAN = True\n\ndef handler(**kw):\n    return 'ran'\n"
    agent = harness.register("cook", source, isolation="in_process")
    executor = Executor(harness.backends, trusted={"other": lambda: None})
    (message,) = harness.wave((agent, {}))
    completion = executor.execute(message)
    executor.close()
    assert not hasattr(builtins, "ARBITER_SOURCE_RAN")
    assert completion is not None and completion.status is TaskState.FAILED and completion.error is not None
    assert (completion.error.type, completion.error.retryable) == ("TrustedHandlerUnavailable", False)
    assert "cook@1" in completion.error.message
    task = harness.backends.blackboard.get_task(message.orchestration_id, message.task_id)
    assert task.state is TaskState.FAILED and task.retry_at is None  # not retried: no attempt can find it


def test_sandboxed_agent_without_a_pool_fails_clearly(harness: Harness) -> None:
    (message,) = harness.wave((harness.register("echo", ECHO), {}))
    completion = Executor(harness.backends).execute(message)
    assert completion is not None and completion.error is not None and completion.error.type == "SandboxUnavailable"


def test_manifest_and_code_caches(harness: Harness, executor: Executor) -> None:
    agent = harness.register("echo", ECHO)
    for message in harness.wave(*[(agent, {"n": i}) for i in range(3)]):
        executor.execute(message)
    assert (executor.manifests.misses, executor.manifests.hits) == (1, 2)
    assert (executor.code.misses, executor.code.hits) == (1, 2)


@pytest.mark.parametrize("isolation", ["sandbox", "in_process"])
def test_an_output_that_breaks_the_output_schema_fails_the_attempt(
    harness: Harness, executor: Executor, isolation: str
) -> None:
    contract = {"type": "object", "properties": {"threshold": {"type": "number"}}, "required": ["threshold"]}
    code = "def handler(**kwargs):\n    return kwargs\n"
    agent = harness.register("reader", code, output_schema=contract, isolation=isolation)
    if isolation == "in_process":  # trusted code runs only as a registered callable
        executor = Executor(harness.backends, trusted={"reader": lambda **kwargs: kwargs})
    (bad, good) = harness.wave((agent, {"threshold": "25"}), (agent, {"threshold": 25}))
    refused = executor.execute(bad)
    assert refused is not None and refused.status is TaskState.FAILED and refused.output is None
    assert refused.error is not None and refused.error.type == "OutputSchemaMismatch" and not refused.error.retryable
    assert "reader@1" in refused.error.message and "threshold: '25' is not of type 'number'" in refused.error.message
    accepted = executor.execute(good)
    assert accepted is not None and accepted.status is TaskState.SUCCEEDED


def test_a_trusted_result_that_is_not_json_is_named_with_its_path(harness: Harness) -> None:
    trusted = {"stats": lambda: {"series": [1.0, float("inf")]}, "text": lambda: {"t": "caf\udce9"}}
    executor = Executor(harness.backends, trusted=trusted)
    stats = harness.register("stats", ECHO, isolation="in_process")
    text = harness.register("text", ECHO, isolation="in_process")
    infinite, surrogate = (executor.execute(m) for m in harness.wave((stats, {}), (text, {})))
    executor.close()
    assert infinite is not None and infinite.error is not None and infinite.error.type == "OutputNotSerializable"
    assert "inf at $.series[1]" in infinite.error.message
    assert surrogate is not None and surrogate.error is not None
    assert "$.t is not valid Unicode" in surrogate.error.message


def test_the_callers_time_limit_caps_the_agents_timeout(harness: Harness) -> None:
    release = threading.Event()
    executor = Executor(harness.backends, trusted={"slow": lambda **kw: release.wait(30)})
    slow = harness.register("slow", "def handler(**kw):\n    pass\n", isolation="in_process", timeout=30)
    (message,) = harness.wave((slow, {}))
    completion = executor.execute(message, time_limit=0.2)  # what a Lambda invocation had left
    release.set()
    executor.close()
    assert completion is not None and completion.status is TaskState.TIMED_OUT and completion.error is not None
    assert "the invocation running it had left" in completion.error.message and completion.error.retryable


def test_no_time_left_starts_nothing_and_uses_no_attempt(harness: Harness, executor: Executor) -> None:
    from wrapper.exceptions import NoTimeLeftError

    agent = harness.register("echo", ECHO)
    (message,) = harness.wave((agent, {}))
    with pytest.raises(NoTimeLeftError) as raised:
        executor.execute(message, time_limit=-0.5)
    assert raised.value.retryable and raised.value.task_id == message.task_id
    task = harness.backends.blackboard.get_task(message.orchestration_id, message.task_id)
    assert task.state is not TaskState.RUNNING and task.attempt == 1 and harness.completions == []


def test_the_completion_echoes_the_messages_token(harness: Harness, executor: Executor) -> None:
    from blackboard.messages import new_completion_token

    agent = harness.register("echo", ECHO)
    (message,) = harness.wave((agent, {}))
    token = new_completion_token()
    completion = executor.execute(message.model_copy(update={"token": token}))
    assert completion is not None and completion.token == token
    assert completion.to_event().detail["token"] == token


def _nested(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("isolation", ["sandbox", "in_process"])
def test_outputs_past_the_boundary_fail_and_what_is_written_reads_back(
    harness: Harness, pool: SandboxPool, isolation: str
) -> None:
    code = "def handler(kind):\n    value = 'leaf'\n    for _ in range({'deep': 200, 'fine': 64}.get(kind, 0)):\n"
    code += "        value = [value]\n    return {'n': 10**30} if kind == 'huge' else value\n"
    agent = harness.register("shape", code, isolation=isolation)
    namespace: dict[str, Any] = {}
    exec(compile(code, "shape", "exec"), namespace)  # the same handler, as the trusted callable
    executor = Executor(harness.backends, sandbox=pool, trusted={"shape": namespace["handler"]})
    deep, huge, fine = (
        executor.execute(m) for m in harness.wave(*[(agent, {"kind": k}) for k in ("deep", "huge", "fine")])
    )
    executor.close()
    for refused, words in ((deep, "nests deeper than 64 levels"), (huge, "outside the range")):
        assert refused is not None and refused.status is TaskState.FAILED and refused.error is not None
        assert refused.error.type == "OutputNotSerializable" and not refused.error.retryable
        assert words in refused.error.message
    assert fine is not None and fine.status is TaskState.SUCCEEDED
    stored = harness.backends.blackboard.list_tasks(fine.orchestration_id)
    assert [t.result.output for t in stored if t.result and t.result.output] == [_nested(64)]


def test_an_output_over_the_output_limit_fails(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    agent = harness.register("big", ECHO, isolation="in_process")
    executor = Executor(harness.backends, trusted={"big": lambda: "x" * 2000}, max_output_bytes=1000)
    (message,) = harness.wave((agent, {}))
    completion = executor.execute(message)
    assert completion is not None and completion.error is not None and completion.error.type == "OutputTooLarge"
    assert "2,002 bytes as JSON; the limit is 1,000" in completion.error.message and not completion.error.retryable
    monkeypatch.setenv("ARBITER_MAX_OUTPUT_BYTES", "3000")
    (message,) = harness.wave((agent, {}))
    completion = Executor(harness.backends, trusted={"big": lambda: "x" * 2000}).execute(message)
    assert completion is not None and completion.status is TaskState.SUCCEEDED


def _publishes(harness: Harness) -> list[list[str]]:
    """Each ``bus.publish`` call from now on, as the task ids of the completions it carried."""
    calls: list[list[str]] = []
    bus = harness.backends.bus
    publish = bus.publish

    def recording(events: Any) -> list[str]:
        calls.append([event.detail["task_id"] for event in events])
        return publish(events)

    bus.publish = recording  # type: ignore[method-assign]
    return calls


def test_completions_that_ask_nothing_are_held_until_one_goes_out_at_once(harness: Harness) -> None:
    agent = harness.register("cook", "def handler(**kw):\n    return 1\n", isolation="in_process")
    messages = harness.wave(*[(agent, {}) for _ in range(3)])
    calls = _publishes(harness)
    executor = Executor(harness.backends, trusted={"cook": lambda: 1})
    try:
        with executor.holding_completions():
            completions = [executor.execute(message) for message in messages[:2]]
            assert calls == []  # held
            completions.append(executor.execute(messages[2]))
            # The one that closes the wave goes out at once, with the held ones before it, in one call.
            assert calls == [["tooluse_0", "tooluse_1", "tooluse_2"]]
    finally:
        executor.close()
    assert [c is not None and c.closes_wave for c in completions] == [False, False, True]
    assert calls == [["tooluse_0", "tooluse_1", "tooluse_2"]]  # nothing left to publish when the block ends
    assert sorted(c.task_id for c in harness.completions) == ["tooluse_0", "tooluse_1", "tooluse_2"]


def test_completions_held_after_the_last_one_sent_at_once_go_out_when_the_batch_ends(harness: Harness) -> None:
    agent = harness.register("cook", "def handler(**kw):\n    return 1\n", isolation="in_process")
    first = harness.wave((agent, {}))
    second = harness.wave(*[(agent, {}) for _ in range(3)])
    calls = _publishes(harness)
    executor = Executor(harness.backends, trusted={"cook": lambda: 1})
    try:
        with executor.holding_completions():
            for message in [second[0], *first, second[1]]:
                executor.execute(message)
            assert calls == [[second[0].task_id, first[0].task_id]]  # the closing one took the held one along
    finally:
        executor.close()
    assert calls == [[second[0].task_id, first[0].task_id], [second[1].task_id]]


def test_held_completions_go_out_when_the_batch_fails_and_none_are_held_outside_it(harness: Harness) -> None:
    agent = harness.register("cook", "def handler(**kw):\n    return 1\n", isolation="in_process")
    first, second, _third = harness.wave(*[(agent, {}) for _ in range(3)])
    calls = _publishes(harness)
    executor = Executor(harness.backends, trusted={"cook": lambda: 1})
    try:
        with pytest.raises(RuntimeError), executor.holding_completions():
            executor.execute(first)
            raise RuntimeError("the batch failed")
        assert calls == [["tooluse_0"]]
        executor.execute(second)
        assert calls == [["tooluse_0"], ["tooluse_1"]]
    finally:
        executor.close()
