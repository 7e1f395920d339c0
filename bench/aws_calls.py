"""AWS API calls per task and per orchestration, on moto, for ``examples/restaurant``.

Run: ``.venv/bin/python bench/aws_calls.py [--orchestrations 5]`` (or ``make bench``).

The whole AWS path runs as deployed: the event is put on the bus, the ingress rule routes it, the arbiter function
plans, tasks go through SQS to the wrapper function, completions come back over the bus. Lambda's own calls (the
event source mapping's ReceiveMessage/DeleteMessage, EventBridge invoking functions) are not the code's and are not
counted; every call the handlers make through boto3 is. The first orchestration warms the caches (manifests, code,
the matcher's index); the figures are per orchestration from the second on ("steady state").
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[1]
RESTAURANT = ROOT / "examples" / "restaurant"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orchestrations", type=int, default=5)
    args = parser.parse_args()
    env = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    with mock.patch.dict(os.environ, env), mock_aws():
        run(args.orchestrations)


def run(orchestrations: int) -> None:
    import arbiter.aws_lambda
    import wrapper.aws_lambda
    from arbiter.inputs import load_event_file
    from blackboard.adapters.aws import AwsConfig, aws_backends
    from tests.aws.conftest import register_example
    from tests.aws.deployment import CallCounter, MotoDeployment

    deployment = MotoDeployment(name="bench")
    counter = CallCounter()
    # Every client the handlers make comes from a default session: count what goes through any of them.
    boto3.setup_default_session(region_name="us-east-1")
    original = boto3.session.Session.client

    def counted_client(self: boto3.session.Session, *a: object, **k: object) -> object:
        client = original(self, *a, **k)  # type: ignore[call-overload]
        client.meta.events.register("before-call.*.*", counter)
        return client

    event = load_event_file(RESTAURANT / "event.json").to_dict()
    with (
        mock.patch.dict(os.environ, {**deployment.env, "ARBITER_MATCHING": "bm25"}),
        mock.patch.object(boto3.session.Session, "client", counted_client),
    ):
        register_example(aws_backends(AwsConfig.from_env()), "restaurant")
        per_run: list[Counter[str]] = []
        tasks = 0
        for _ in range(orchestrations):
            os.environ["ARBITER_MODEL"] = f"scripted:{RESTAURANT / 'scripted.json'}"
            arbiter.aws_lambda.reset()  # a scripted planner replays its turns from the start
            with counter.paused():
                deployment.put_event(event)
            before = Counter(counter.calls)
            deployment.pump(arbiter.aws_lambda.handler, wrapper.aws_lambda.handler, rounds=20)
            per_run.append(counter.calls - before)
        board = aws_backends(AwsConfig.from_env()).blackboard
        finished = board.list_orchestrations(None, limit=orchestrations)
        tasks = sum(len(board.list_tasks(o.id)) for o in finished)
        wrapper.aws_lambda.reset()
    steady = per_run[1:] or per_run
    total: Counter[str] = Counter()
    for calls in steady:
        total.update(calls)
    per_orch = sum(total.values()) / len(steady)
    per_task = per_orch / (tasks / len(finished))
    print(f"restaurant: {len(finished)} orchestrations, {tasks // len(finished)} tasks each, 2 waves")
    print(f"first orchestration (cold caches): {sum(per_run[0].values())} calls")
    print(f"steady state: {per_orch:.1f} calls per orchestration, {per_task:.2f} per task")
    print(f"scans: {sum(n for k, n in total.items() if k.endswith('.Scan'))}")
    print("calls per orchestration by operation (steady state):")
    for name, n in sorted(total.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<45} {n / len(steady):6.1f}")


if __name__ == "__main__":
    main()
