"""Task changes on DynamoDB: read, run the change functions, write back under optimistic locks, count waves.

One call of :func:`apply_task_changes` is one atomic write: a conditional PutItem when a single task changes and no
wave counter moves, else one TransactWriteItems. Each task item carries a revision (``rev``); a write is conditional
on the revision that was read, so a change computed from a stale read never lands (the whole call is read and run
again). A task that becomes done moves its wave counter in the same transaction:

- while other tasks of the wave are still to finish: ``ADD done :k`` under ``done < size - k AND wave_size = size``;
- for the call that finishes the wave: ``SET done = size, closed = true`` under
  ``done = size - k AND wave_size = size AND NOT closed``.

The call does not read the counter first: it guesses from the wave size stored on the task items and the tasks of the
wave this process already made done (``WaveTally``: the closing form when those and the call's own make the whole
wave, as when one Lambda invocation runs a wave's SQS batch), and when the guess was wrong the cancellation reason
says so and the other form holds unless the wave grew (the counter only grows, and the call's own tasks are not in it
yet). A wave grows when a reactive task joins it (``DynamoDBBlackboard._insert_reactive``: ``wave_size + 1`` under
``NOT closed``); the tasks stored before keep the smaller size, so when the flipped form fails too the counter is
read and both forms are computed from its size. Since every form is conditional on the size it assumed, no call
closes a wave that a reactive task joined meanwhile. Exactly one call closes each wave.

The read is skipped when this process wrote every task of the call last (``_dynamodb_seen``) and every change
applies to those items: the revision condition then checks them, and a stale one makes the call read for real.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from blackboard.adapters.aws._dynamodb import TRANSACTION_ITEMS, Conflict, Item, Table, number, retry_conflicts
from blackboard.adapters.aws._dynamodb_items import PARTS, ItemCodec, task_key, wave_key
from blackboard.adapters.aws._dynamodb_seen import SeenItems, TaskKey, key_of
from blackboard.adapters.aws.exceptions import TransactionTooLargeError
from blackboard.exceptions import TaskNotFoundError
from blackboard.ports.blackboard import TaskChange, Transition, became_done
from blackboard.records import Task

__all__ = ["apply_task_changes"]

_TRUE = {"BOOL": True}
_FALSE = {"BOOL": False}


@dataclasses.dataclass
class _Wave:
    """The tasks of one wave that a call makes done."""

    orchestration_id: str
    wave: int
    size: int
    closers: list[int]  # indexes of the results that made a task of this wave done, in order
    closing: bool = False  # which form of the counter update to send
    flipped: bool = False
    reread: bool = False

    @property
    def key(self) -> tuple[str, int]:
        return self.orchestration_id, self.wave

    def operation(self) -> dict[str, Any]:
        done = len(self.closers)
        if self.closing:
            update = {
                "UpdateExpression": "SET #done = :size, #closed = :true",
                "ConditionExpression": "#done = :before AND #size = :size AND #closed = :false",
                "ExpressionAttributeValues": {
                    ":size": number(self.size),
                    ":before": number(self.size - done),
                    ":true": _TRUE,
                    ":false": _FALSE,
                },
                "ExpressionAttributeNames": {"#done": "done_count", "#closed": "closed", "#size": "wave_size"},
            }
        else:
            update = {
                "UpdateExpression": "ADD #done :k",
                "ConditionExpression": "#done < :limit AND #size = :size",
                "ExpressionAttributeValues": {
                    ":k": number(done),
                    ":limit": number(self.size - done),
                    ":size": number(self.size),
                },
                "ExpressionAttributeNames": {"#done": "done_count", "#size": "wave_size"},
            }
        return {"Update": {"Key": wave_key(self.orchestration_id, self.wave), **update}}


def apply_task_changes(
    table: Table, codec: ItemCodec, seen: SeenItems, changes: Sequence[tuple[str, str, TaskChange]]
) -> list[Transition]:
    """Run each change on its stored task and write every applied one in one atomic step (see the module doc).

    Raises:
        TaskNotFoundError: a task does not exist (nothing is written).
        TransactionTooLargeError: the writes do not fit one transaction (nothing is written).
    """
    keys = list(dict.fromkeys((o, t) for o, t, _ in changes))
    if len(keys) > TRANSACTION_ITEMS:
        raise TransactionTooLargeError(f"a batch of {len(keys)} task changes", len(keys), TRANSACTION_ITEMS)

    def attempt() -> list[Transition]:
        remembered = seen.get(keys)
        if remembered is None:
            return _attempt(table, codec, seen, changes, keys, _read(table, keys), trusted=True)
        try:
            return _attempt(table, codec, seen, changes, keys, remembered, trusted=False)
        except Conflict:  # an item changed since this process wrote it: the next try reads
            seen.forget(keys)
            raise

    return retry_conflicts(attempt, "task change")


def _read(table: Table, keys: list[TaskKey]) -> dict[TaskKey, Item]:
    if len(keys) == 1:
        found = table.get(task_key(*keys[0]))
        items = [] if found is None else [found]
    else:
        items = table.batch_get([task_key(o, t) for o, t in keys])
    return {key_of(item): item for item in items}


def _attempt(
    table: Table,
    codec: ItemCodec,
    seen: SeenItems,
    changes: Sequence[tuple[str, str, TaskChange]],
    keys: list[TaskKey],
    raws: dict[TaskKey, Item],
    *,
    trusted: bool,
) -> list[Transition]:
    """One try of the call on ``raws``: read just now (``trusted``), or remembered and checked by the write only."""
    stored: dict[TaskKey, Task] = {}
    staged: dict[TaskKey, Task] = {}
    waves: dict[tuple[str, int], _Wave] = {}
    results: list[Transition] = []
    for orchestration_id, task_id, change in changes:
        key = (orchestration_id, task_id)
        raw = raws.get(key)
        if raw is None:
            raise TaskNotFoundError(orchestration_id, task_id)
        if key not in stored:
            stored[key] = codec.task(raw)
        current = staged.get(key) or stored[key]
        changed = change(current)
        if changed is None:
            if not trusted:
                raise Conflict("a remembered task does not take the change: read it")
            results.append(Transition(False, current))
            continue
        staged[key] = changed
        if became_done(current, changed):
            size = int(raw["wave_size"]["N"])
            wave = waves.setdefault((orchestration_id, changed.wave), _Wave(orchestration_id, changed.wave, size, []))
            wave.closers.append(len(results))
        results.append(Transition(True, changed))
    if not staged:
        return results
    items = [
        codec.task_item(
            task,
            seq=int(raws[key]["seq"]["N"]),
            wave_size=int(raws[key]["wave_size"]["N"]),
            rev=int(raws[key]["rev"]["N"]) + 1,
            previous=(raws[key], stored[key]),
        )
        for key, task in staged.items()
    ]
    codec.values.fit(items, PARTS, "Task")
    puts = [
        {
            "Put": {
                "Item": item,
                "ConditionExpression": "#rev = :rev",
                "ExpressionAttributeNames": {"#rev": "rev"},
                "ExpressionAttributeValues": {":rev": raws[key]["rev"]},
            }
        }
        for key, item in zip(staged, items, strict=True)
    ]
    for wave in waves.values():
        wave.closing = seen.waves.done(wave.key, wave.size) + len(wave.closers) == wave.size
    _commit(table, puts, list(waves.values()))
    seen.remember(items)
    for wave in waves.values():
        if wave.closing:
            seen.waves.forget(wave.key)
            last = wave.closers[-1]
            results[last] = dataclasses.replace(results[last], closes_wave=True)
        else:
            seen.waves.add(wave.key, wave.size, len(wave.closers))
    return results


def _commit(table: Table, puts: list[dict[str, Any]], waves: list[_Wave]) -> None:
    """Write the tasks and move the wave counters; flip a wrong guess of a counter's form once."""
    if len(puts) + len(waves) > TRANSACTION_ITEMS:
        raise TransactionTooLargeError(
            f"a batch of {len(puts)} task changes over {len(waves)} wave(s)", len(puts) + len(waves), TRANSACTION_ITEMS
        )
    if len(puts) == 1 and not waves:
        put = puts[0]["Put"]
        if not table.put_once(
            put["Item"], put["ConditionExpression"], put["ExpressionAttributeValues"], put["ExpressionAttributeNames"]
        ):
            raise Conflict("the task changed since it was read")
        return
    while True:
        reasons = table.transact([*puts, *(w.operation() for w in waves)])
        if reasons is None:
            return
        if len(reasons) != len(puts) + len(waves) or any(code != "None" for code in reasons[: len(puts)]):
            raise Conflict("a task changed since it was read")
        for wave, code in zip(waves, reasons[len(puts) :], strict=True):
            if code == "None":
                continue
            if not wave.flipped:
                wave.closing, wave.flipped = not wave.closing, True
            elif not wave.reread:
                _read_counter(table, wave)
            else:
                raise Conflict("a wave counter moved unexpectedly")


def _read_counter(table: Table, wave: _Wave) -> None:
    """Take the wave's size from its counter (a reactive task grew it) and pick the form that holds now."""
    counter = table.get(wave_key(wave.orchestration_id, wave.wave))
    if counter is None:
        raise Conflict("the wave counter is not readable yet")
    wave.size = int(counter["wave_size"]["N"])
    wave.closing = int(counter["done_count"]["N"]) + len(wave.closers) == wave.size
    wave.reread = True
