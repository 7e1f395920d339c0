"""In-memory adapters: one process, no durability. For tests and throwaway runs.

Records are immutable pydantic models and are stored as given, without copying: do not mutate the dicts and lists
inside a record you passed in or got back. A stored record may also be JSON text (a document imported as it was,
or a corrupt one planted by a test): it is parsed on read, and one that fails to load is reported as the other
adapters report theirs (see :mod:`blackboard.quarantine`).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from blackboard._base import utcnow
from blackboard.exceptions import AgentNotFoundError, OrchestrationNotFoundError, TaskNotFoundError
from blackboard.ports.blackboard import Blackboard, InsertOutcome, TaskChange, Transition, became_done
from blackboard.ports.code_store import CodeStore
from blackboard.ports.registry import Registry, StatsDelta
from blackboard.ports.task_queue import DeadLetter, QueueStats, Received, TaskQueue
from blackboard.quarantine import Unreadable, load, load_or_raise
from blackboard.records import AgentManifest, AgentStats, Note, Orchestration, Task
from blackboard.states import AgentState, OrchestrationStatus, TaskState

__all__ = ["MemoryBlackboard", "MemoryCodeStore", "MemoryRegistry", "MemoryTaskQueue"]

_R = TypeVar("_R", Orchestration, Task, Note, AgentManifest)


def _entry(kind: str, key: tuple[str, ...], model: type[_R], value: _R | str) -> _R | Unreadable:
    """A stored value as a record: as given, or parsed from JSON text (``Unreadable`` if that fails)."""
    if isinstance(value, str):
        return load(kind, key, lambda: model.model_validate_json(value))
    return value


def _record(kind: str, key: tuple[str, ...], model: type[_R], value: _R | str) -> _R:
    """Like :func:`_entry`, raising ``UnreadableRecordError`` for a value that fails to load."""
    if isinstance(value, str):
        return load_or_raise(kind, key, lambda: model.model_validate_json(value))
    return value


@dataclass
class _Wave:
    size: int
    done: int = 0
    closed: bool = False


class MemoryBlackboard(Blackboard):
    """Blackboard in a dict, guarded by one lock."""

    def __init__(self, *, clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__(clock=clock)
        self._lock = threading.Lock()
        self._orchestrations: dict[str, Orchestration | str] = {}
        self._by_event: dict[str, str] = {}
        self._tasks: dict[tuple[str, str], Task | str] = {}
        self._task_order: dict[str, list[str]] = {}
        self._waves: dict[tuple[str, int], _Wave] = {}
        self._notes: dict[tuple[str, str], Note | str] = {}
        #: Records set aside by :meth:`set_aside`: the entry and the value as it was stored.
        self.set_aside_records: list[tuple[Unreadable, object]] = []

    def _orchestration(self, orchestration_id: str) -> Orchestration:
        return _record("orchestration", (orchestration_id,), Orchestration, self._orchestrations[orchestration_id])

    def _task(self, key: tuple[str, str]) -> Task:
        return _record("task", key, Task, self._tasks[key])

    def _insert_orchestration(self, orchestration: Orchestration) -> Orchestration | None:
        with self._lock:
            existing_id = self._by_event.get(orchestration.event.id)
            if existing_id is not None:
                return self._orchestration(existing_id)
            if orchestration.id in self._orchestrations:
                return self._orchestration(orchestration.id)
            self._orchestrations[orchestration.id] = orchestration
            self._by_event[orchestration.event.id] = orchestration.id
            self._task_order[orchestration.id] = []
            return None

    def _get_orchestration(self, orchestration_id: str) -> Orchestration:
        if orchestration_id not in self._orchestrations:
            raise OrchestrationNotFoundError(orchestration_id)
        return self._orchestration(orchestration_id)

    def _find_orchestration(self, event_id: str) -> Orchestration | None:
        with self._lock:
            orchestration_id = self._by_event.get(event_id)
            return None if orchestration_id is None else self._orchestration(orchestration_id)

    def _list_orchestrations(self, status: OrchestrationStatus | None, limit: int) -> list[Orchestration | Unreadable]:
        with self._lock:
            entries = [_entry("orchestration", (k,), Orchestration, v) for k, v in self._orchestrations.items()]
        # An unreadable record has no status or time: it is listed first, whatever the status asked for.
        bad: list[Orchestration | Unreadable] = [e for e in entries if isinstance(e, Unreadable)]
        found = [e for e in entries if isinstance(e, Orchestration) and (status is None or e.status is status)]
        found.sort(key=lambda o: (o.created_at, o.id), reverse=True)
        return [*bad, *found][:limit]

    def _cas_orchestration(self, orchestration: Orchestration, expected_version: int) -> bool:
        with self._lock:
            return self._cas_orchestration_locked(orchestration, expected_version)

    def _cas_orchestration_locked(self, orchestration: Orchestration, expected_version: int) -> bool:
        stored = self._get_orchestration(orchestration.id)
        if stored.version != expected_version:
            return False
        self._orchestrations[orchestration.id] = orchestration
        return True

    def _insert_wave(self, orchestration: Orchestration, expected_version: int, tasks: list[Task]) -> bool:
        with self._lock:
            if any((t.orchestration_id, t.task_id) in self._tasks for t in tasks):
                return False
            if not self._cas_orchestration_locked(orchestration, expected_version):
                return False
            for task in tasks:
                self._tasks[(task.orchestration_id, task.task_id)] = task
                self._task_order[task.orchestration_id].append(task.task_id)
            self._waves[(orchestration.id, orchestration.wave)] = _Wave(size=len(tasks))
            return True

    def _insert_reactive(self, orchestration: Orchestration, expected_version: int, task: Task) -> InsertOutcome:
        with self._lock:
            if (task.orchestration_id, task.task_id) in self._tasks:
                return "exists"
            wave = self._waves.get((task.orchestration_id, task.wave))
            if wave is None or wave.closed:
                return "closed"
            if not self._cas_orchestration_locked(orchestration, expected_version):
                return "conflict"
            self._tasks[(task.orchestration_id, task.task_id)] = task
            self._task_order[task.orchestration_id].append(task.task_id)
            wave.size += 1
            return "inserted"

    def _get_task(self, orchestration_id: str, task_id: str) -> Task:
        if (orchestration_id, task_id) not in self._tasks:
            raise TaskNotFoundError(orchestration_id, task_id)
        return self._task((orchestration_id, task_id))

    def _list_tasks(self, orchestration_id: str, wave: int | None) -> list[Task | Unreadable]:
        with self._lock:
            keys = [(orchestration_id, t) for t in self._task_order.get(orchestration_id, [])]
            tasks = [_entry("task", k, Task, self._tasks[k]) for k in keys if k in self._tasks]
        return [t for t in tasks if isinstance(t, Unreadable) or wave is None or t.wave == wave]

    def _find_tasks(
        self,
        states: frozenset[TaskState],
        updated_before: datetime | None,
        deadline_before: datetime | None,
        retry_before: datetime | None,
        limit: int,
    ) -> list[Task | Unreadable]:
        with self._lock:
            tasks = [_entry("task", k, Task, v) for k, v in self._tasks.items()]
        found = [
            t
            for t in tasks
            if isinstance(t, Unreadable)
            or (
                t.state in states
                and (updated_before is None or t.updated_at < updated_before)
                and (deadline_before is None or (t.deadline is not None and t.deadline < deadline_before))
                and (retry_before is None or (t.retry_at is not None and t.retry_at <= retry_before))
            )
        ]
        return found[:limit]

    def _apply_task_changes(self, changes: Sequence[tuple[str, str, TaskChange]]) -> list[Transition]:
        results = []
        with self._lock:
            # Stage every change first so that an error half-way leaves nothing applied, as a transaction would.
            staged: dict[tuple[str, str], Task] = {}
            done: dict[tuple[str, int], int] = {}
            for orchestration_id, task_id, change in changes:
                key = (orchestration_id, task_id)
                current = staged.get(key) or self._get_task(orchestration_id, task_id)
                changed = change(current)
                if changed is None:
                    results.append(Transition(False, current))
                    continue
                staged[key] = changed
                closes = False
                if became_done(current, changed):
                    wave_key = (orchestration_id, changed.wave)
                    wave = self._waves[wave_key]
                    done[wave_key] = done.get(wave_key, wave.done) + 1
                    closes = done[wave_key] == wave.size and not wave.closed
                results.append(Transition(True, changed, closes))
            self._tasks.update(staged)
            for wave_key, count in done.items():
                wave = self._waves[wave_key]
                wave.done = count
                wave.closed = wave.closed or count == wave.size
        return results

    def _get_note(self, orchestration_id: str, key: str) -> Note | None:
        stored = self._notes.get((orchestration_id, key))
        return None if stored is None else _record("note", (orchestration_id, key), Note, stored)

    def _list_notes(self, orchestration_id: str) -> list[Note | Unreadable]:
        with self._lock:
            keys = sorted(k for k in self._notes if k[0] == orchestration_id)
            return [_entry("note", k, Note, self._notes[k]) for k in keys]

    def _cas_note(self, note: Note, expected_version: int) -> bool:
        with self._lock:
            stored = self._get_note(note.orchestration_id, note.key)
            if (stored.version if stored else 0) != expected_version:
                return False
            self._notes[(note.orchestration_id, note.key)] = note
            return True

    def _stored_event_id(self, orchestration_id: str) -> str | None:
        with self._lock:
            return next((e for e, o in self._by_event.items() if o == orchestration_id), None)

    def _set_aside(self, entry: Unreadable, replacement: Orchestration | None) -> bool:
        stores: dict[str, dict[Any, Any]] = {
            "orchestration": self._orchestrations,
            "task": self._tasks,
            "note": self._notes,
        }
        store = stores[entry.kind]
        key = entry.key[0] if entry.kind == "orchestration" else entry.key
        with self._lock:
            if key not in store:
                return False
            self.set_aside_records.append((entry, store[key]))
            if replacement is not None:
                store[key] = replacement
            else:
                del store[key]
        return True


class MemoryRegistry(Registry):
    """Registry in a dict, guarded by one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._agents: dict[tuple[str, int], AgentManifest | str] = {}
        self._latest: dict[str, int] = {}
        self._sorted: list[tuple[str, int]] | None = None  # the keys in order, rebuilt after an insert
        self._changes = 0

    def _insert(self, manifest: AgentManifest) -> bool:
        with self._lock:
            if (manifest.name, manifest.version) in self._agents:
                return False
            self._agents[(manifest.name, manifest.version)] = manifest
            self._latest[manifest.name] = max(self._latest.get(manifest.name, 0), manifest.version)
            self._sorted = None
            self._changes += 1
            return True

    def _revision(self) -> int:
        return self._changes

    def _latest_version(self, name: str) -> int:
        return self._latest.get(name, 0)

    def _get(self, name: str, version: int) -> AgentManifest | None:
        stored = self._agents.get((name, version))
        return None if stored is None else _record("agent", (name, str(version)), AgentManifest, stored)

    def _entry(self, key: tuple[str, int]) -> AgentManifest | Unreadable:
        return _entry("agent", (key[0], str(key[1])), AgentManifest, self._agents[key])

    def _versions(self, name: str) -> list[AgentManifest | Unreadable]:
        with self._lock:
            keys = [(name, v) for v in range(1, self._latest.get(name, 0) + 1)]
            return [self._entry(k) for k in keys if k in self._agents]

    def _page(
        self, state: AgentState | None, after: tuple[str, int] | None, limit: int
    ) -> list[AgentManifest | Unreadable]:
        with self._lock:
            if self._sorted is None:
                self._sorted = sorted(self._agents)
            keys = self._sorted
        page: list[AgentManifest | Unreadable] = []
        for key in keys[bisect.bisect_right(keys, after) if after is not None else 0 :]:
            manifest = self._entry(key)
            if state is None or isinstance(manifest, Unreadable) or manifest.state is state:
                page.append(manifest)
                if len(page) == limit:
                    break
        return page

    def _update(self, name: str, version: int, **changes: Any) -> AgentManifest:
        stored = self._get(name, version)
        if stored is None:
            raise AgentNotFoundError(name, version)
        changed = stored.model_copy(update=changes)
        self._agents[(name, version)] = changed
        return changed

    def _cas_state(self, name: str, version: int, source: AgentState, target: AgentState) -> bool:
        with self._lock:
            stored = self._get(name, version)
            if stored is None:
                raise AgentNotFoundError(name, version)
            if stored.state is not source:
                return False
            self._update(name, version, state=target)
            self._changes += 1
            return True

    def _add_stats(self, name: str, version: int, delta: StatsDelta) -> AgentStats:
        with self._lock:
            stored = self._get(name, version)
            if stored is None:
                raise AgentNotFoundError(name, version)
            stats = delta.applied_to(stored.stats)
            self._update(name, version, stats=stats)
            return stats

    def _set_embedding(self, name: str, version: int, embedding: list[float], model: str) -> None:
        with self._lock:
            self._update(name, version, embedding=embedding, embedding_model=model)
            self._changes += 1


class MemoryCodeStore(CodeStore):
    """Blobs in a dict."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}

    def _write(self, key: str, data: bytes, sha256: str) -> None:
        self._blobs[key] = bytes(data)

    def _read(self, key: str) -> bytes | None:
        return self._blobs.get(key)

    def _exists(self, key: str) -> bool:
        return key in self._blobs


@dataclass
class _Entry:
    message_id: str
    body: str
    visible_at: float
    receive_count: int = 0
    receipt: str | None = None


class MemoryTaskQueue(TaskQueue):
    """A queue in process memory; lost when the process ends (the engine's outbox sweep re-sends what was lost)."""

    def __init__(
        self,
        *,
        max_receives: int = 5,
        visibility_timeout: float = 60.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if clock is None:
            super().__init__(max_receives=max_receives, visibility_timeout=visibility_timeout)
        else:
            super().__init__(max_receives=max_receives, visibility_timeout=visibility_timeout, clock=clock)
        self._cond = threading.Condition()
        self._entries: dict[str, _Entry] = {}
        self._receipts: dict[str, str] = {}
        self._dead: list[DeadLetter] = []

    def _send(self, items: list[tuple[str, str]], visible_at: float) -> None:
        with self._cond:
            for message_id, body in items:
                self._entries[message_id] = _Entry(message_id, body, visible_at)
            self._cond.notify_all()

    def _receive(self, max_messages: int, visibility_timeout: float) -> list[Received]:
        now = self._clock()
        received: list[Received] = []
        with self._cond:
            for entry in list(self._entries.values()):
                if entry.visible_at > now:
                    continue
                entry.receive_count += 1
                if entry.receipt is not None:
                    self._receipts.pop(entry.receipt, None)
                    entry.receipt = None
                if self._to_dead_letter(entry.receive_count):
                    del self._entries[entry.message_id]
                    self._dead.append(DeadLetter(entry.message_id, entry.body, entry.receive_count - 1))
                    continue
                entry.receipt = self._receipt()
                entry.visible_at = now + visibility_timeout
                self._receipts[entry.receipt] = entry.message_id
                received.append(Received(entry.message_id, entry.receipt, entry.body, entry.receive_count))
                if len(received) == max_messages:
                    break
        return received

    def _wait(self, seconds: float) -> None:
        with self._cond:
            self._cond.wait(seconds)

    def _ack(self, receipt: str) -> bool:
        with self._cond:
            message_id = self._receipts.pop(receipt, None)
            if message_id is None:
                return False
            del self._entries[message_id]
            return True

    def _nack(self, receipt: str, visible_at: float) -> bool:
        with self._cond:
            message_id = self._receipts.pop(receipt, None)
            if message_id is None:
                return False
            entry = self._entries[message_id]
            entry.receipt = None
            entry.visible_at = visible_at
            self._cond.notify_all()
            return True

    def _dead_letter(self, received: Received) -> bool:
        with self._cond:
            message_id = self._receipts.pop(received.receipt, None)
            if message_id is None:
                return False
            entry = self._entries.pop(message_id)
            self._dead.append(DeadLetter(entry.message_id, entry.body, entry.receive_count))
            return True

    def _dead_letters(self, limit: int) -> list[DeadLetter]:
        with self._cond:
            return self._dead[:limit]

    def _stats(self) -> QueueStats:
        now = self._clock()
        with self._cond:
            in_flight = sum(1 for e in self._entries.values() if e.receipt is not None and e.visible_at > now)
            return QueueStats(len(self._entries) - in_flight, in_flight, len(self._dead))
