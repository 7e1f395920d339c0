"""Plant a damaged record through each backend's raw storage, under the blackboard and the registry ports.

Each function replaces the stored document of an existing record with ``doc`` (text that the adapter's decoder will
refuse), as a bug, a crash half-way or a document from another version of the library would leave it.
"""

from __future__ import annotations

import json
from typing import Any

from blackboard import Backends
from blackboard.adapters import MemoryBlackboard, MemoryRegistry, SqliteBlackboard, SqliteRegistry

#: Damaged documents, by kind of damage.
DAMAGE = {
    "invalid-json": '{"schema": "arbiter.',
    "newer-schema": json.dumps({"schema": "arbiter.record/99", "id": "x"}),
}


def deep_document(document: str, depth: int = 250) -> str:
    """``document`` (a JSON object) with a value nested ``depth`` levels deep added at its top level."""
    return document[:-1] + ', "deep": ' + "[" * depth + "1" + "]" * depth + "}"


def _dynamodb_doc(backends: Backends, store: Any, key: dict[str, Any], doc: str) -> None:
    table = store.table
    table.client.update_item(
        TableName=table.name,
        Key=key,
        UpdateExpression="SET #d = :d",
        ExpressionAttributeNames={"#d": "doc"},
        ExpressionAttributeValues={":d": {"S": doc}},
    )


def orchestration(backends: Backends, orchestration_id: str, doc: str) -> None:
    """Damage the stored orchestration ``orchestration_id``."""
    board = backends.blackboard
    if isinstance(board, MemoryBlackboard):
        board._orchestrations[orchestration_id] = doc
    elif isinstance(board, SqliteBlackboard):
        with board.database.write() as conn:
            conn.execute("UPDATE orchestrations SET doc = ? WHERE id = ?", (doc, orchestration_id))
    else:
        _dynamodb_doc(backends, board, {"pk": {"S": f"ORCH#{orchestration_id}"}, "sk": {"S": "ORCH"}}, doc)


def task(backends: Backends, orchestration_id: str, task_id: str, doc: str) -> None:
    """Damage the stored task ``orchestration_id/task_id``."""
    board = backends.blackboard
    if isinstance(board, MemoryBlackboard):
        board._tasks[(orchestration_id, task_id)] = doc
    elif isinstance(board, SqliteBlackboard):
        with board.database.write() as conn:
            conn.execute(
                "UPDATE tasks SET doc = ? WHERE orchestration_id = ? AND task_id = ?", (doc, orchestration_id, task_id)
            )
    else:
        _dynamodb_doc(backends, board, {"pk": {"S": f"ORCH#{orchestration_id}"}, "sk": {"S": f"TASK#{task_id}"}}, doc)


def note(backends: Backends, orchestration_id: str, key: str, doc: str) -> None:
    """Damage the stored note ``key`` of ``orchestration_id``."""
    board = backends.blackboard
    if isinstance(board, MemoryBlackboard):
        board._notes[(orchestration_id, key)] = doc
    elif isinstance(board, SqliteBlackboard):
        with board.database.write() as conn:
            conn.execute(
                "UPDATE notes SET doc = ? WHERE orchestration_id = ? AND key = ?", (doc, orchestration_id, key)
            )
    else:
        _dynamodb_doc(backends, board, {"pk": {"S": f"ORCH#{orchestration_id}"}, "sk": {"S": f"NOTE#{key}"}}, doc)


def agent(backends: Backends, name: str, version: int, doc: str) -> None:
    """Damage the stored manifest ``name@version``."""
    registry = backends.registry
    if isinstance(registry, MemoryRegistry):
        registry._agents[(name, version)] = doc
    elif isinstance(registry, SqliteRegistry):
        with registry.database.write() as conn:
            conn.execute("UPDATE agents SET doc = ? WHERE name = ? AND version = ?", (doc, name, version))
    else:
        _dynamodb_doc(backends, registry, {"pk": {"S": f"AGENT#{name}"}, "sk": {"S": f"V#{version:08d}"}}, doc)
