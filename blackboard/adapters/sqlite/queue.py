"""The TaskQueue port on SQLite: a durable queue that several processes can share (one table, many queues)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from blackboard.adapters.sqlite._database import SqliteDatabase
from blackboard.ports.task_queue import DeadLetter, QueueStats, Received, TaskQueue

__all__ = ["SqliteTaskQueue"]


class SqliteTaskQueue(TaskQueue):
    """A named queue in an :class:`SqliteDatabase`; messages survive a crash of any process.

    A waiting ``receive`` wakes at once on a send from the same process and polls every ``poll_interval`` seconds
    for sends from other processes.

    Args:
        database: the store.
        name: the queue's name (several queues share the table).
        max_receives: deliveries before a message moves to the dead-letter queue.
        visibility_timeout: seconds a received message stays invisible.
        poll_interval: seconds between looks for messages sent by other processes.
        clock: seconds since the epoch (must be wall time when processes share the file).
    """

    def __init__(
        self,
        database: SqliteDatabase,
        name: str = "tasks",
        *,
        max_receives: int = 5,
        visibility_timeout: float = 60.0,
        poll_interval: float = 0.05,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(max_receives=max_receives, visibility_timeout=visibility_timeout, clock=clock)
        self.database = database
        self.name = name
        self._poll_interval = poll_interval
        self._sent = threading.Condition()

    def _send(self, items: list[tuple[str, str]], visible_at: float) -> None:
        with self.database.write() as conn:
            conn.executemany(
                "INSERT INTO queue_messages (queue, message_id, body, visible_at) VALUES (?, ?, ?, ?)",
                [(self.name, message_id, body, visible_at) for message_id, body in items],
            )
        with self._sent:
            self._sent.notify_all()

    def _receive(self, max_messages: int, visibility_timeout: float) -> list[Received]:
        now = self._clock()
        received: list[Received] = []
        with self.database.write() as conn:
            while len(received) < max_messages:
                rows = conn.execute(
                    "SELECT seq, message_id, body, receive_count FROM queue_messages"
                    " WHERE queue = ? AND dead = 0 AND visible_at <= ? ORDER BY seq LIMIT ?",
                    (self.name, now, max_messages - len(received)),
                ).fetchall()
                if not rows:
                    break
                for seq, message_id, body, count in rows:
                    count += 1
                    if self._to_dead_letter(count):
                        conn.execute("UPDATE queue_messages SET dead = 1, receipt = NULL WHERE seq = ?", (seq,))
                        continue
                    receipt = self._receipt()
                    conn.execute(
                        "UPDATE queue_messages SET receive_count = ?, receipt = ?, visible_at = ? WHERE seq = ?",
                        (count, receipt, now + visibility_timeout, seq),
                    )
                    received.append(Received(message_id, receipt, body, count))
        return received

    def _wait(self, seconds: float) -> None:
        with self._sent:
            self._sent.wait(min(seconds, self._poll_interval))

    def _ack(self, receipt: str) -> bool:
        with self.database.write() as conn:
            return conn.execute("DELETE FROM queue_messages WHERE receipt = ?", (receipt,)).rowcount == 1

    def _nack(self, receipt: str, visible_at: float) -> bool:
        with self.database.write() as conn:
            cursor = conn.execute(
                "UPDATE queue_messages SET receipt = NULL, visible_at = ? WHERE receipt = ?", (visible_at, receipt)
            )
        if cursor.rowcount == 1:
            with self._sent:
                self._sent.notify_all()
        return cursor.rowcount == 1

    def _dead_letter(self, received: Received) -> bool:
        with self.database.write() as conn:
            cursor = conn.execute(
                "UPDATE queue_messages SET dead = 1, receipt = NULL WHERE receipt = ? AND dead = 0", (received.receipt,)
            )
        return cursor.rowcount == 1

    def _dead_letters(self, limit: int) -> list[DeadLetter]:
        with self.database.read() as conn:
            rows = conn.execute(
                "SELECT message_id, body, receive_count FROM queue_messages WHERE queue = ? AND dead = 1"
                " ORDER BY seq LIMIT ?",
                (self.name, limit),
            ).fetchall()
        return [DeadLetter(message_id, body, count) for message_id, body, count in rows]

    def _stats(self) -> QueueStats:
        now = self._clock()
        with self.database.read() as conn:
            row = conn.execute(
                "SELECT COALESCE(SUM(dead = 0 AND NOT (receipt IS NOT NULL AND visible_at > ?)), 0),"
                " COALESCE(SUM(dead = 0 AND receipt IS NOT NULL AND visible_at > ?), 0), COALESCE(SUM(dead = 1), 0)"
                " FROM queue_messages WHERE queue = ?",
                (now, now, self.name),
            ).fetchone()
        return QueueStats(int(row[0]), int(row[1]), int(row[2]))
