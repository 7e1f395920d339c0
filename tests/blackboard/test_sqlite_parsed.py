"""The SQLite blackboard keeps the orchestrations it wrote or read and the tasks it wrote parsed, never answering a
read or deciding a change with a stale one."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from blackboard import OrchestrationNotFoundError, TaskNotFoundError, TaskState, UnreadableRecordError
from blackboard.adapters import SqliteBlackboard
from blackboard.adapters.sqlite import SqliteDatabase
from blackboard.adapters.sqlite._parsed import ParsedOrchestrations, WrittenTasks
from blackboard.ports.blackboard import TaskChange
from blackboard.quarantine import Unreadable
from blackboard.records import Orchestration, Task
from tests.conformance.builders import event, failed, ok, started, with_wave
from tests.conformance.corrupt import DAMAGE
from tests.conformance.test_reactive import reactive


class CountingBoard(SqliteBlackboard):
    """A SqliteBlackboard that counts how many orchestration documents it parsed (a test double, named as such)."""

    def __init__(self, database: SqliteDatabase) -> None:
        super().__init__(database)
        self.parsed = 0

    def _get_orchestration(self, orchestration_id: str) -> Orchestration:
        before = Orchestration.model_validate_json
        board = self

        def counting(doc: str | bytes, **kwargs: object) -> Orchestration:
            board.parsed += 1
            return before(doc, **kwargs)  # type: ignore[arg-type]

        Orchestration.model_validate_json = counting  # type: ignore[method-assign]
        try:
            return super()._get_orchestration(orchestration_id)
        finally:
            Orchestration.model_validate_json = before  # type: ignore[method-assign]


@pytest.fixture
def database(tmp_path: Path) -> Iterator[SqliteDatabase]:
    db = SqliteDatabase(tmp_path / "a.db")
    yield db
    db.close()


def test_a_read_after_its_own_write_parses_nothing(database: SqliteDatabase) -> None:
    board = CountingBoard(database)
    orchestration, _ = with_wave(board, 2)
    assert board.get_orchestration(orchestration.id) is orchestration
    assert board.read_wave(orchestration.id).orchestration is orchestration
    assert board.parsed == 0


def test_a_write_from_another_connection_is_read(database: SqliteDatabase, tmp_path: Path) -> None:
    board = CountingBoard(database)
    orchestration = started(board)
    other_database = SqliteDatabase(tmp_path / "a.db")
    other = SqliteBlackboard(other_database)
    changed = other.update_orchestration(other.get_orchestration(orchestration.id), output="from elsewhere").record
    got = board.get_orchestration(orchestration.id)
    assert got == changed and got.output == "from elsewhere"
    assert board.parsed == 1
    assert board.get_orchestration(orchestration.id) is got  # now kept
    assert board.parsed == 1
    other_database.close()


def test_a_document_replaced_under_the_same_version_is_read_again(database: SqliteDatabase) -> None:
    board = CountingBoard(database)
    orchestration = started(board)
    with database.write() as conn:
        conn.execute("UPDATE orchestrations SET doc = ? WHERE id = ?", (DAMAGE["invalid-json"], orchestration.id))
    with pytest.raises(UnreadableRecordError):
        board.get_orchestration(orchestration.id)


def test_a_wave_that_rolled_back_is_not_kept(database: SqliteDatabase) -> None:
    board = SqliteBlackboard(database)
    orchestration, first = with_wave(board, 1)
    board.complete(orchestration.id, first[0].task_id, 1, ok())
    reused = [t.model_copy(update={"wave": 2}) for t in first]
    assert not board.add_wave(orchestration, reused).applied
    stored = board.get_orchestration(orchestration.id)
    assert stored is orchestration and stored.wave == 1
    fresh = SqliteBlackboard(database).get_orchestration(orchestration.id)
    assert fresh == stored


def test_a_stale_compare_and_set_is_not_kept(database: SqliteDatabase) -> None:
    board = SqliteBlackboard(database)
    orchestration = started(board)
    newer = board.update_orchestration(orchestration, output="first").record
    assert not board.update_orchestration(orchestration, output="lost").applied
    assert board.get_orchestration(orchestration.id) is newer


def test_a_reactive_task_write_is_kept(database: SqliteDatabase) -> None:
    board = CountingBoard(database)
    orchestration, tasks = with_wave(board, 1)
    assert board.add_reactive_task(reactive(tasks[0])).applied
    stored = board.get_orchestration(orchestration.id)
    assert stored.usage.tasks == orchestration.usage.tasks + 1
    assert board.parsed == 0
    assert SqliteBlackboard(database).get_orchestration(orchestration.id) == stored


def test_a_deleted_orchestration_is_not_found(database: SqliteDatabase) -> None:
    board = SqliteBlackboard(database)
    orchestration = started(board)
    with database.write() as conn:
        conn.execute("DELETE FROM orchestrations WHERE id = ?", (orchestration.id,))
    with pytest.raises(OrchestrationNotFoundError):
        board.get_orchestration(orchestration.id)


def test_threads_reading_and_writing_see_every_committed_version(database: SqliteDatabase) -> None:
    board = SqliteBlackboard(database)
    orchestration = started(board)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for i in range(50):
                current = board.get_orchestration(orchestration.id)
                board.update_orchestration(current, output=i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def read() -> None:
        try:
            last = -1
            for _ in range(200):
                seen = board.get_orchestration(orchestration.id).version
                assert seen >= last, "a read went back to an older version"
                last = seen
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write), threading.Thread(target=read), threading.Thread(target=read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert SqliteBlackboard(database).get_orchestration(orchestration.id) == board.get_orchestration(orchestration.id)


def test_the_cache_keeps_the_most_recently_used() -> None:
    kept = ParsedOrchestrations(size=2)
    first, second, third = (Orchestration(event=event()) for _ in range(3))
    for orchestration in (first, second):
        kept.remember(orchestration, 10)
    assert kept.get(first.id, 0, 10) is first  # first is now the most recent
    kept.remember(third, 10)
    assert len(kept) == 2
    assert kept.get(second.id, 0, 10) is None
    assert kept.get(first.id, 0, 10) is first and kept.get(third.id, 0, 10) is third


def test_the_cache_never_goes_back_to_an_older_version() -> None:
    kept = ParsedOrchestrations()
    older = Orchestration(event=event())
    newer = older.model_copy(update={"version": 3})
    kept.remember(newer, 10)
    kept.remember(older, 12)
    assert kept.stamp(older.id) == (3, 10)
    assert kept.get(older.id, 0, 12) is None


def test_a_cache_of_size_zero_keeps_nothing() -> None:
    kept = ParsedOrchestrations(size=0)
    kept.remember(Orchestration(event=event()), 10)
    assert len(kept) == 0
    with pytest.raises(ValueError, match="negative"):
        ParsedOrchestrations(size=-1)
    with pytest.raises(ValueError, match="negative"):
        ParsedOrchestrations(max_chars=-1)


def test_the_cache_is_bounded_by_the_size_of_its_documents() -> None:
    kept = ParsedOrchestrations(size=10, max_chars=100)
    first, second, third = (Orchestration(event=event()) for _ in range(3))
    kept.remember(first, 40)
    kept.remember(second, 50)
    assert len(kept) == 2 and kept.chars == 90
    kept.remember(third, 30)  # 120 > 100: the least recently used goes
    assert kept.get(first.id, 0, 40) is None
    assert len(kept) == 2 and kept.chars == 80
    kept.remember(second.model_copy(update={"version": 1}), 70)  # a new version replaces its entry
    assert len(kept) == 2 and kept.chars == 100
    kept.forget(third.id)
    assert len(kept) == 1 and kept.chars == 70


def test_one_document_larger_than_the_bound_is_still_kept() -> None:
    kept = ParsedOrchestrations(size=10, max_chars=100)
    small, large = Orchestration(event=event()), Orchestration(event=event())
    kept.remember(small, 10)
    kept.remember(large, 500)
    assert kept.get(large.id, 0, 500) is large
    assert kept.get(small.id, 0, 10) is None and kept.chars == 500


def test_tasks_are_still_read_from_the_store(database: SqliteDatabase) -> None:
    board = SqliteBlackboard(database)
    orchestration, tasks = with_wave(board, 2)
    board.complete(orchestration.id, tasks[0].task_id, 1, ok())
    view = board.read_wave(orchestration.id, tasks[0].task_id)
    assert view.task is not None and view.task.state is TaskState.SUCCEEDED


def test_listing_kept_orchestrations_parses_only_the_changed_ones(database: SqliteDatabase, tmp_path: Path) -> None:
    board = SqliteBlackboard(database)
    first, second = started(board), started(board)
    other_database = SqliteDatabase(tmp_path / "a.db")
    changed = SqliteBlackboard(other_database).update_orchestration(second, output="from elsewhere").record
    parsed: list[str] = []
    original = board._parse_listed

    def counting(orchestration_id: str, doc: str) -> Orchestration | Unreadable:
        parsed.append(orchestration_id)
        return original(orchestration_id, doc)

    board._parse_listed = counting  # type: ignore[method-assign]
    listed = board.list_orchestrations()
    assert parsed == [second.id]
    assert {o.id: o for o in listed} == {first.id: first, second.id: changed}
    assert next(o for o in listed if o.id == first.id) is first
    assert board.list_orchestrations() == listed and parsed == [second.id]
    other_database.close()


def test_listing_still_sets_damaged_documents_aside(database: SqliteDatabase) -> None:
    board = SqliteBlackboard(database)
    good, bad = started(board), started(board)
    with database.write() as conn:
        conn.execute("UPDATE orchestrations SET doc = ? WHERE id = ?", (DAMAGE["newer-schema"], bad.id))
    assert [o.id for o in board.list_orchestrations()] == [good.id]
    assert board.quarantine.counts["orchestration"] == 1


# ---------------------------------------------------------------- tasks it wrote


def _reads(board: SqliteBlackboard, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the task changes ``board`` decides on a task read from the file (the task ids)."""
    reads: list[str] = []
    read = board._change_read

    def counting(conn: sqlite3.Connection, orchestration_id: str, task_id: str, change: TaskChange) -> Any:
        reads.append(task_id)
        return read(conn, orchestration_id, task_id, change)

    monkeypatch.setattr(board, "_change_read", counting)
    return reads


def _other(tmp_path: Path) -> SqliteBlackboard:
    """Another adapter on the same file: another connection, as another process has."""
    return SqliteBlackboard(SqliteDatabase(tmp_path / "a.db"))


def test_changes_to_tasks_it_wrote_read_nothing_and_the_wave_closes_once(
    database: SqliteDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    board = SqliteBlackboard(database)
    reads = _reads(board, monkeypatch)
    orchestration, tasks = with_wave(board, 3)
    assert all(t.applied for t in board.mark_dispatched(tasks))
    closers = []
    for task in tasks:
        assert board.claim(orchestration.id, task.task_id, 1, holder="me", lease_seconds=30).applied
        done = board.complete(orchestration.id, task.task_id, 1, ok(task.task_id))
        assert done.applied
        closers.append(done.closes_wave)
    assert reads == []
    assert closers == [False, False, True]
    stored = _other(tmp_path).read_wave(orchestration.id)
    assert [(t.state, t.result.output if t.result else None) for t in stored.tasks] == [
        (TaskState.SUCCEEDED, task.task_id) for task in tasks
    ]
    assert len(board._written) == 0  # done tasks are not kept


def test_a_task_changed_elsewhere_since_is_decided_as_stored(
    database: SqliteDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    board = SqliteBlackboard(database)
    orchestration, tasks = with_wave(board, 1)
    assert board.mark_dispatched(tasks)[0].applied
    other = _other(tmp_path)
    assert other.claim(orchestration.id, tasks[0].task_id, 1, holder="them", lease_seconds=30).applied
    reads = _reads(board, monkeypatch)

    again = board.claim(orchestration.id, tasks[0].task_id, 1, holder="me", lease_seconds=30)

    assert not again.applied  # claimed by the other adapter: the kept task (dispatched) is stale
    assert (again.task.state, again.task.holder) == (TaskState.RUNNING, "them")
    assert reads == [tasks[0].task_id]
    completed = board.complete(orchestration.id, tasks[0].task_id, 1, ok())
    assert completed.applied and completed.closes_wave  # decided on the task as stored, running


def test_a_change_the_kept_state_does_not_allow_is_decided_on_the_stored_state(
    database: SqliteDatabase, tmp_path: Path
) -> None:
    board = SqliteBlackboard(database)
    orchestration, tasks = with_wave(board, 1)
    assert board.claim(orchestration.id, tasks[0].task_id, 1).applied  # kept: running
    assert _other(tmp_path).complete(orchestration.id, tasks[0].task_id, 1, failed()).applied  # stored: failed

    def back_to_pending(task: Task) -> Task:
        return task.model_copy(update={"state": TaskState.PENDING})  # allowed from failed, not from running

    moved = board._change_task(orchestration.id, tasks[0].task_id, back_to_pending)

    assert moved.applied and moved.task.state is TaskState.PENDING
    assert moved.task.result is not None and moved.task.result.status is TaskState.FAILED


def test_a_task_removed_since_is_not_found(database: SqliteDatabase) -> None:
    board = SqliteBlackboard(database)
    orchestration, tasks = with_wave(board, 1)
    with database.write() as conn:
        conn.execute("DELETE FROM tasks WHERE task_id = ?", (tasks[0].task_id,))
    with pytest.raises(TaskNotFoundError):
        board.claim(orchestration.id, tasks[0].task_id, 1)


def test_a_failed_transaction_keeps_nothing_it_did_not_commit(database: SqliteDatabase, tmp_path: Path) -> None:
    board = SqliteBlackboard(database)
    orchestration, tasks = with_wave(board, 2)
    with pytest.raises(TaskNotFoundError):  # the second is missing: the batch rolls back, the first claim too
        board.claim_many([tasks[0], tasks[0].model_copy(update={"task_id": "missing"})])
    stored = _other(tmp_path).get_task(orchestration.id, tasks[0].task_id)
    assert stored.state is TaskState.PENDING
    kept = board._written.get(orchestration.id, tasks[0].task_id)
    assert kept is not None and kept[0].state is TaskState.PENDING
    assert board.claim(orchestration.id, tasks[0].task_id, 1).applied  # the kept task is still the stored one


def test_written_tasks_are_bounded_and_done_ones_dropped(database: SqliteDatabase) -> None:
    board = SqliteBlackboard(database)
    _, tasks = with_wave(board, 5)
    kept = WrittenTasks(size=3)
    kept.remember([(task, "doc") for task in tasks])
    assert len(kept) == 3
    assert kept.get(tasks[0].orchestration_id, tasks[0].task_id) is None  # the oldest went first
    assert kept.get(tasks[4].orchestration_id, tasks[4].task_id) == (tasks[4], "doc")
    finished = tasks[4].model_copy(update={"state": TaskState.SUCCEEDED, "result": ok()})
    kept.remember([(finished, "doc2")])
    assert kept.get(tasks[4].orchestration_id, tasks[4].task_id) is None
    with pytest.raises(ValueError):
        WrittenTasks(size=-1)
