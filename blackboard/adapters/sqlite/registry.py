"""The Registry port on SQLite: the manifest as a JSON document, lifecycle state and stats as columns."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from blackboard.adapters.sqlite._database import SqliteDatabase
from blackboard.exceptions import AgentNotFoundError
from blackboard.ports.registry import Registry, StatsDelta
from blackboard.quarantine import Unreadable, load, load_or_raise
from blackboard.records import AgentManifest, AgentStats
from blackboard.states import AgentState

__all__ = ["SqliteRegistry"]

_STATS_COLUMNS = "invocations, succeeded, failed, timed_out, total_ms, tokens, duration_buckets, example_checks"
_COLUMNS = f"doc, state, {_STATS_COLUMNS}"


def _stats(row: tuple[Any, ...]) -> AgentStats:
    """Stats from the :data:`_STATS_COLUMNS` of a row."""
    invocations, succeeded, failed, timed_out, total_ms, tokens, buckets, example_checks = row
    return AgentStats(
        invocations=invocations,
        succeeded=succeeded,
        failed=failed,
        timed_out=timed_out,
        total_ms=total_ms,
        tokens=tokens,
        duration_buckets=json.loads(buckets),
        example_checks=example_checks,
    )


def _manifest(row: tuple[Any, ...]) -> AgentManifest:
    doc, state, *stats = row
    return AgentManifest.model_validate_json(doc).model_copy(
        update={"state": AgentState(state), "stats": _stats(tuple(stats))}
    )


def _entry(row: tuple[Any, ...]) -> AgentManifest | Unreadable:
    """A manifest from ``(name, version, *_COLUMNS)``, or an ``Unreadable`` entry when it fails to load."""
    name, version, *rest = row
    return load("agent", (name, str(version)), lambda: _manifest(tuple(rest)))


def _bump(conn: sqlite3.Connection) -> None:
    """Count a change that matching cares about (not stats), in the same transaction as the change."""
    conn.execute(
        "INSERT INTO revisions (name, value) VALUES ('registry', 1) ON CONFLICT (name) DO UPDATE SET value = value + 1"
    )


class SqliteRegistry(Registry):
    """Registry in an :class:`SqliteDatabase`."""

    def __init__(self, database: SqliteDatabase) -> None:
        self.database = database

    def _insert(self, manifest: AgentManifest) -> bool:
        with self.database.write() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO agents (name, version, state, doc) VALUES (?, ?, ?, ?)",
                (manifest.name, manifest.version, manifest.state.value, manifest.model_dump_json(by_alias=True)),
            )
            if cursor.rowcount == 1:
                _bump(conn)
            return cursor.rowcount == 1

    def _revision(self) -> int:
        with self.database.read() as conn:
            row = conn.execute("SELECT value FROM revisions WHERE name = 'registry'").fetchone()
        return int(row[0]) if row else 0

    def _latest_version(self, name: str) -> int:
        with self.database.read() as conn:
            row = conn.execute("SELECT MAX(version) FROM agents WHERE name = ?", (name,)).fetchone()
        return int(row[0] or 0)

    def _get(self, name: str, version: int) -> AgentManifest | None:
        with self.database.read() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM agents WHERE name = ? AND version = ?", (name, version)
            ).fetchone()
        return None if row is None else load_or_raise("agent", (name, str(version)), lambda: _manifest(row))

    def _versions(self, name: str) -> list[AgentManifest | Unreadable]:
        with self.database.read() as conn:
            rows = conn.execute(
                f"SELECT name, version, {_COLUMNS} FROM agents WHERE name = ? ORDER BY version", (name,)
            ).fetchall()
        return [_entry(row) for row in rows]

    def _page(
        self, state: AgentState | None, after: tuple[str, int] | None, limit: int
    ) -> list[AgentManifest | Unreadable]:
        clauses: list[str] = []
        params: list[object] = []
        if state is not None:
            clauses.append("state = ?")
            params.append(state.value)
        if after is not None:
            clauses.append("(name, version) > (?, ?)")
            params.extend(after)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self.database.read() as conn:
            rows = conn.execute(
                f"SELECT name, version, {_COLUMNS} FROM agents{where} ORDER BY name, version LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [_entry(row) for row in rows]

    def _cas_state(self, name: str, version: int, source: AgentState, target: AgentState) -> bool:
        with self.database.write() as conn:
            cursor = conn.execute(
                "UPDATE agents SET state = ? WHERE name = ? AND version = ? AND state = ?",
                (target.value, name, version, source.value),
            )
            if cursor.rowcount == 0:
                self._require(conn, name, version)
            else:
                _bump(conn)
            return cursor.rowcount == 1

    def _add_stats(self, name: str, version: int, delta: StatsDelta) -> AgentStats:
        # The histogram is a JSON list: read, add and write it inside the write transaction, which holds the
        # database's write lock, so concurrent writers (threads or processes) queue instead of losing counts.
        with self.database.write() as conn:
            row = conn.execute(
                f"SELECT {_STATS_COLUMNS} FROM agents WHERE name = ? AND version = ?", (name, version)
            ).fetchone()
            if row is None:
                raise AgentNotFoundError(name, version)
            stored = _stats(row)
            stats = delta.applied_to(stored)
            conn.execute(
                "UPDATE agents SET invocations = ?, succeeded = ?, failed = ?, timed_out = ?, total_ms = ?, tokens = ?,"
                " duration_buckets = ?, example_checks = ? WHERE name = ? AND version = ?",
                (
                    stats.invocations,
                    stats.succeeded,
                    stats.failed,
                    stats.timed_out,
                    stats.total_ms,
                    stats.tokens,
                    json.dumps(stats.duration_buckets),
                    stats.example_checks,
                    name,
                    version,
                ),
            )
        return stats

    def _set_embedding(self, name: str, version: int, embedding: list[float], model: str) -> None:
        with self.database.write() as conn:
            row = conn.execute("SELECT doc FROM agents WHERE name = ? AND version = ?", (name, version)).fetchone()
            if row is None:
                raise AgentNotFoundError(name, version)
            doc = json.loads(row[0])
            doc.update(embedding=embedding, embedding_model=model)
            conn.execute("UPDATE agents SET doc = ? WHERE name = ? AND version = ?", (json.dumps(doc), name, version))
            _bump(conn)

    @staticmethod
    def _require(conn: sqlite3.Connection, name: str, version: int) -> None:
        if conn.execute("SELECT 1 FROM agents WHERE name = ? AND version = ?", (name, version)).fetchone() is None:
            raise AgentNotFoundError(name, version)
