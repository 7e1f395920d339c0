"""The Blackboard port on DynamoDB: one table, one partition per orchestration (layout: docs/aws-tables.md).

Every state change is a conditional write or one TransactWriteItems: creation is idempotent on the event id (an
event marker written in the same transaction), orchestrations and notes are compare-and-set on their version, a
wave is written with its orchestration in one transaction, task changes are optimistic-lock writes that keep the
wave counters in the same transaction (``_dynamodb_tasks``); a claim is one conditional UpdateItem
(``_dynamodb_claim``), and a task change skips its read when this process wrote the task last (``_dynamodb_seen``).
Reads are GetItem, BatchGetItem or Query: nothing scans.
"""

from __future__ import annotations

import functools
import itertools
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from blackboard._base import utcnow
from blackboard.adapters.aws._clients import make_client
from blackboard.adapters.aws._dynamodb import (
    TRANSACTION_ITEMS,
    WRITE_ID,
    Conflict,
    Item,
    Table,
    number,
    retry_conflicts,
    string,
    time_key,
)
from blackboard.adapters.aws._dynamodb_claim import claim_task
from blackboard.adapters.aws._dynamodb_index import fetch, index_keys
from blackboard.adapters.aws._dynamodb_items import (
    DUE_DEADLINE,
    DUE_RETRY,
    NOTE_PREFIX,
    ORCHESTRATION_PARTS,
    ORCHESTRATION_SK,
    PARTS,
    QUARANTINE_PREFIX,
    TASK_PREFIX,
    ItemCodec,
    event_key,
    note_key,
    orchestration_key,
    orchestrations_with_status,
    task_key,
    tasks_in_state,
    wave_key,
)
from blackboard.adapters.aws._dynamodb_partition import PartitionKeys
from blackboard.adapters.aws._dynamodb_payloads import DEFAULT_OFFLOAD_BYTES, LargeValues
from blackboard.adapters.aws._dynamodb_seen import SeenItems
from blackboard.adapters.aws._dynamodb_tasks import apply_task_changes
from blackboard.adapters.aws.exceptions import TransactionTooLargeError
from blackboard.exceptions import BlackboardError, ConfigurationError, OrchestrationNotFoundError, TaskNotFoundError
from blackboard.ports.blackboard import Blackboard, InsertOutcome, TaskChange, Transition, WaveView
from blackboard.ports.code_store import CodeStore
from blackboard.quarantine import Unreadable, as_entry
from blackboard.records import Note, Orchestration, Task
from blackboard.states import ACTIVE_TASK_STATES, OrchestrationStatus, TaskState

__all__ = ["DynamoDBBlackboard"]

logger = logging.getLogger(__name__)

_NOT_THERE = "attribute_not_exists(pk)"


class DynamoDBBlackboard(Blackboard):
    """Blackboard in a DynamoDB table (``pk``/``sk``, indexes ``gsi1`` and ``gsi2``, TTL on ``expires_at``).

    Args:
        table_name: the blackboard table.
        client: a boto3 DynamoDB client (else one is made from ``session``, else from the default session).
        session: a boto3 session to make the client from.
        payloads: where values too large for an item go, by SHA-256 reference (the S3 payload bucket). Without it,
            a record that does not fit DynamoDB's limits is refused with ``PayloadTooLargeError``.
        clock: returns "now" (aware UTC).
        ttl_days: the items of a finished orchestration expire this many days after it finished (``None``: never).
        offload_bytes: JSON size above which a large value goes to ``payloads``.
    """

    def __init__(
        self,
        table_name: str,
        *,
        client: Any = None,
        session: Any = None,
        payloads: CodeStore | None = None,
        clock: Callable[[], datetime] = utcnow,
        ttl_days: int | None = 30,
        offload_bytes: int = DEFAULT_OFFLOAD_BYTES,
    ) -> None:
        super().__init__(clock=clock)
        if ttl_days is not None and ttl_days < 1:
            raise ConfigurationError(f"ttl_days must be at least 1 (or None for never), not {ttl_days}")
        if offload_bytes < 1024:
            raise ConfigurationError(f"offload_bytes must be at least 1024, not {offload_bytes}")
        self.table = Table(make_client("dynamodb", client=client, session=session), table_name)
        self.ttl_days = ttl_days
        self._codec = ItemCodec(LargeValues(payloads, offload_bytes))
        self._seen = SeenItems()
        self._partitions = PartitionKeys()

    # ---------------------------------------------------------------- orchestrations

    def _insert_orchestration(self, orchestration: Orchestration) -> Orchestration | None:
        item = self._codec.orchestration_item(orchestration)
        self._codec.values.fit([item], ORCHESTRATION_PARTS, "Orchestration")
        marker = {
            **event_key(orchestration.event.id),
            "kind": string("event"),
            "orchestration_id": string(orchestration.id),
        }

        def insert() -> Orchestration | None:
            reasons = self.table.transact(
                [
                    {"Put": {"Item": item, "ConditionExpression": _NOT_THERE}},
                    {"Put": {"Item": marker, "ConditionExpression": _NOT_THERE}},
                ]
            )
            if reasons is None:
                return None
            existing = self._find_orchestration(orchestration.event.id) or self._maybe_orchestration(orchestration.id)
            if existing is None:
                raise Conflict("the orchestration that holds this id or event id is not readable yet")
            return existing

        return retry_conflicts(insert, f"create orchestration {orchestration.id}")

    def _get_orchestration(self, orchestration_id: str) -> Orchestration:
        found = self._maybe_orchestration(orchestration_id)
        if found is None:
            raise OrchestrationNotFoundError(orchestration_id)
        return found

    def _maybe_orchestration(self, orchestration_id: str) -> Orchestration | None:
        item = self.table.get(orchestration_key(orchestration_id))
        return None if item is None else self._codec.orchestration(item)

    def _find_orchestration(self, event_id: str) -> Orchestration | None:
        marker = self.table.get(event_key(event_id), projection="orchestration_id")
        return None if marker is None else self._maybe_orchestration(marker["orchestration_id"]["S"])

    def _list_orchestrations(self, status: OrchestrationStatus | None, limit: int) -> list[Orchestration | Unreadable]:
        if limit < 1:
            return []
        statuses = list(OrchestrationStatus) if status is None else [status]
        partitions = [orchestrations_with_status(s) for s in statuses]
        keys = index_keys(self.table, "gsi1", partitions, descending=True, page=limit)
        taken = [key for _, key in itertools.islice(keys, limit)]
        return [as_entry(functools.partial(self._codec.orchestration, item)) for item in fetch(self.table, taken)]

    def _cas_orchestration(self, orchestration: Orchestration, expected_version: int) -> bool:
        expires_at = self._expiry(orchestration)
        item = self._codec.orchestration_item(orchestration, expires_at)
        self._codec.values.fit([item], ORCHESTRATION_PARTS, "Orchestration")
        if expires_at is not None:
            return self._finish(orchestration, item, expected_version, expires_at)
        return self._put_versioned(orchestration, item, expected_version)

    def _put_versioned(self, orchestration: Orchestration, item: Item, expected_version: int) -> bool:
        applied = retry_conflicts(
            lambda: self.table.put_once(item, "#v = :v", {":v": number(expected_version)}, {"#v": "version"}),
            f"update orchestration {orchestration.id}",
        )
        if applied:
            self._partitions.moved(orchestration.id, expected_version, orchestration.version)
        return applied

    def _finish(self, orchestration: Orchestration, item: Item, expected_version: int, expires_at: int) -> bool:
        """The finished orchestration (compare-and-set) and the expiry of its other items, in one transaction.

        Their keys are listed first (one Query, unless :meth:`read_wave` read them at this version: see
        ``_dynamodb_partition``); items past the first transaction's 100 get theirs after it. When an item vanished
        before its expiry was set, the orchestration is written alone and the expiry set as before.
        """
        known = self._partitions.take(orchestration.id, expected_version)
        keys = self._other_keys(orchestration) if known is None else [event_key(orchestration.event.id), *known]
        head, tail = keys[: TRANSACTION_ITEMS - 1], keys[TRANSACTION_ITEMS - 1 :]
        operations = [_versioned_put(item, expected_version), *(_expire(key, expires_at) for key in head)]
        reasons = retry_conflicts(lambda: self.table.transact(operations), f"finish orchestration {orchestration.id}")
        if reasons is None:
            self._expire_keys(orchestration, tail, expires_at)
            return True
        if reasons[0] != "None":
            return False  # the orchestration moved on
        applied = self._put_versioned(orchestration, item, expected_version)
        if applied:
            self._expire_keys(orchestration, keys, expires_at)
        return applied

    def _insert_wave(self, orchestration: Orchestration, expected_version: int, tasks: list[Task]) -> bool:
        if len(tasks) + 2 > TRANSACTION_ITEMS:
            raise TransactionTooLargeError(f"a wave of {len(tasks)} tasks", len(tasks) + 2, TRANSACTION_ITEMS)
        size = len(tasks)
        orchestration_item = self._codec.orchestration_item(orchestration)
        task_items = [self._codec.task_item(t, seq=i, wave_size=size, rev=0) for i, t in enumerate(tasks)]
        self._codec.values.fit([orchestration_item, *task_items], PARTS, f"A wave of {size} tasks")
        wave = {
            **wave_key(orchestration.id, orchestration.wave),
            "kind": string("wave"),
            "wave": number(orchestration.wave),
            "wave_size": number(size),
            "done_count": number(0),
            "closed": {"BOOL": False},
        }
        operations = [
            _versioned_put(orchestration_item, expected_version),
            *({"Put": {"Item": item, "ConditionExpression": _NOT_THERE}} for item in task_items),
            {"Put": {"Item": wave, "ConditionExpression": _NOT_THERE}},
        ]
        reasons = retry_conflicts(lambda: self.table.transact(operations), f"add wave to {orchestration.id}")
        if reasons is None:
            self._seen.remember(task_items)
        return reasons is None

    def _insert_reactive(self, orchestration: Orchestration, expected_version: int, task: Task) -> InsertOutcome:
        """One transaction: the orchestration (CAS), the task (absent), the wave counter grown by one.

        The counter's size is read first and the update is conditional on it (and on the wave being open), so the
        new task's ``seq`` and ``wave_size`` are exact; the tasks stored before keep their smaller ``wave_size``,
        which the task changes only take as a first guess (``_dynamodb_tasks``).
        """
        counter = self.table.get(wave_key(task.orchestration_id, task.wave))
        if counter is None or counter.get("closed", {}).get("BOOL", False):
            return "closed"
        size = int(counter["wave_size"]["N"])
        orchestration_item = self._codec.orchestration_item(orchestration)
        task_item = self._codec.task_item(task, seq=size, wave_size=size + 1, rev=0)
        self._codec.values.fit([orchestration_item, task_item], PARTS, "A reactive task")
        operations = [
            _versioned_put(orchestration_item, expected_version),
            {"Put": {"Item": task_item, "ConditionExpression": _NOT_THERE}},
            {
                "Update": {
                    "Key": wave_key(task.orchestration_id, task.wave),
                    "UpdateExpression": "SET #size = :grown",
                    "ConditionExpression": "#size = :size AND #closed = :false",
                    "ExpressionAttributeNames": {"#size": "wave_size", "#closed": "closed"},
                    "ExpressionAttributeValues": {
                        ":size": number(size),
                        ":grown": number(size + 1),
                        ":false": {"BOOL": False},
                    },
                }
            },
        ]
        reasons = retry_conflicts(lambda: self.table.transact(operations), f"add reactive task {task.task_id}")
        if reasons is None:
            self._seen.remember([task_item])
            return "inserted"
        if reasons[1] != "None":
            return "exists"
        return "conflict"  # the orchestration or the wave moved: the port reads both again

    # ---------------------------------------------------------------- tasks

    def _get_task(self, orchestration_id: str, task_id: str) -> Task:
        item = self.table.get(task_key(orchestration_id, task_id))
        if item is None:
            raise TaskNotFoundError(orchestration_id, task_id)
        return self._codec.task(item)

    def _list_tasks(self, orchestration_id: str, wave: int | None) -> list[Task | Unreadable]:
        request: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": string(f"ORCH#{orchestration_id}"), ":prefix": string(TASK_PREFIX)},
            "ConsistentRead": True,
        }
        if wave is not None:
            request["FilterExpression"] = "#wave = :wave"
            request["ExpressionAttributeNames"] = {"#wave": "wave"}
            request["ExpressionAttributeValues"][":wave"] = number(wave)
        items = sorted(self.table.query(**request), key=_task_order)
        return [as_entry(functools.partial(self._codec.task, item)) for item in items]

    def read_wave(self, orchestration_id: str, task_id: str | None = None) -> WaveView:
        """One consistent Query of the orchestration's partition instead of four reads (see the port).

        The partition holds the orchestration, its tasks, its notes and its wave counters; only the tasks of the
        current wave (and the one asked for) are decoded. A long orchestration's partition takes more than one page,
        as :meth:`list_tasks` of one wave would (its filter is applied after the read, too).
        """
        items = self.table.query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": string(f"ORCH#{orchestration_id}")},
            ConsistentRead=True,
        )
        record: Item | None = None
        task_items: list[Item] = []
        note_items: list[Item] = []
        others: list[Item] = []
        for item in items:
            sort_key = item["sk"]["S"]
            if sort_key == ORCHESTRATION_SK:
                record = item
                continue
            others.append({"pk": item["pk"], "sk": item["sk"]})
            if sort_key.startswith(TASK_PREFIX):
                task_items.append(item)
            elif sort_key.startswith(NOTE_PREFIX):
                note_items.append(item)
        if record is None:
            raise OrchestrationNotFoundError(orchestration_id)
        orchestration = self._codec.orchestration(record)
        self._partitions.remember(orchestration_id, orchestration.version, others)
        wave = [item for item in task_items if orchestration.wave and int(item["wave"]["N"]) == orchestration.wave]
        tasks = self.quarantine.readable(
            [as_entry(functools.partial(self._codec.task, item)) for item in sorted(wave, key=_task_order)]
        )
        notes = self.quarantine.readable([as_entry(functools.partial(self._codec.note, item)) for item in note_items])
        task = next((t for t in tasks if t.task_id == task_id), None)
        if task is None and task_id is not None:
            named = task_key(orchestration_id, task_id)["sk"]["S"]
            task = next((self._codec.task(item) for item in task_items if item["sk"]["S"] == named), None)
        return WaveView(orchestration, tasks, notes, task)

    def _find_tasks(
        self,
        states: frozenset[TaskState],
        updated_before: datetime | None,
        deadline_before: datetime | None,
        retry_before: datetime | None,
        limit: int,
    ) -> list[Task | Unreadable]:
        if not states or limit < 1:
            return []

        def matches(task: Task) -> bool:
            return (
                task.state in states
                and (updated_before is None or task.updated_at < updated_before)
                and (deadline_before is None or (task.deadline is not None and task.deadline < deadline_before))
                and (retry_before is None or (task.retry_at is not None and task.retry_at <= retry_before))
            )

        # The narrowest index for the bounds given: tasks due for a retry, or in flight past their deadline (gsi2,
        # sparse), else the tasks of each state by last change (gsi1). The index gives keys in order; the tasks are
        # read from the table and every bound is checked on them as they are now.
        below: str | None
        if retry_before is not None:
            index, partitions, below = "gsi2", [DUE_RETRY], time_key(retry_before) + "$"  # "$" sorts after "#"
        elif deadline_before is not None and states <= ACTIVE_TASK_STATES:
            index, partitions, below = "gsi2", [DUE_DEADLINE], time_key(deadline_before)
        else:
            index, partitions = "gsi1", [tasks_in_state(state) for state in sorted(states)]
            below = None if updated_before is None else time_key(updated_before)
        keys = index_keys(self.table, index, partitions, below=below, page=limit)
        found: list[Task | Unreadable] = []
        while len(found) < limit:
            batch = [key for _, key in itertools.islice(keys, min(limit, 100))]
            if not batch:
                break
            for item in fetch(self.table, batch):
                entry = as_entry(functools.partial(self._codec.task, item))
                if isinstance(entry, Unreadable) or matches(entry):
                    found.append(entry)
        return found[:limit]

    def mark_dispatched(self, tasks: Sequence[Task]) -> list[Transition]:
        """Mark ``pending`` tasks ``dispatched``, one transaction per 100 tasks (a dispatch mark is independent)."""
        results: list[Transition] = []
        for start in range(0, len(tasks), TRANSACTION_ITEMS):
            results.extend(super().mark_dispatched(tasks[start : start + TRANSACTION_ITEMS]))
        return results

    def claim(
        self,
        orchestration_id: str,
        task_id: str,
        attempt: int,
        *,
        holder: str | None = None,
        lease_seconds: float | None = None,
    ) -> Transition:
        """Claim a task for execution in one conditional UpdateItem (same semantics as the port's claim).

        The holder and the lease expiry are written by the same UpdateItem as the state.
        """
        change = self._claim(attempt, holder, lease_seconds)
        claimed = retry_conflicts(
            lambda: claim_task(self.table, self._codec, self._seen, orchestration_id, task_id, attempt, change),
            f"claim task {task_id}",
        )
        if claimed is not None:
            # A claim that applied took a pending or dispatched task (which of the two is not read back).
            self._tell([claimed], {(orchestration_id, task_id): TaskState.DISPATCHED})
            return claimed
        return super().claim(orchestration_id, task_id, attempt, holder=holder, lease_seconds=lease_seconds)

    def _apply_task_changes(self, changes: Sequence[tuple[str, str, TaskChange]]) -> list[Transition]:
        return apply_task_changes(self.table, self._codec, self._seen, changes)

    # ---------------------------------------------------------------- notes

    def _get_note(self, orchestration_id: str, key: str) -> Note | None:
        item = self.table.get(note_key(orchestration_id, key))
        return None if item is None else self._codec.note(item)

    def _list_notes(self, orchestration_id: str) -> list[Note | Unreadable]:
        items = self.table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": string(f"ORCH#{orchestration_id}"), ":prefix": string(NOTE_PREFIX)},
            ConsistentRead=True,
        )
        return [as_entry(functools.partial(self._codec.note, item)) for item in items]

    def _cas_note(self, note: Note, expected_version: int) -> bool:
        item = self._codec.note_item(note)
        self._codec.values.fit([item], ("value",), "Note")
        if expected_version == 0:
            self._partitions.forget(note.orchestration_id)  # a new item in the partition
            return retry_conflicts(lambda: self.table.put_once(item, _NOT_THERE), f"write note {note.key}")
        # An update, not a put: it keeps the item's expiry if the orchestration has finished.
        key = note_key(note.orchestration_id, note.key)
        token = string(uuid.uuid4().hex)

        def update() -> bool:
            if self.table.update(
                key,
                "SET #doc = :doc, #value = :value, #v = :new, #w = :w",
                {
                    ":doc": item["doc"],
                    ":value": item["value"],
                    ":new": item["version"],
                    ":v": number(expected_version),
                    ":w": token,
                },
                "#v = :v",
                {"#doc": "doc", "#value": "value", "#v": "version", "#w": WRITE_ID},
            ):
                return True
            stored = self.table.get(key, projection=WRITE_ID)  # our own write, retried by botocore?
            return stored is not None and stored.get(WRITE_ID) == token

        return retry_conflicts(update, f"write note {note.key}")

    # ---------------------------------------------------------------- unreadable records

    def _stored_event_id(self, orchestration_id: str) -> str | None:
        item = self.table.get(orchestration_key(orchestration_id), projection="event_id")
        return None if item is None or "event_id" not in item else str(item["event_id"]["S"])

    def _set_aside(self, entry: Unreadable, replacement: Orchestration | None) -> bool:
        """Copy the item under ``QUARANTINE#<kind>`` and delete it (or put ``replacement`` over it), atomically."""
        if entry.kind == "orchestration":
            key = orchestration_key(entry.key[0])
        else:
            key = (task_key if entry.kind == "task" else note_key)(entry.key[0], entry.key[1])
        stored = self.table.get(key)
        if stored is None:
            return False
        now = self._clock()
        aside = {
            "pk": string(f"{QUARANTINE_PREFIX}{entry.kind}"),
            "sk": string(f"{time_key(now)}#{'/'.join(entry.key)}"),
            "kind": string("quarantined"),
            "reason": string(entry.reason),
            "item": {"M": stored},
        }
        # Only over the item as read: a write in between (it became readable again?) keeps it.
        unchanged: dict[str, Any] = {"ConditionExpression": _NOT_THERE.replace("not_", "")}
        if WRITE_ID in stored:
            unchanged = {
                "ConditionExpression": "#w = :w",
                "ExpressionAttributeNames": {"#w": WRITE_ID},
                "ExpressionAttributeValues": {":w": stored[WRITE_ID]},
            }
        if replacement is None:
            operation = {"Delete": {"Key": key, **unchanged}}
        else:
            operation = {"Put": {"Item": self._codec.orchestration_item(replacement), **unchanged}}
        reasons = retry_conflicts(
            lambda: self.table.transact([{"Put": {"Item": aside}}, operation]), f"set aside {entry.label}"
        )
        return reasons is None

    # ---------------------------------------------------------------- expiry

    def _expiry(self, orchestration: Orchestration) -> int | None:
        if self.ttl_days is None or not orchestration.finished:
            return None
        return int((orchestration.updated_at + timedelta(days=self.ttl_days)).timestamp())

    def _other_keys(self, orchestration: Orchestration) -> list[Item]:
        """The keys of an orchestration's other items: its event marker, and its partition but the orchestration."""
        keys = [event_key(orchestration.event.id)]
        keys.extend(
            {"pk": item["pk"], "sk": item["sk"]}
            for item in self.table.query(
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": string(f"ORCH#{orchestration.id}")},
                ProjectionExpression="pk, sk",
            )
            if item["sk"]["S"] != ORCHESTRATION_SK
        )
        return keys

    def _expire_keys(self, orchestration: Orchestration, keys: Sequence[Item], expires_at: int) -> None:
        """Give the items of ``keys`` of a finished orchestration its expiry (best effort: housekeeping only).

        Task items also get a new revision, so that a task change computed before this write reads again and keeps
        the expiry.
        """
        for start in range(0, len(keys), TRANSACTION_ITEMS):
            operations = [_expire(key, expires_at) for key in keys[start : start + TRANSACTION_ITEMS]]
            try:
                reasons = retry_conflicts(functools.partial(self.table.transact, operations), "expire items")
            except BlackboardError as exc:
                logger.warning(
                    "orchestration_id=<%s> | could not set the expiry of its items: %s", orchestration.id, exc
                )
                return
            if reasons is not None:
                logger.debug("orchestration_id=<%s> | items vanished before their expiry was set", orchestration.id)


def _expire(key: Item, expires_at: int) -> dict[str, Any]:
    names = {"#e": "expires_at"}
    values = {":e": number(expires_at)}
    expression = "SET #e = :e"
    if key["sk"]["S"].startswith(TASK_PREFIX):
        names["#rev"] = "rev"
        values[":one"] = number(1)
        expression += " ADD #rev :one"
    return {
        "Update": {
            "Key": key,
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    }


def _task_order(item: Item) -> tuple[int, int]:
    try:
        return int(item["wave"]["N"]), int(item["seq"]["N"])
    except (KeyError, ValueError):
        return (0, 0)  # a damaged item: listed first, and reported unreadable if its document is bad too


def _versioned_put(item: dict[str, Any], expected_version: int) -> dict[str, Any]:
    """A transaction's put of an orchestration item, conditional on the version it had when it was read."""
    return {
        "Put": {
            "Item": item,
            "ConditionExpression": "#v = :v",
            "ExpressionAttributeNames": {"#v": "version"},
            "ExpressionAttributeValues": {":v": number(expected_version)},
        }
    }
