"""The Blackboard port on SQLite: one row per record (JSON document plus the columns the queries need)."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import cast

from blackboard._base import utcnow
from blackboard.adapters.sqlite._database import SqliteDatabase
from blackboard.adapters.sqlite._parsed import ParsedOrchestrations, WrittenTasks
from blackboard.exceptions import InvalidTransitionError, OrchestrationNotFoundError, TaskNotFoundError
from blackboard.ports.blackboard import Blackboard, InsertOutcome, TaskChange, Transition, became_done
from blackboard.quarantine import Unreadable, load, load_or_raise
from blackboard.records import Note, Orchestration, Task
from blackboard.states import OrchestrationStatus, TaskState

__all__ = ["SqliteBlackboard"]


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _orchestration(orchestration_id: str, doc: str) -> Orchestration:
    return load_or_raise("orchestration", (orchestration_id,), lambda: Orchestration.model_validate_json(doc))


def _task(orchestration_id: str, task_id: str, doc: str) -> Task:
    return load_or_raise("task", (orchestration_id, task_id), lambda: Task.model_validate_json(doc))


def _task_row(task: Task) -> tuple[object, ...]:
    return (
        task.state.value,
        task.attempt,
        _ts(task.updated_at),
        _ts(task.deadline),
        _ts(task.retry_at),
        task.model_dump_json(by_alias=True),
        task.orchestration_id,
        task.task_id,
    )


def _load_task(row: tuple[str, str, str]) -> Task | Unreadable:
    return load("task", (row[0], row[1]), lambda: Task.model_validate_json(row[2]))


_UPDATE_TASK = (
    "UPDATE tasks SET state = ?, attempt = ?, updated_at = ?, deadline = ?, retry_at = ?, doc = ?"
    " WHERE orchestration_id = ? AND task_id = ?"
)

#: Where each kind of record lives: its table and key columns.
_PLACES = {
    "orchestration": ("orchestrations", ("id",)),
    "task": ("tasks", ("orchestration_id", "task_id")),
    "note": ("notes", ("orchestration_id", "key")),
}


class SqliteBlackboard(Blackboard):
    """Blackboard in an :class:`SqliteDatabase`; many threads and processes may share the file.

    Orchestrations it last wrote or read are kept parsed (:mod:`~blackboard.adapters.sqlite._parsed`): a read of
    one that has not changed since checks its version and length and neither transfers nor parses its document.
    Tasks it last wrote are kept too: a change to one is written on condition that its stored document is still the
    one written, without reading it first (a task changed elsewhere since is read as usual).

    Args:
        database: the store.
        clock: returns "now" (aware UTC).
    """

    def __init__(self, database: SqliteDatabase, *, clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__(clock=clock)
        self.database = database
        self._parsed = ParsedOrchestrations()
        self._written = WrittenTasks()

    # ---------------------------------------------------------------- orchestrations

    def _insert_orchestration(self, orchestration: Orchestration) -> Orchestration | None:
        doc = orchestration.model_dump_json(by_alias=True)
        with self.database.write() as conn:
            row = conn.execute(
                "SELECT id, doc FROM orchestrations WHERE event_id = ? OR id = ?",
                (orchestration.event.id, orchestration.id),
            ).fetchone()
            if row is not None:
                return _orchestration(row[0], row[1])
            conn.execute(
                "INSERT INTO orchestrations (id, event_id, status, version, created_at, doc) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    orchestration.id,
                    orchestration.event.id,
                    orchestration.status.value,
                    orchestration.version,
                    orchestration.created_at.timestamp(),
                    doc,
                ),
            )
        self._parsed.remember(orchestration, len(doc))
        return None

    def _get_orchestration(self, orchestration_id: str) -> Orchestration:
        found = self._fetch_orchestration(orchestration_id, self._parsed.stamp(orchestration_id))
        if found is None:  # the kept record was evicted between the two looks: read the document whole
            found = self._fetch_orchestration(orchestration_id, (-1, -1))
        return cast(Orchestration, found)  # a stamp that matches no row always fetches the document

    def _fetch_orchestration(self, orchestration_id: str, stamp: tuple[int, int]) -> Orchestration | None:
        """The stored orchestration: the kept record when it still has ``stamp`` (version, length), else parsed."""
        with self.database.read() as conn:
            row = conn.execute(
                "SELECT version, length(doc), CASE WHEN version = ? AND length(doc) = ? THEN NULL ELSE doc END"
                " FROM orchestrations WHERE id = ?",
                (*stamp, orchestration_id),
            ).fetchone()
        if row is None:
            raise OrchestrationNotFoundError(orchestration_id)
        if row[2] is None:
            return self._parsed.get(orchestration_id, row[0], row[1])
        orchestration = _orchestration(orchestration_id, row[2])
        self._parsed.remember(orchestration, row[1])
        return orchestration

    def _find_orchestration(self, event_id: str) -> Orchestration | None:
        with self.database.read() as conn:
            row = conn.execute("SELECT id, doc FROM orchestrations WHERE event_id = ?", (event_id,)).fetchone()
        return None if row is None else _orchestration(row[0], row[1])

    def _list_orchestrations(self, status: OrchestrationStatus | None, limit: int) -> list[Orchestration | Unreadable]:
        sql = "SELECT id, version, length(doc) FROM orchestrations"
        params: tuple[object, ...] = ()
        if status is not None:
            sql += " WHERE status = ?"
            params = (status.value,)
        listed: list[Orchestration | Unreadable] = []
        with self.database.read() as conn:
            rows = conn.execute(f"{sql} ORDER BY created_at DESC, id DESC LIMIT ?", (*params, limit)).fetchall()
            for orchestration_id, version, length in rows:
                kept = self._parsed.get(orchestration_id, version, length)
                if kept is not None:
                    listed.append(kept)
                    continue
                row = conn.execute("SELECT doc FROM orchestrations WHERE id = ?", (orchestration_id,)).fetchone()
                if row is not None:  # else deleted since it was listed
                    listed.append(self._parse_listed(orchestration_id, row[0]))
        return listed

    def _parse_listed(self, orchestration_id: str, doc: str) -> Orchestration | Unreadable:
        loaded = load("orchestration", (orchestration_id,), functools.partial(Orchestration.model_validate_json, doc))
        if isinstance(loaded, Orchestration):
            self._parsed.remember(loaded, len(doc))
        return loaded

    def _cas_orchestration(self, orchestration: Orchestration, expected_version: int) -> bool:
        doc = orchestration.model_dump_json(by_alias=True)
        with self.database.write() as conn:
            applied = self._cas_orchestration_in(conn, orchestration, doc, expected_version)
        if applied:
            self._parsed.remember(orchestration, len(doc))
        return applied

    @staticmethod
    def _cas_orchestration_in(
        conn: sqlite3.Connection, orchestration: Orchestration, doc: str, expected_version: int
    ) -> bool:
        cursor = conn.execute(
            "UPDATE orchestrations SET status = ?, version = ?, doc = ? WHERE id = ? AND version = ?",
            (orchestration.status.value, orchestration.version, doc, orchestration.id, expected_version),
        )
        return cursor.rowcount == 1

    def _insert_wave(self, orchestration: Orchestration, expected_version: int, tasks: list[Task]) -> bool:
        doc = orchestration.model_dump_json(by_alias=True)
        try:
            with self.database.write() as conn:
                if not self._cas_orchestration_in(conn, orchestration, doc, expected_version):
                    return False
                rows = [(*_task_row(task), task.wave) for task in tasks]
                conn.executemany(
                    "INSERT INTO tasks (state, attempt, updated_at, deadline, retry_at, doc, orchestration_id, task_id,"
                    " wave) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                conn.execute(
                    "INSERT INTO waves (orchestration_id, wave, size, done, closed) VALUES (?, ?, ?, 0, 0)",
                    (orchestration.id, orchestration.wave, len(tasks)),
                )
        except sqlite3.IntegrityError:
            # A task id already used in an earlier wave: the transaction rolled back, nothing was written.
            return False
        self._parsed.remember(orchestration, len(doc))
        self._written.remember([(task, cast(str, row[5])) for task, row in zip(tasks, rows, strict=True)])
        return True

    def _insert_reactive(self, orchestration: Orchestration, expected_version: int, task: Task) -> InsertOutcome:
        doc = orchestration.model_dump_json(by_alias=True)
        with self.database.write() as conn:
            exists = conn.execute(
                "SELECT 1 FROM tasks WHERE orchestration_id = ? AND task_id = ?", (task.orchestration_id, task.task_id)
            ).fetchone()
            if exists is not None:
                return "exists"
            # BEGIN IMMEDIATE holds the write lock: the wave read here is the one updated below.
            wave = conn.execute(
                "SELECT closed FROM waves WHERE orchestration_id = ? AND wave = ?", (task.orchestration_id, task.wave)
            ).fetchone()
            if wave is None or wave[0]:
                return "closed"
            if not self._cas_orchestration_in(conn, orchestration, doc, expected_version):
                return "conflict"
            conn.execute(
                "UPDATE waves SET size = size + 1 WHERE orchestration_id = ? AND wave = ?",
                (task.orchestration_id, task.wave),
            )
            conn.execute(
                "INSERT INTO tasks (state, attempt, updated_at, deadline, retry_at, doc, orchestration_id, task_id,"
                " wave) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*_task_row(task), task.wave),
            )
        self._parsed.remember(orchestration, len(doc))
        return "inserted"

    # ---------------------------------------------------------------- tasks

    def _get_task(self, orchestration_id: str, task_id: str) -> Task:
        row = self._one("SELECT doc FROM tasks WHERE orchestration_id = ? AND task_id = ?", (orchestration_id, task_id))
        if row is None:
            raise TaskNotFoundError(orchestration_id, task_id)
        return _task(orchestration_id, task_id, row[0])

    def _list_tasks(self, orchestration_id: str, wave: int | None) -> list[Task | Unreadable]:
        sql = "SELECT orchestration_id, task_id, doc FROM tasks WHERE orchestration_id = ?"
        params: tuple[object, ...] = (orchestration_id,)
        if wave is not None:
            sql += " AND wave = ?"
            params = (*params, wave)
        with self.database.read() as conn:
            rows = conn.execute(f"{sql} ORDER BY rowid", params).fetchall()
        return [_load_task(row) for row in rows]

    def _find_tasks(
        self,
        states: frozenset[TaskState],
        updated_before: datetime | None,
        deadline_before: datetime | None,
        retry_before: datetime | None,
        limit: int,
    ) -> list[Task | Unreadable]:
        if not states:
            return []
        clauses = [f"state IN ({', '.join('?' for _ in states)})"]
        params: list[object] = [s.value for s in sorted(states)]
        for column, op, bound in (
            ("updated_at", "<", updated_before),
            ("deadline", "<", deadline_before),
            ("retry_at", "<=", retry_before),
        ):
            if bound is not None:
                clauses.append(f"{column} {op} ?")
                params.append(bound.timestamp())
        with self.database.read() as conn:
            rows = conn.execute(
                f"SELECT orchestration_id, task_id, doc FROM tasks WHERE {' AND '.join(clauses)}"
                " ORDER BY updated_at LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [_load_task(row) for row in rows]

    def _apply_task_changes(self, changes: Sequence[tuple[str, str, TaskChange]]) -> list[Transition]:
        results: list[Transition] = []
        written: list[tuple[Task, str]] = []
        with self.database.write() as conn:
            for orchestration_id, task_id, change in changes:
                kept = self._change_written(conn, orchestration_id, task_id, change)
                transition, doc = kept or self._change_read(conn, orchestration_id, task_id, change)
                results.append(transition)
                if doc is not None:
                    written.append((transition.task, doc))
        self._written.remember(written)
        return results

    def _change_written(
        self, conn: sqlite3.Connection, orchestration_id: str, task_id: str, change: TaskChange
    ) -> tuple[Transition, str] | None:
        """Apply ``change`` to the task as this adapter wrote it, if it is still stored so; ``None``: read it."""
        kept = self._written.get(orchestration_id, task_id)
        if kept is None:
            return None
        current, doc = kept
        try:
            changed = change(current)
        except InvalidTransitionError:
            return None  # not from the state kept: perhaps from the one stored since
        if changed is None:
            return None  # "not applied" is answered with the task as stored, read
        values = _task_row(changed)
        if conn.execute(f"{_UPDATE_TASK} AND doc = ?", (*values, doc)).rowcount != 1:
            return None
        return Transition(True, changed, self._count_done(conn, current, changed)), cast(str, values[5])

    def _change_read(
        self, conn: sqlite3.Connection, orchestration_id: str, task_id: str, change: TaskChange
    ) -> tuple[Transition, str | None]:
        row = conn.execute(
            "SELECT doc FROM tasks WHERE orchestration_id = ? AND task_id = ?", (orchestration_id, task_id)
        ).fetchone()
        if row is None:
            raise TaskNotFoundError(orchestration_id, task_id)
        current = _task(orchestration_id, task_id, row[0])
        changed = change(current)
        if changed is None:
            return Transition(False, current), None
        values = _task_row(changed)
        conn.execute(_UPDATE_TASK, values)
        return Transition(True, changed, self._count_done(conn, current, changed)), cast(str, values[5])

    @staticmethod
    def _count_done(conn: sqlite3.Connection, before: Task, after: Task) -> bool:
        """Count a newly done task in its wave; return whether this change closed the wave."""
        if not became_done(before, after):
            return False
        # A wave closes when its count reaches its size, and a task joins a wave only while it is open: the count
        # equals the size right after this update only for the update that closed the wave.
        row = conn.execute(
            "UPDATE waves SET done = done + 1, closed = CASE WHEN done + 1 = size THEN 1 ELSE closed END"
            " WHERE orchestration_id = ? AND wave = ? RETURNING done = size AND closed",
            (after.orchestration_id, after.wave),
        ).fetchone()
        return row is not None and bool(row[0])

    # ---------------------------------------------------------------- notes

    def _get_note(self, orchestration_id: str, key: str) -> Note | None:
        row = self._one("SELECT doc FROM notes WHERE orchestration_id = ? AND key = ?", (orchestration_id, key))
        if row is None:
            return None
        return load_or_raise("note", (orchestration_id, key), lambda: Note.model_validate_json(row[0]))

    def _list_notes(self, orchestration_id: str) -> list[Note | Unreadable]:
        with self.database.read() as conn:
            rows = conn.execute(
                "SELECT key, doc FROM notes WHERE orchestration_id = ? ORDER BY key", (orchestration_id,)
            ).fetchall()
        return [
            load("note", (orchestration_id, key), functools.partial(Note.model_validate_json, doc)) for key, doc in rows
        ]

    def _cas_note(self, note: Note, expected_version: int) -> bool:
        doc = note.model_dump_json(by_alias=True)
        with self.database.write() as conn:
            if expected_version == 0:
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO notes (orchestration_id, key, version, doc) VALUES (?, ?, ?, ?)",
                    (note.orchestration_id, note.key, note.version, doc),
                )
            else:
                cursor = conn.execute(
                    "UPDATE notes SET version = ?, doc = ? WHERE orchestration_id = ? AND key = ? AND version = ?",
                    (note.version, doc, note.orchestration_id, note.key, expected_version),
                )
            return cursor.rowcount == 1

    # ---------------------------------------------------------------- unreadable records

    def _stored_event_id(self, orchestration_id: str) -> str | None:
        row = self._one("SELECT event_id FROM orchestrations WHERE id = ?", (orchestration_id,))
        return None if row is None else row[0]

    def _set_aside(self, entry: Unreadable, replacement: Orchestration | None) -> bool:
        table, columns = _PLACES[entry.kind]
        where = " AND ".join(f"{column} = ?" for column in columns)
        with self.database.write() as conn:
            row = conn.execute(f"SELECT doc FROM {table} WHERE {where}", entry.key).fetchone()
            if row is None:
                return False
            conn.execute(
                "INSERT INTO quarantine (kind, key, doc, reason, set_aside_at) VALUES (?, ?, ?, ?, ?)",
                (entry.kind, "/".join(entry.key), row[0], entry.reason, self._clock().timestamp()),
            )
            if replacement is None:
                conn.execute(f"DELETE FROM {table} WHERE {where}", entry.key)
            else:
                conn.execute(
                    "UPDATE orchestrations SET status = ?, version = ?, doc = ? WHERE id = ?",
                    (
                        replacement.status.value,
                        replacement.version,
                        replacement.model_dump_json(by_alias=True),
                        replacement.id,
                    ),
                )
        if entry.kind == "orchestration":
            self._parsed.forget(entry.key[0])
        return True

    def _one(self, sql: str, params: tuple[object, ...]) -> tuple[str] | None:
        with self.database.read() as conn:
            row: tuple[str] | None = conn.execute(sql, params).fetchone()
        return row
