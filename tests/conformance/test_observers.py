"""Conformance: a blackboard tells its observers of every change it applied, once, on every backend."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from blackboard import Backends, Note, Orchestration, OrchestrationStatus, Task, TaskState
from blackboard.ports import BlackboardObserver
from tests.conformance.builders import event, failed, ok, with_wave


class RecordingObserver(BlackboardObserver):
    """Writes down what it is told, in order."""

    def __init__(self) -> None:
        self.told: list[tuple[str, ...]] = []

    def orchestration_changed(self, orchestration: Orchestration) -> None:
        self.told.append(("orchestration", orchestration.status.value, str(orchestration.version)))

    def wave_added(self, orchestration: Orchestration, tasks: Sequence[Task]) -> None:
        self.told.append(("wave", str(orchestration.wave), *sorted(t.task_id for t in tasks)))

    def task_changed(self, before: TaskState, task: Task) -> None:
        self.told.append(("task", task.task_id, before.value, task.state.value, str(task.attempt)))

    def note_written(self, note: Note) -> None:
        self.told.append(("note", note.key, str(note.version)))


class BrokenObserver(BlackboardObserver):
    """Raises whatever it is told."""

    def task_changed(self, before: TaskState, task: Task) -> None:
        raise RuntimeError("observer bug")


def test_observers_are_told_each_applied_change_once(backends: Backends) -> None:
    board = backends.blackboard
    observer = RecordingObserver()
    board.watch(observer)
    board.watch(BrokenObserver())  # a broken observer neither fails the write nor hides it from the others
    created = board.create_orchestration(Orchestration(event=event("evt-obs")))
    assert not board.create_orchestration(Orchestration(event=event("evt-obs"))).applied
    assert observer.told == [("orchestration", "running", "1")]
    observer.told.clear()

    orchestration, (first, second) = with_wave(board, 2)
    board.mark_dispatched([first, second])
    assert board.claim(orchestration.id, first.task_id, 1).applied
    assert not board.claim(orchestration.id, first.task_id, 1).applied  # a duplicate claim: not told
    board.complete(orchestration.id, first.task_id, 1, ok())
    board.complete(orchestration.id, first.task_id, 1, ok())  # a duplicate completion: not told
    retry_at = board._clock() + timedelta(seconds=1)
    board.complete(orchestration.id, second.task_id, 1, failed(), retry_at=retry_at)
    board.retry(orchestration.id, second.task_id, 1)
    assert board.put_note(orchestration.id, "k", 1).applied
    assert not board.put_note(orchestration.id, "k", 2).applied  # expected version 0, stored 1: not told
    board.update_orchestration(board.get_orchestration(orchestration.id), status=OrchestrationStatus.COMPLETED)
    a, b = first.task_id, second.task_id
    assert [t for t in observer.told if t[0] != "orchestration" or t[1] != "running"] == [
        ("wave", "1", *sorted([a, b])),
        ("task", a, "pending", "dispatched", "1"),
        ("task", b, "pending", "dispatched", "1"),
        ("task", a, "dispatched", "running", "1"),
        ("task", a, "running", "succeeded", "1"),
        ("task", b, "dispatched", "failed", "1"),
        ("task", b, "failed", "pending", "2"),
        ("note", "k", "1"),
        ("orchestration", "completed", "3"),
    ]
    assert created.applied


def test_an_observer_that_stopped_watching_is_not_told(backends: Backends) -> None:
    board = backends.blackboard
    observer = RecordingObserver()
    board.watch(observer)
    board.unwatch(observer)
    board.unwatch(observer)  # twice: nothing happens
    with_wave(board, 1)
    assert observer.told == []
