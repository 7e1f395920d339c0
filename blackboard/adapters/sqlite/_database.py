"""One SQLite file shared by threads and processes: connections, transactions, schema, error translation."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from blackboard.exceptions import ConfigurationError, StoreCorruptError, StoreUnavailableError

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "SqliteDatabase"]

logger = logging.getLogger(__name__)

#: Written into the file header so that a foreign SQLite file is never mistaken for a store ("ARB1").
APPLICATION_ID = 0x41524231
SCHEMA_VERSION = 1
_HEADER = b"SQLite format 3\x00"
#: Idle connections kept for the next transaction; more than this many at once are closed when they are given back.
_MAX_IDLE = 16

_SCHEMA = """
CREATE TABLE orchestrations (
    id TEXT PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, status TEXT NOT NULL, version INTEGER NOT NULL,
    created_at REAL NOT NULL, doc TEXT NOT NULL);
CREATE INDEX orchestrations_by_status ON orchestrations (status, created_at);
CREATE TABLE tasks (
    orchestration_id TEXT NOT NULL, task_id TEXT NOT NULL, wave INTEGER NOT NULL, state TEXT NOT NULL,
    attempt INTEGER NOT NULL, updated_at REAL NOT NULL, deadline REAL, retry_at REAL, doc TEXT NOT NULL,
    UNIQUE (orchestration_id, task_id));
CREATE INDEX tasks_by_state ON tasks (state, updated_at);
CREATE TABLE waves (
    orchestration_id TEXT NOT NULL, wave INTEGER NOT NULL, size INTEGER NOT NULL, done INTEGER NOT NULL,
    closed INTEGER NOT NULL, PRIMARY KEY (orchestration_id, wave)) WITHOUT ROWID;
CREATE TABLE notes (
    orchestration_id TEXT NOT NULL, key TEXT NOT NULL, version INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (orchestration_id, key)) WITHOUT ROWID;
CREATE TABLE agents (
    name TEXT NOT NULL, version INTEGER NOT NULL, state TEXT NOT NULL, doc TEXT NOT NULL,
    invocations INTEGER NOT NULL DEFAULT 0, succeeded INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
    timed_out INTEGER NOT NULL DEFAULT 0, total_ms REAL NOT NULL DEFAULT 0, tokens INTEGER NOT NULL DEFAULT 0,
    duration_buckets TEXT NOT NULL DEFAULT '[]', example_checks INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (name, version)) WITHOUT ROWID;
CREATE INDEX agents_by_state ON agents (state, name, version);
CREATE TABLE queue_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, message_id TEXT NOT NULL UNIQUE, body TEXT NOT NULL,
    visible_at REAL NOT NULL, receive_count INTEGER NOT NULL DEFAULT 0, receipt TEXT UNIQUE,
    dead INTEGER NOT NULL DEFAULT 0);
CREATE INDEX queue_messages_visible ON queue_messages (queue, dead, visible_at, seq);
CREATE TABLE IF NOT EXISTS revisions (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS quarantine (
    kind TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL, reason TEXT NOT NULL, set_aside_at REAL NOT NULL);
"""
#: Tables added after a schema version was released are created on open, so older files keep working.
_ADDED = (
    "CREATE TABLE IF NOT EXISTS revisions (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
    # Records that `arbiter doctor --repair` set aside because they could not be read (kept for inspection).
    "CREATE TABLE IF NOT EXISTS quarantine (kind TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL,"
    " reason TEXT NOT NULL, set_aside_at REAL NOT NULL)",
)
#: Columns added after a schema version was released: (table, column, definition), added on open where missing.
_ADDED_COLUMNS = (
    ("agents", "duration_buckets", "TEXT NOT NULL DEFAULT '[]'"),
    ("agents", "example_checks", "INTEGER NOT NULL DEFAULT 0"),
)


class SqliteDatabase:
    """An Arbiter store in one SQLite file, safe to share between threads and processes.

    Connections are pooled: a transaction takes an idle connection (or opens one) and gives it back when it ends,
    so a thread that lives for one task (a trusted call's) costs no connection of its own, and the number open is
    the number of transactions that ran at once, not the number of threads that ever ran one. A forked child opens
    its own and never uses or closes its parent's. The file runs in WAL mode; write
    transactions start with ``BEGIN IMMEDIATE`` so that concurrent writers queue on the lock (up to
    ``busy_timeout`` seconds) instead of failing half-way.

    Args:
        path: the database file; its directory is created if missing.
        busy_timeout: seconds a writer waits for the lock before :class:`StoreUnavailableError`.
        synchronous: SQLite ``synchronous`` pragma; ``NORMAL`` (the default) is durable against process crashes
            and keeps the last transactions at risk only on power loss; ``FULL`` also survives power loss.

    Raises:
        StoreCorruptError: the file is not an SQLite database, is another program's database, or is from a newer
            version of this library.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0, synchronous: str = "NORMAL"
    ) -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ConfigurationError(f"unknown synchronous mode {synchronous!r}")
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._synchronous = synchronous.upper()
        self._lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._pid = os.getpid()
        self._connections: list[sqlite3.Connection] = []  # every connection this process opened and has not closed
        self._idle: list[sqlite3.Connection] = []
        self._inherited: list[sqlite3.Connection] = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"cannot create the directory of {self.path}: {exc}") from exc
        self._check_header()
        self._prepare()

    # ---------------------------------------------------------------- connections and transactions

    @property
    def open_connections(self) -> int:
        """Connections this process has open on the file (idle or in a transaction)."""
        with self._lock:
            return len(self._connections) if self._pid == os.getpid() else 0

    @contextmanager
    def _lease(self) -> Iterator[sqlite3.Connection]:
        """A connection for one transaction (or one statement outside any), given back to the pool afterwards."""
        conn = self._acquire()
        try:
            yield conn
        finally:
            self._release(conn)

    def _acquire(self) -> sqlite3.Connection:
        with self._lock:
            if self._pid != os.getpid():
                # Forked: never use (or close) a connection across fork; keep them referenced so that they are not
                # closed under the parent either.
                self._inherited += self._connections
                self._connections, self._idle, self._pid = [], [], os.getpid()
            if self._idle:
                return self._idle.pop()
        conn = self._open()
        with self._lock:
            self._connections.append(conn)
        return conn

    def _release(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:  # a COMMIT or ROLLBACK that failed: never hand a half-done transaction on
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                self._discard(conn)
                return
        with self._lock:
            if any(conn is mine for mine in self._connections) and len(self._idle) < _MAX_IDLE:
                self._idle.append(conn)
                return
        self._discard(conn)

    def _discard(self, conn: sqlite3.Connection) -> None:
        """Close a connection this thread is done with (also one that was in use when :meth:`close` ran)."""
        with self._lock:
            if self._pid != os.getpid() or any(conn is theirs for theirs in self._inherited):
                return  # a parent's: never closed under it
            self._connections = [mine for mine in self._connections if mine is not conn]
        conn.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: ``BEGIN IMMEDIATE``, commit on success, roll back on any exception.

        Writers of this process queue on a lock first: SQLite's own busy handler sleeps whole milliseconds between
        tries, which would dominate short transactions; it still arbitrates between processes.
        """
        with self._write_lock, self._lease() as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                self._reraise(exc)

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: one consistent snapshot for several statements."""
        with self._lease() as conn:
            try:
                conn.execute("BEGIN")
                try:
                    yield conn
                finally:
                    conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                self._reraise(exc)

    def close(self) -> None:
        """Close every connection this object opened in this process.

        The idle ones are closed at once; one in use by another thread's transaction is closed when that
        transaction ends (closing a connection under a running statement crashes the interpreter). A later use of
        this object opens a new connection.
        """
        with self._lock:
            if self._pid != os.getpid():
                return  # a forked child's copy: those are the parent's
            idle, self._connections, self._idle = self._idle, [], []
        for conn in idle:
            conn.close()

    # ---------------------------------------------------------------- set-up

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL, waiting up to ``busy_timeout`` for processes that open it at the same time.

        The switch needs the file to itself, and SQLite answers "database is locked" at once, without its busy
        handler, to a connection that would otherwise deadlock with another one opening a new file: so it is
        tried again here.
        """
        deadline = time.monotonic() + self._busy_timeout
        pause = 0.005
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.DatabaseError as exc:
                if not (isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)):
                    raise self._translate(exc) or StoreCorruptError(str(self.path), str(exc)) from exc
                if time.monotonic() + pause > deadline:
                    raise StoreUnavailableError(f"{self.path}: {exc}") from exc
            time.sleep(pause)
            pause = min(pause * 2, 0.2)

    def _open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout * 1000)}")
        except sqlite3.DatabaseError as exc:
            raise self._translate(exc) or StoreUnavailableError(f"{self.path}: {exc}") from exc
        return conn

    def _check_header(self) -> None:
        try:
            with self.path.open("rb") as handle:
                header = handle.read(len(_HEADER))
        except FileNotFoundError:
            return
        except IsADirectoryError:
            raise StoreCorruptError(str(self.path), "is a directory, not a database file") from None
        except OSError as exc:
            raise StoreCorruptError(str(self.path), f"cannot be read: {exc}") from None
        if header and header != _HEADER:
            raise StoreCorruptError(str(self.path), "is not an SQLite database (corrupt, or some other file)")

    def _prepare(self) -> None:
        with self._lease() as conn:
            self._use_wal(conn)
        with self.write() as conn:
            application_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            if application_id == 0 and not tables:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                logger.debug("path=<%s> | created store schema version %d", self.path, SCHEMA_VERSION)
                return
        if application_id != APPLICATION_ID:
            shown = ", ".join(sorted(tables)[:5])
            raise StoreCorruptError(str(self.path), f"is an SQLite database of another program (tables: {shown})")
        if version > SCHEMA_VERSION:
            raise StoreCorruptError(
                str(self.path), f"has schema version {version}; this version of Arbiter reads up to {SCHEMA_VERSION}"
            )
        with self.write() as conn:
            for statement in _ADDED:
                conn.execute(statement)
            for table, column, definition in _ADDED_COLUMNS:
                present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
                if column not in present:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")

    def _reraise(self, exc: sqlite3.DatabaseError) -> NoReturn:
        translated = self._translate(exc)
        if translated is None:
            raise exc
        raise translated from exc

    def _translate(self, exc: sqlite3.DatabaseError) -> Exception | None:
        """Map an SQLite error to this package's errors (``None``: let it through unchanged)."""
        if isinstance(exc, sqlite3.IntegrityError):
            return None
        name = getattr(exc, "sqlite_errorname", "")
        if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
            return StoreCorruptError(str(self.path), str(exc))
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_FULL")):
            return StoreUnavailableError(f"{self.path}: {exc}")
        return None
