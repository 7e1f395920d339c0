"""A reviewer of every fabricated worker: a bus trigger on ``agent.published`` runs it on each new version.

Run (scripted models, offline, a few seconds)::

    .venv/bin/python examples/review/run.py --home /tmp/review-home

With the offline local model writing the worker and the review (minutes on a laptop CPU)::

    .venv/bin/python examples/review/run.py --home /tmp/review-home --model local:qwen2.5-coder-1.5b

Then, as a person approving the version::

    arbiter agents show word_counter --home /tmp/review-home      # the version, pending approval, and its review
    arbiter agents approve word_counter@1 --home /tmp/review-home  # prints the review again as it approves

The runtime requires approval, so the Fabricator publishes the new ``word_counter`` as ``pending_approval`` and
announces it (``agent.published``). The ``reviewer`` agent's bus trigger fires on it: a standing orchestration runs
the reviewer with the version's name, state, description and code, and records its verdict, which ``agents show``
and ``agents approve`` print.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from arbiter import LocalRuntime
from blackboard.announcements import announcement_id
from blackboard.standing import standing_event_id

HERE = Path(__file__).resolve().parent
REVIEWER_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "version": {"type": "integer"},
        "state": {"type": "string"},
        "description": {"type": "string"},
        "code": {"type": ["string", "null"]},
    },
    "required": ["name", "version", "state"],
}
#: Every first publication of a version (an approval announces it again, with ``approved: true``: not reviewed twice).
REVIEW_TRIGGER = {
    "pattern": {"source": ["arbiter.fabricator"], "detail-type": ["agent.published"], "detail": {"approved": [False]}},
    "input": {
        "name": "$.detail.name",
        "version": "$.detail.version",
        "state": "$.detail.state",
        "description": "$.detail.description",
        "code": "$.detail.code",
    },
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="the state directory (ARBITER_HOME)")
    parser.add_argument("--model", help="the model of the reviewer and the Fabricator (default: the scripted ones)")
    parser.add_argument("--fabricator-model", help="the Fabricator's model (default: --model)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the review")
    args = parser.parse_args(argv)
    reviewer_model = args.model or f"scripted:{HERE / 'reviewer.json'}"
    fabricator_model = args.fabricator_model or args.model or f"scripted:{HERE / 'fabricator.json'}"
    with LocalRuntime(
        args.home, model=fabricator_model, worker_model=reviewer_model, approval=True, matching="bm25"
    ) as runtime:
        runtime.register_agent(
            "reviewer",
            "Reviews the code of every fabricated worker version: approve, or concerns with reasons.",
            HERE / "reviewer.py",
            input_schema=REVIEWER_SCHEMA,
            timeout_seconds=args.timeout,
            triggers=[REVIEW_TRIGGER],
            # A local model runs in this process: a sandboxed child has neither the memory nor the model file for it.
            # The reviewer is this example's own code, not generated code, so it may run trusted then.
            trusted=reviewer_model.startswith("local:"),
        )
        fabricated = runtime.fabricate(
            "Count the words in a piece of text.",
            inputs={"text": "the text"},
            examples=[{"input": {"text": "one two three"}, "expected": {"words": 3}}],
        )
        agent = fabricated.agent
        print(f"published {agent.ref} ({agent.state.value})")
        key = announcement_id(agent.name, agent.version, agent.state)
        review = runtime.backends.blackboard.find_orchestration(standing_event_id(key))
        if review is None:
            print("no review started: is the reviewer's trigger registered?", file=sys.stderr)
            return 1
        result = runtime.wait(review.id, timeout=args.timeout)
        if not result.ok:
            print(f"the review failed: {result.error}", file=sys.stderr)
            return 1
        verdict = result.output["reviewer@1"]
        print(f"review of {agent.ref}: {verdict['verdict']} - {'; '.join(verdict['reasons'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
