"""A claim in one call: a conditional UpdateItem of the task's state, no read first.

The port's claim is "``state := running, updated_at := now, holder := h, lease_expires_at := now + L`` if the
attempt matches and the state is claimable" (no holder and no lease for a claim without one: those attributes are
removed). The fields are plain attributes of the task item (``TASK_FIELDS``), so one UpdateItem makes the change
under the condition ``attempt = :a AND state IN (claimable states)`` and moves the revision. What it writes comes
from the port: its change function runs on stand-in tasks built from the request (one per claimable state, and one at
another attempt), and the fast path is taken only when the change applies exactly as that condition says and
touches nothing but those fields. The item as it was comes back (``ALL_OLD``, on success and on a failed
condition) and the port's change function runs on it: its result is the returned task, and it must be what the
update stored; if it ever is not, the item is put right with the port's result under the revision the update wrote.

A response lost after the update applied makes botocore send it again; the repeated update fails its condition
against our own write, recognised by its ``write_id``.
"""

from __future__ import annotations

import logging
import uuid

from pydantic import ValidationError

from blackboard.adapters.aws._dynamodb import WRITE_ID, Item, Table, number, string
from blackboard.adapters.aws._dynamodb_items import TASK_FIELDS, ItemCodec, task_key
from blackboard.adapters.aws._dynamodb_seen import SeenItems
from blackboard.exceptions import BlackboardError, InvalidTransitionError, TaskNotFoundError
from blackboard.messages import AgentRef
from blackboard.ports.blackboard import TaskChange, Transition
from blackboard.records import Task
from blackboard.states import CLAIMABLE_TASK_STATES, check_task_transition

__all__ = ["claim_task"]

logger = logging.getLogger(__name__)

#: Attributes the update sets: the fields, and the index keys that follow from them.
_SET = (*TASK_FIELDS, "gsi1pk", "gsi1sk")
#: Attributes the item codec derives from a task, compared when the stored item is checked against the port.
_DERIVED = ("state", "attempt", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")
_STATES = sorted(CLAIMABLE_TASK_STATES)
_CONDITION = f"#attempt = :attempt AND #state IN ({', '.join(f':s{i}' for i in range(len(_STATES)))})"
_NAMES = {f"#{name}": name for name in (*_SET, "attempt", "rev", WRITE_ID)}


def _update(present: list[str], absent: list[str]) -> str:
    """SET the attributes the claim writes, REMOVE those it leaves ``None`` (a claim without a lease)."""
    update = "SET " + ", ".join(f"#{name} = :{name}" for name in present) + f", #{WRITE_ID} = :w"
    return update + " ADD #rev :one" + (f" REMOVE {', '.join(f'#{name}' for name in absent)}" if absent else "")


def claim_task(
    table: Table,
    codec: ItemCodec,
    seen: SeenItems,
    orchestration_id: str,
    task_id: str,
    attempt: int,
    change: TaskChange,
) -> Transition | None:
    """Run the port's claim ``change`` (of ``attempt``) on the task in one UpdateItem.

    Returns:
        The transition, or ``None`` when this change is not one the fast path can make (the caller then reads and
        writes as for any other change; nothing was written).

    Raises:
        TaskNotFoundError: there is no such task.
    """
    changed = _target(orchestration_id, task_id, attempt, change)
    if changed is None:
        return None
    written = codec.task_item(changed, seq=0, wave_size=1, rev=0)
    present = [name for name in _SET if name in written]
    absent = [name for name in _SET if name not in written]
    token = string(uuid.uuid4().hex)
    values: Item = {f":{name}": written[name] for name in present}
    values.update({f":s{i}": string(state.value) for i, state in enumerate(_STATES)})
    values.update({":attempt": number(attempt), ":one": number(1), ":w": token})
    key = task_key(orchestration_id, task_id)
    applied, item = table.update_returning(key, _update(present, absent), values, _CONDITION, _NAMES)
    if applied and item is not None:
        kept = {name: value for name, value in item.items() if name not in absent}
        stored = {**kept, **{name: written[name] for name in present}, "rev": number(int(item["rev"]["N"]) + 1)}
        return _checked(table, codec, seen, item, {**stored, WRITE_ID: token}, change)
    if item is None:  # no item, or a service that does not return it on a failed condition
        item = table.get(key)
        if item is None:
            raise TaskNotFoundError(orchestration_id, task_id)
    current = codec.task(item)
    if item.get(WRITE_ID) == token:  # our own update, sent again by botocore after a lost response
        seen.remember([item])
        return Transition(True, current)
    if change(current) is None:
        return Transition(False, current)
    return None  # the task moved after the condition was checked: the general path decides


def _target(orchestration_id: str, task_id: str, attempt: int, change: TaskChange) -> Task | None:
    """What the port's change makes of a claimable task, if it is the change the UpdateItem makes."""
    try:
        stand_ins = [
            Task(
                orchestration_id=orchestration_id,
                task_id=task_id,
                wave=1,
                agent=AgentRef(name="stand-in"),
                state=state,
                attempt=attempt,
            )
            for state in _STATES
        ]
        other_attempt = stand_ins[0].model_copy(update={"attempt": attempt + 1})
    except ValidationError:
        return None
    if change(other_attempt) is not None:
        return None
    targets = []
    for stand_in in stand_ins:
        changed = change(stand_in)
        if changed is None:
            return None
        moved = {name for name in Task.model_fields if getattr(changed, name) != getattr(stand_in, name)}
        if not moved <= set(TASK_FIELDS):
            return None
        targets.append(changed.model_dump(include=set(TASK_FIELDS)))
    if any(target != targets[0] for target in targets):
        return None
    return change(stand_ins[0])


def _checked(
    table: Table, codec: ItemCodec, seen: SeenItems, before_item: Item, stored_item: Item, change: TaskChange
) -> Transition:
    """The transition of an applied update: the port's change on the task as it was, checked against the item."""
    before = codec.task(before_item)
    expected = change(before)
    refused: InvalidTransitionError | None = None
    if expected is not None:
        try:
            check_task_transition(before.state, expected.state)
        except InvalidTransitionError as exc:
            refused, expected = exc, None
    seq, size = int(before_item["seq"]["N"]), int(before_item["wave_size"]["N"])
    rev = int(stored_item["rev"]["N"])
    if expected is not None:
        item = codec.task_item(expected, seq=seq, wave_size=size, rev=rev, previous=(before_item, before))
        if codec.task(stored_item) == expected and all(item.get(n) == stored_item.get(n) for n in _DERIVED):
            seen.remember([stored_item])
            return Transition(True, expected)
    # The update and the port disagree: store what the port says, over our own write only.
    right = expected or before
    logger.error("task_id=<%s> | the one-call claim disagreed with the port; putting the task right", right.task_id)
    item = codec.task_item(right, seq=seq, wave_size=size, rev=rev + 1, previous=(before_item, before))
    if not table.put(
        item,
        "#rev = :rev AND #w = :w",
        {":rev": number(rev), ":w": stored_item[WRITE_ID]},
        {"#rev": "rev", "#w": WRITE_ID},
    ):
        raise BlackboardError(
            f"task {right.orchestration_id}/{right.task_id}: a claim stored a state its change function does not"
            " give, and the task changed before it could be put right; check it with get_task"
        )
    seen.remember([item])
    if refused is not None:
        raise refused
    return Transition(expected is not None, right)
