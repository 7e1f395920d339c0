"""Items of the blackboard table: keys, index keys, and records to and from items (see docs/aws-tables.md).

One partition per orchestration (``pk = ORCH#<id>``) holds the orchestration (``sk = ORCH``), its tasks
(``TASK#<task id>``), wave counters (``WAVE#<wave>``) and notes (``NOTE#<key>``); an event marker
(``EVENT#<event id>``) makes creation idempotent on the event id. A record is stored as a JSON document (``doc``)
plus one attribute per large value (see ``_dynamodb_payloads``) and the plain attributes that conditions and
indexes need. A task's ``state`` and ``updated_at`` are attributes of their own, not in ``doc``, so that a claim can
change them with one UpdateItem without reading the task first.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

from blackboard.adapters.aws._dynamodb import Item, number, string, time_key
from blackboard.adapters.aws._dynamodb_payloads import LargeValues, dumps
from blackboard.exceptions import RecordValidationError
from blackboard.quarantine import load_or_raise
from blackboard.records import Note, Orchestration, Task
from blackboard.states import ACTIVE_TASK_STATES, OrchestrationStatus, TaskState

__all__ = [
    "DUE_DEADLINE",
    "DUE_RETRY",
    "INDEX_SHARDS",
    "NOTE_PARTS",
    "NOTE_PREFIX",
    "ORCHESTRATION_PARTS",
    "ORCHESTRATION_SK",
    "PARTS",
    "QUARANTINE_PREFIX",
    "TASK_FIELDS",
    "TASK_PARTS",
    "TASK_PREFIX",
    "ItemCodec",
    "event_key",
    "note_key",
    "orchestration_key",
    "orchestrations_with_status",
    "shard_of",
    "shards",
    "task_key",
    "tasks_in_state",
    "wave_key",
]

ORCHESTRATION_SK = "ORCH"
TASK_PREFIX = "TASK#"
NOTE_PREFIX = "NOTE#"
WAVE_PREFIX = "WAVE#"
#: Partition of the items that `arbiter doctor --repair` set aside (``QUARANTINE#<kind>``); in no index.
QUARANTINE_PREFIX = "QUARANTINE#"
#: gsi2 partitions (before sharding, see :func:`shards`): tasks due at their deadline or for a retry (sparse).
DUE_DEADLINE = "TASKDUE#deadline"
DUE_RETRY = "TASKDUE#retry"
#: Every index partition key is written in this many shards (``TASKS#pending#0`` ... ``TASKS#pending#7``): a
#: transition writes one of ``INDEX_SHARDS`` partitions instead of one, and readers query every shard and merge by
#: sort key. Writers and readers must agree on it: changing it is a migration (see docs/aws-tables.md).
INDEX_SHARDS = 8
_T = TypeVar("_T")

ORCHESTRATION_PARTS = ("conversation", "output", "event", "error")
TASK_PARTS = ("input", "result", "attempts")
#: Task fields stored as plain attributes and left out of ``doc`` (a claim updates them in place). A field that is
#: ``None`` (no holder, no lease) has no attribute.
TASK_FIELDS = ("state", "updated_at", "holder", "lease_expires_at")
NOTE_PARTS = ("value",)
PARTS = (*ORCHESTRATION_PARTS, *TASK_PARTS, *NOTE_PARTS)
_SORT_KEY_BYTES = 1024


def orchestration_key(orchestration_id: str) -> Item:
    """Key of an orchestration item."""
    return {"pk": string(f"ORCH#{orchestration_id}"), "sk": string(ORCHESTRATION_SK)}


def event_key(event_id: str) -> Item:
    """Key of the marker that ties an event id to its orchestration."""
    return {"pk": string(f"EVENT#{event_id}"), "sk": string("EVENT")}


def task_key(orchestration_id: str, task_id: str) -> Item:
    """Key of a task item."""
    return {"pk": string(f"ORCH#{orchestration_id}"), "sk": string(f"{TASK_PREFIX}{task_id}")}


def wave_key(orchestration_id: str, wave: int) -> Item:
    """Key of a wave counter item."""
    return {"pk": string(f"ORCH#{orchestration_id}"), "sk": string(f"{WAVE_PREFIX}{wave:06d}")}


def note_key(orchestration_id: str, key: str) -> Item:
    """Key of a note item.

    Raises:
        RecordValidationError: the note key is longer than a DynamoDB sort key allows.
    """
    sort_key = f"{NOTE_PREFIX}{key}"
    if len(sort_key.encode()) > _SORT_KEY_BYTES:
        raise RecordValidationError("Note", "key", f"at most {_SORT_KEY_BYTES - len(NOTE_PREFIX)} bytes in UTF-8")
    return {"pk": string(f"ORCH#{orchestration_id}"), "sk": string(sort_key)}


def shard_of(*ids: str) -> int:
    """The index shard of a record, from its ids (stable: a record keeps its shard whatever its state)."""
    digest = hashlib.sha256("/".join(ids).encode()).digest()
    return int.from_bytes(digest[:4], "big") % INDEX_SHARDS


def shards(partition: str) -> list[str]:
    """Every partition key a reader queries for ``partition``: its shards, then the key itself, unsharded.

    The unsharded key holds index entries of items written before sharding; an item leaves it on its next write.
    """
    return [*(f"{partition}#{n}" for n in range(INDEX_SHARDS)), partition]


def orchestrations_with_status(status: OrchestrationStatus) -> str:
    """gsi1 partition (before sharding) of the orchestrations in ``status``."""
    return f"ORCHS#{status.value}"


def tasks_in_state(state: TaskState) -> str:
    """gsi1 partition (before sharding) of the tasks in ``state``."""
    return f"TASKS#{state.value}"


def _decoded(kind: str, item: Item, decode: Callable[[], _T]) -> _T:
    """``decode()``, raising ``UnreadableRecordError`` (keyed on the item's key) for a document that fails to load."""
    orchestration_id = item["pk"]["S"].removeprefix("ORCH#")
    sort_key = item["sk"]["S"]
    key = (orchestration_id,) if kind == "orchestration" else (orchestration_id, sort_key.split("#", 1)[-1])
    return load_or_raise(kind, key, decode)


class ItemCodec:
    """Records to items and back; large values through ``values``."""

    def __init__(self, values: LargeValues) -> None:
        self.values = values

    # ---------------------------------------------------------------- orchestrations

    def orchestration_item(self, orchestration: Orchestration, expires_at: int | None = None) -> Item:
        """The item of an orchestration (``expires_at``: epoch seconds after which DynamoDB may delete it)."""
        shard = shard_of(orchestration.id)
        item: Item = {
            **orchestration_key(orchestration.id),
            "kind": string("orchestration"),
            "status": string(orchestration.status.value),
            "version": number(orchestration.version),
            "event_id": string(orchestration.event.id),
            "gsi1pk": string(f"{orchestrations_with_status(orchestration.status)}#{shard}"),
            "gsi1sk": string(f"{time_key(orchestration.created_at)}#{orchestration.id}"),
        }
        self._add_record(item, orchestration, ORCHESTRATION_PARTS)
        if expires_at is not None:
            item["expires_at"] = number(expires_at)
        return item

    def orchestration(self, item: Item) -> Orchestration:
        """The orchestration stored in ``item`` (``UnreadableRecordError`` if it fails to load)."""
        return _decoded(
            "orchestration", item, lambda: Orchestration.model_validate(self._document(item, ORCHESTRATION_PARTS))
        )

    # ---------------------------------------------------------------- tasks

    def task_item(
        self, task: Task, *, seq: int, wave_size: int, rev: int, previous: tuple[Item, Task] | None = None
    ) -> Item:
        """The item of a task.

        Args:
            task: the task.
            seq: its position in its wave (tasks are listed in the order they were added).
            wave_size: the number of tasks of its wave.
            rev: the item's revision, the optimistic lock of task changes.
            previous: the stored item and task this one replaces: unchanged large values are copied from it, not
                encoded (or stored by reference) again, and so is the item's expiry.
        """
        shard = shard_of(task.orchestration_id, task.task_id)
        item: Item = {
            **task_key(task.orchestration_id, task.task_id),
            "kind": string("task"),
            "state": string(task.state.value),
            "attempt": number(task.attempt),
            "wave": number(task.wave),
            "seq": number(seq),
            "wave_size": number(wave_size),
            "rev": number(rev),
            "gsi1pk": string(f"{tasks_in_state(task.state)}#{shard}"),
            "gsi1sk": string(f"{time_key(task.updated_at)}#{task.orchestration_id}#{task.task_id}"),
        }
        fields = task.model_dump(mode="json", include=set(TASK_FIELDS))
        item.update({field: string(value) for field, value in fields.items() if value is not None})
        due = None
        if task.retry_at is not None:
            due = (DUE_RETRY, task.retry_at)
        elif task.deadline is not None and task.state in ACTIVE_TASK_STATES:
            due = (DUE_DEADLINE, task.deadline)
        if due is not None:
            item["gsi2pk"] = string(f"{due[0]}#{shard}")
            item["gsi2sk"] = string(f"{time_key(due[1])}#{task.orchestration_id}#{task.task_id}")
        reuse: list[str] = []
        if previous is not None:
            raw, before = previous
            reuse = [p for p in TASK_PARTS if p in raw and getattr(before, p) == getattr(task, p)]
            item.update({p: raw[p] for p in reuse})
            if "expires_at" in raw:
                item["expires_at"] = raw["expires_at"]
        self._add_record(item, task, TASK_PARTS, skip=reuse, fields=TASK_FIELDS)
        return item

    def task(self, item: Item) -> Task:
        """The task stored in ``item`` (``UnreadableRecordError`` if it fails to load)."""

        def decode() -> Task:
            document = self._document(item, TASK_PARTS)
            # Items written before TASK_FIELDS left ``doc`` have no ``updated_at`` attribute: ``doc`` holds it then.
            document.update({field: item[field]["S"] for field in TASK_FIELDS if field in item})
            return Task.model_validate(document)

        return _decoded("task", item, decode)

    # ---------------------------------------------------------------- notes

    def note_item(self, note: Note) -> Item:
        """The item of a note."""
        item: Item = {
            **note_key(note.orchestration_id, note.key),
            "kind": string("note"),
            "version": number(note.version),
        }
        self._add_record(item, note, NOTE_PARTS)
        if "value" not in item:
            item["value"] = string("null")
        return item

    def note(self, item: Item) -> Note:
        """The note stored in ``item`` (``UnreadableRecordError`` if it fails to load)."""
        return _decoded("note", item, lambda: Note.model_validate(self._document(item, NOTE_PARTS)))

    # ---------------------------------------------------------------- helpers

    def _add_record(
        self,
        item: Item,
        record: Orchestration | Task | Note,
        parts: tuple[str, ...],
        skip: list[str] | None = None,
        fields: tuple[str, ...] = (),
    ) -> None:
        item["doc"] = string(dumps(record.model_dump(mode="json", by_alias=True, exclude={*parts, *fields})))
        for part in parts:
            if skip and part in skip:
                continue
            if getattr(record, part) is None:
                continue
            value = record.model_dump(mode="json", by_alias=True, include={part})[part]
            item[part] = self.values.encode(value)

    def _document(self, item: Item, parts: tuple[str, ...]) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(item["doc"]["S"])
        for part in parts:
            if part in item:
                document[part] = self.values.decode(item[part])
        return document
