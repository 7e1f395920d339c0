"""AWS API calls per task and per orchestration, on moto, for ``examples/restaurant``.

Run: ``.venv/bin/python bench/aws_calls.py [--orchestrations 5]`` (or ``make bench``).

The whole AWS path runs as deployed: the event is put on the bus, the ingress rule routes it, the arbiter function
plans, tasks go through SQS to the wrapper function, completions come back over the bus. Lambda's own calls (the
event source mapping's ReceiveMessage/DeleteMessage, EventBridge invoking functions) are not the code's and are not
counted; every call the handlers make through boto3 is. The first orchestration warms the caches (manifests, code,
the matcher's index); the figures are per orchestration from the second on ("steady state"). One wave of 1 and of
10 tasks then splits the cost into what each added task costs and what an orchestration costs apart from its tasks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
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
    parser.add_argument(
        "--sites", action="store_true", help="also itemise the calls of one restaurant and one N=10 wave by call site"
    )
    args = parser.parse_args()
    env = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    with mock.patch.dict(os.environ, env), mock_aws():
        run(args.orchestrations, sites=args.sites)


def _site() -> str:
    """Where a call comes from: the three innermost frames of the project outside the AWS adapters."""
    frames = [
        f"{Path(frame.filename).parent.name}/{Path(frame.filename).name}:{frame.name}"
        for frame in traceback.extract_stack()
        if str(ROOT) in frame.filename
        and "/adapters/" not in frame.filename
        and "site-packages" not in frame.filename
        and "/tests/" not in frame.filename
        and "/bench/" not in frame.filename
    ]
    return " < ".join(reversed(frames[-3:]))


def run(orchestrations: int, *, sites: bool = False) -> None:
    import tempfile

    import arbiter.aws_lambda
    import wrapper.aws_lambda
    from arbiter.inputs import load_event_file
    from blackboard.adapters.aws import AwsConfig, aws_backends
    from tests.aws.conftest import register_example
    from tests.aws.deployment import CallCounter, MotoDeployment
    from wrapper.testing import ScriptedModel

    deployment = MotoDeployment(name="bench")
    counter = CallCounter()
    by_site: Counter[str] = Counter()
    original = boto3.session.Session.client

    def site_counter(model: object, **_: object) -> None:
        if counter.enabled and sites:
            by_site[f"{model.service_model.service_name}.{model.name} {_site()}"] += 1  # type: ignore[attr-defined]

    def counted_client(self: boto3.session.Session, *a: object, **k: object) -> object:
        # Every client the handlers make goes through a session: count what any of them calls.
        client = original(self, *a, **k)  # type: ignore[call-overload]
        client.meta.events.register("before-call.*.*", counter)
        client.meta.events.register("before-call.*.*", site_counter)
        return client

    event = load_event_file(RESTAURANT / "event.json").to_dict()
    scripts = Path(tempfile.mkdtemp(prefix="arbiter-bench-"))

    def orchestrate(script: Path) -> Counter[str]:
        # A scripted planner replays its turns from the start: only the model is new. The rest of the warm
        # execution environment (its registry listing and matcher index, its clients) stays, as it does on AWS.
        os.environ["ARBITER_MODEL"] = f"scripted:{script}"
        arbiter.aws_lambda.coordinator().planner.model = ScriptedModel.from_file(script)
        with counter.paused():
            deployment.put_event(event)
        before = Counter(counter.calls)
        deployment.pump(arbiter.aws_lambda.handler, wrapper.aws_lambda.handler, rounds=20)
        return counter.calls - before

    def fanout(width: int) -> Path:
        calls = [{"name": "fry_cook", "input": {"table": 7, "portion": "regular"}} for _ in range(width)]
        path = scripts / f"fanout-{width}.json"
        path.write_text(json.dumps({"turns": [{"tool_calls": calls}, {"text": "served"}]}))
        return path

    with (
        mock.patch.dict(os.environ, {**deployment.env, "ARBITER_MATCHING": "bm25"}),
        mock.patch.object(boto3.session.Session, "client", counted_client),
    ):
        register_example(aws_backends(AwsConfig.from_env()), "restaurant")
        arbiter.aws_lambda.reset()
        restaurant = [orchestrate(RESTAURANT / "scripted.json") for _ in range(orchestrations)]
        restaurant_sites: Counter[str] = Counter()
        if sites:  # one more, itemised (not in the counts above)
            by_site.clear()
            orchestrate(RESTAURANT / "scripted.json")
            restaurant_sites.update(by_site)
        narrow = [orchestrate(fanout(1)) for _ in range(3)][1:]
        wide = [orchestrate(fanout(10)) for _ in range(2)]
        by_site.clear()
        orchestrate(fanout(10))
        wrapper.aws_lambda.reset()
    steady = restaurant[1:] or restaurant
    total: Counter[str] = Counter()
    for calls in steady:
        total.update(calls)
    per_orchestration = sum(total.values()) / len(steady)
    one = sum(sum(c.values()) for c in narrow) / len(narrow)
    ten = sum(sum(c.values()) for c in wide) / len(wide)
    marginal = (ten - one) / 9
    print("restaurant (4 tasks in 2 waves; 3 planning calls):")
    print(f"  first orchestration (cold caches): {sum(restaurant[0].values())} calls")
    print(f"  steady state: {per_orchestration:.1f} calls per orchestration, {per_orchestration / 4:.2f} per task")
    print(f"  scans: {sum(n for k, n in total.items() if k.endswith('.Scan'))}")
    print("one wave of N fry_cook tasks, then the answer:")
    print(f"  N=1: {one:.1f} calls; N=10: {ten:.1f} calls")
    print(f"  each added task: {marginal:.2f} calls; per orchestration apart from its tasks: {one - marginal:.1f}")
    print("restaurant, calls per orchestration by operation (steady state):")
    for name, n in sorted(total.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<45} {n / len(steady):6.1f}")
    if sites:
        print("one restaurant orchestration (steady state), calls by call site:")
        for name, n in sorted(restaurant_sites.items(), key=lambda kv: -kv[1]):
            print(f"  {n:4d}  {name}")
        print("one wave of 10 fry_cook tasks, calls by call site:")
        for name, n in sorted(by_site.items(), key=lambda kv: -kv[1]):
            print(f"  {n:4d}  {name}")


if __name__ == "__main__":
    main()
