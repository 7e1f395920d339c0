"""API calls and time per operation of the S3, SQS and EventBridge adapters, under moto in-process.

Run: ``.venv/bin/python bench/aws_io.py`` (or ``make bench``). Prints one line per operation: the AWS API calls it
made and its median wall time over ``--repeat`` runs. The call counts are what AWS would bill and throttle; the times
are moto's (in-process, no network) and only compare the operations with each other.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from blackboard import AgentRef, Event, TaskMessage
from blackboard.adapters.aws import EventBridgeBus, S3CodeStore, SqsTaskQueue
from tests.aws_io_support import CallCounter, moto_resources


def _message(i: int) -> TaskMessage:
    return TaskMessage(orchestration_id="o", task_id=f"t{i}", attempt=1, agent=AgentRef(name="a", version=1))


def _event(i: int) -> Event:
    return Event.parse({"source": "bench", "detail-type": "task.completed", "detail": {"n": i}})


def _measure(
    name: str, counter: CallCounter, run: Callable[[], object], repeat: int, reset: Callable[[], object]
) -> None:
    times: list[float] = []
    calls: Counter[str] = Counter()
    for _ in range(repeat):
        reset()
        counter.reset()
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
        calls = Counter(counter.calls)
    listed = ", ".join(f"{n} {op}" for op, n in calls.items()) or "none"
    print(f"{name:<34} {sum(calls.values()):>3} calls ({listed})  {statistics.median(times):7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with moto_resources() as resources:
        store = S3CodeStore(resources.bucket, session=resources.session)
        queue = SqsTaskQueue(resources.queue_url, session=resources.session, visibility_timeout=30)
        bus = EventBridgeBus(resources.bus_name, session=resources.session)
        s3_calls, sqs_calls, bus_calls = CallCounter(store.client), CallCounter(queue.client), CallCounter(bus.client)
        sqs = resources.client("sqs")

        def empty_queue() -> None:  # moto's PurgeQueue, like SQS's, works once a minute
            url = resources.queue_url
            while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
                entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
                sqs.delete_message_batch(QueueUrl=url, Entries=entries)

        def nothing() -> None:
            return None

        blobs = iter(range(10**9))
        _measure("S3 put (new blob)", s3_calls, lambda: store.put(b"x%d" % next(blobs)), args.repeat, nothing)
        _measure("S3 put (stored blob)", s3_calls, lambda: store.put(b"same"), args.repeat, nothing)
        ref = store.put(b"same")
        _measure("S3 get", s3_calls, lambda: store.get(ref.sha256), args.repeat, nothing)
        for n in (1, 10, 25, 50):
            batch = [_message(i) for i in range(n)]
            _measure(f"SQS send batch of {n}", sqs_calls, lambda b=batch: queue.send(b), args.repeat, empty_queue)
        empty_queue()
        queue.send([_message(i) for i in range(10 * args.repeat)])
        _measure("SQS receive (10 messages)", sqs_calls, lambda: queue.receive(10), args.repeat, nothing)
        empty_queue()
        queue.send([_message(i) for i in range(2 * args.repeat)])
        held = [r.receipt for r in queue.receive(10)] + [r.receipt for r in queue.receive(10)]
        _measure("SQS ack (one message)", sqs_calls, lambda: queue.ack(held.pop()), args.repeat, nothing)
        _measure(
            "SQS nack with delay", sqs_calls, lambda: queue.nack(held.pop(), delay_seconds=5), args.repeat, nothing
        )
        _measure("SQS stats", sqs_calls, queue.stats, args.repeat, nothing)
        for n in (1, 10, 25, 50):
            events = [_event(i) for i in range(n)]
            _measure(
                f"EventBridge publish {n} events", bus_calls, lambda e=events: bus.publish(e), args.repeat, nothing
            )


if __name__ == "__main__":
    main()
