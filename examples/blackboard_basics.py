"""The blackboard on its own: an event becomes an orchestration, a wave of two tasks runs, the wave closes once.

Run it with ``.venv/bin/python examples/blackboard_basics.py [HOME]`` (default: a temporary directory). It uses the
embedded default (SQLite + local code store), prints each step, and exits 0.
"""

from __future__ import annotations

import sys
import tempfile

from blackboard import (
    AgentManifest,
    AgentRef,
    Event,
    Orchestration,
    Task,
    TaskResult,
    TaskState,
    local_backends,
)


def main(home: str) -> None:
    backends = local_backends(home)
    board, registry, code = backends.blackboard, backends.registry, backends.code_store

    # A worker agent: its code goes into the content-addressed store, its manifest into the registry.
    ref = code.put(b"def handler(item: str) -> dict:\n    return {'cooked': item}\n")
    registry.put(
        AgentManifest(
            name="burger_cook",
            version=1,
            description="Cooks burgers to order.",
            input_schema={"type": "object", "properties": {"item": {"type": "string"}}, "required": ["item"]},
            code=ref,
        )
    )
    print("registered", registry.active("burger_cook").ref, "code", ref.sha256[:12])

    # An ingress event starts an orchestration (idempotent on the event id).
    event = Event.parse(
        {"id": "order-1", "source": "meal.request", "detail-type": "Order-Placed", "detail": {"items": 2}}
    )
    orchestration = board.create_orchestration(Orchestration(event=event)).record
    print("orchestration", orchestration.id, orchestration.status.value)

    # One wave: two calls to the same agent are two tasks.
    tasks = [
        Task(
            orchestration_id=orchestration.id,
            task_id=f"tooluse_{i}",
            wave=1,
            agent=AgentRef(name="burger_cook", version=1),
            input={"item": f"burger {i}"},
        )
        for i in (1, 2)
    ]
    orchestration = board.add_wave(orchestration, tasks).record
    board.mark_dispatched(tasks)

    for task in tasks:
        board.claim(orchestration.id, task.task_id, task.attempt)
        result = TaskResult(status=TaskState.SUCCEEDED, output={"cooked": task.input["item"]}, duration_ms=3.0)
        outcome = board.complete(orchestration.id, task.task_id, task.attempt, result)
        duplicate = board.complete(orchestration.id, task.task_id, task.attempt, result)
        print(
            f"{task.task_id}: applied={outcome.applied} closes_wave={outcome.closes_wave} duplicate={duplicate.applied}"
        )

    board.put_note(orchestration.id, "grill", {"temperature": 230}, author="burger_cook")
    final = board.update_orchestration(orchestration, status="completed", output="2 burgers ready").record
    print("finished", final.status.value, "-", final.output, "- notes:", [n.key for n in board.notes(final.id)])
    backends.close()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(tmp)
