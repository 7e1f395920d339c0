"""The SQLite store file: creation, reopening, and clear errors for corrupt, foreign or newer files."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from blackboard import ConfigurationError, StoreCorruptError, StoreUnavailableError, TaskState, local_backends
from blackboard.adapters.sqlite import SqliteDatabase, SqliteRegistry
from blackboard.adapters.sqlite._database import SCHEMA_VERSION
from blackboard.constants import ENV_HOME
from tests.conformance.builders import manifest, started


def test_state_survives_reopening(tmp_path: Path) -> None:
    first = local_backends(tmp_path)
    created = started(first.blackboard)
    ref = first.code_store.put(b"code")
    first.close()
    again = local_backends(tmp_path)
    assert again.blackboard.get_orchestration(created.id) == created
    assert again.code_store.get(ref.sha256) == b"code"
    assert (tmp_path / "arbiter.db").is_file() and (tmp_path / "code" / ref.sha256).is_file()
    again.close()


def test_home_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_HOME, str(tmp_path / "from-env"))
    backends = local_backends()
    backends.close()
    assert (tmp_path / "from-env" / "arbiter.db").is_file()


def test_wal_mode(tmp_path: Path) -> None:
    database = SqliteDatabase(tmp_path / "a.db")
    with database.read() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    database.close()


def test_short_lived_threads_share_pooled_connections(tmp_path: Path) -> None:
    # A trusted call runs on a thread of its own: a connection per thread would be one per task, never closed.
    database = SqliteDatabase(tmp_path / "a.db")
    for _ in range(50):
        thread = threading.Thread(target=_one_read, args=(database,))
        thread.start()
        thread.join()
    assert database.open_connections == 1
    database.close()
    assert database.open_connections == 0


def test_concurrent_transactions_each_get_a_connection(tmp_path: Path) -> None:
    database = SqliteDatabase(tmp_path / "a.db")
    barrier = threading.Barrier(4)

    def hold() -> None:
        with database.read():
            barrier.wait(timeout=10)

    threads = [threading.Thread(target=hold) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert database.open_connections == 4  # kept for the next ones (up to the idle bound)
    database.close()


_CLOSE_UNDER_A_WRITER = """
import sys, threading
from blackboard.adapters.sqlite import SqliteDatabase

database = SqliteDatabase(sys.argv[1])
with database.write() as conn:
    conn.execute("CREATE TABLE t (x INTEGER)")
inside, closed = threading.Event(), threading.Event()
rows = []

def writer():
    with database.write() as conn:
        inside.set()
        closed.wait(10)
        for i in range(2000):
            conn.execute("INSERT INTO t VALUES (?)", (i,))
        rows.append(conn.execute("SELECT count(*) FROM t").fetchone()[0])

thread = threading.Thread(target=writer)
thread.start()
inside.wait(10)
database.close()
closed.set()
thread.join(10)
assert rows == [2000], rows
assert database.open_connections == 0
with database.read() as conn:
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 2000
database.close()
print("ok")
"""


def test_closing_while_another_thread_is_inside_a_transaction_lets_it_finish(tmp_path: Path) -> None:
    # A worker thread that stepped aside for a hung call acks its message once the call returns, maybe after the
    # runtime closed its stores: closing that connection under the statement crashed the interpreter. Run in a child
    # so that such a crash is a failed test, not a lost test run.
    root = Path(__file__).resolve().parents[2]
    child = subprocess.run(
        [sys.executable, "-c", _CLOSE_UNDER_A_WRITER, str(tmp_path / "a.db")],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 0 and child.stdout.strip() == "ok", child.stderr[-2000:]


def test_a_failed_transaction_does_not_leak_into_the_next(tmp_path: Path) -> None:
    database = SqliteDatabase(tmp_path / "a.db")
    with database.write() as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
    with pytest.raises(RuntimeError), database.write() as conn:
        conn.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("the caller failed half-way")
    with database.read() as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0
        assert conn.in_transaction
    database.close()


def _one_read(database: SqliteDatabase) -> None:
    with database.read() as conn:
        conn.execute("SELECT 1").fetchone()


def test_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "arbiter.db"
    path.write_text("these are my notes, not a database\n" * 20)
    with pytest.raises(StoreCorruptError, match="not an SQLite database") as raised:
        SqliteDatabase(path)
    assert raised.value.path == str(path)
    assert path.read_text().startswith("these are my notes")  # left untouched


def test_truncated_database(tmp_path: Path) -> None:
    path = tmp_path / "arbiter.db"
    backends = local_backends(tmp_path)
    started(backends.blackboard)
    backends.close()
    data = path.read_bytes()
    path.write_bytes(data[:100] + b"\x00garbage" * 200)
    with pytest.raises(StoreCorruptError):
        backends = local_backends(tmp_path)
        started(backends.blackboard)


def test_foreign_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "arbiter.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreCorruptError, match=r"another program.*invoices"):
        SqliteDatabase(path)


def test_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "arbiter.db"
    SqliteDatabase(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreCorruptError, match="schema version"):
        SqliteDatabase(path)


def test_path_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "arbiter.db").mkdir()
    with pytest.raises(StoreCorruptError, match="directory"):
        SqliteDatabase(tmp_path / "arbiter.db")


def test_home_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigurationError):
        local_backends(tmp_path / "file" / "home")


def test_unknown_synchronous_mode(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        SqliteDatabase(tmp_path / "a.db", synchronous="SOMETIMES")


def test_usable_after_fork(tmp_path: Path) -> None:
    backends = local_backends(tmp_path)
    created = started(backends.blackboard)
    pid = os.fork()
    if pid == 0:  # child: the inherited connection must not be reused
        code = 0
        try:
            backends.blackboard.update_orchestration(created, output="from child")
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert backends.blackboard.get_orchestration(created.id).output == "from child"
    backends.close()


def test_concurrent_first_open_creates_the_schema_once(tmp_path: Path) -> None:
    script = (
        "import sys; from blackboard import local_backends; "
        "b = local_backends(sys.argv[1]); b.registry.next_version('x'); b.close()"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path)]) for _ in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]


class _LockedAtFirst:
    """A connection whose switch to WAL answers "database is locked" ``times`` times, as SQLite does at once to
    one of several processes opening a new file together."""

    def __init__(self, conn: sqlite3.Connection, times: int, message: str = "database is locked") -> None:
        self.conn, self.left, self.message, self.tries = conn, times, message, 0

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if sql == "PRAGMA journal_mode=WAL":
            self.tries += 1
            if self.left:
                self.left -= 1
                raise sqlite3.OperationalError(self.message)
        return self.conn.execute(sql, *args)


def test_the_switch_to_wal_waits_for_a_file_another_process_is_opening(tmp_path: Path) -> None:
    database = SqliteDatabase(tmp_path / "arbiter.db")
    try:
        conn = sqlite3.connect(tmp_path / "other.db")
        locked = _LockedAtFirst(conn, times=3)
        database._use_wal(locked)  # type: ignore[arg-type]
        assert locked.tries == 4 and conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()
    finally:
        database.close()


def test_the_switch_to_wal_gives_up_after_the_busy_timeout_and_on_other_errors(tmp_path: Path) -> None:
    database = SqliteDatabase(tmp_path / "arbiter.db", busy_timeout=0.05)
    conn = sqlite3.connect(tmp_path / "other.db")
    try:
        with pytest.raises(StoreUnavailableError):
            database._use_wal(_LockedAtFirst(conn, times=1000))  # type: ignore[arg-type]
        broken = _LockedAtFirst(conn, times=1, message="disk I/O error")
        with pytest.raises((StoreUnavailableError, StoreCorruptError)):
            database._use_wal(broken)  # type: ignore[arg-type]
        assert broken.tries == 1
    finally:
        conn.close()
        database.close()


def test_new_home_is_private(tmp_path: Path) -> None:
    local_backends(tmp_path / "home").close()
    assert (tmp_path / "home").stat().st_mode & 0o777 == 0o700


def test_a_store_from_before_the_duration_histogram_gains_it_on_open(tmp_path: Path) -> None:
    path = tmp_path / "arbiter.db"
    SqliteDatabase(path).close()
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE agents DROP COLUMN duration_buckets")  # the agents table as released first
    conn.commit()
    conn.close()
    database = SqliteDatabase(path)
    registry = SqliteRegistry(database)
    registry.put(manifest())
    registry.record_completion("burger_cook", 1, TaskState.SUCCEEDED, 3.0, 1)
    stats = registry.get("burger_cook", 1).stats
    assert stats.invocations == 1 and sum(stats.duration_buckets) == 1 and stats.p95_ms == 4.0
    database.close()
    SqliteDatabase(path).close()  # opening again does not add the column twice
