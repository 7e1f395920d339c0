"""The runtime process of the chaos run (``bench/chaos.py``): submits the orchestrations and waits for them.

Usage: ``python _chaos_app.py CONFIG_JSON`` where the config names the home, the marker port, the counts and timings.
Started again after a SIGKILL, it submits the same events (idempotent on their ids) and waits for them: the restart
resumes what the killed process left. Prints one JSON line with the status of every orchestration.
"""

from __future__ import annotations

import dataclasses
import json
import random
import sys
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

sys.path.insert(
    0, json.loads(sys.argv[1])["code_root"] if len(sys.argv) > 1 else str(Path(__file__).resolve().parents[1])
)

from strands.models import Model

from arbiter import EngineSettings, LocalRuntime
from blackboard import RetryPolicy


class ChaosModel(Model):
    """Picks its turn from the conversation (waves so far), so a restarted process goes on where the last one was.

    Each wave asks for ``tasks`` calls of the marking worker with seeded holds, some failing their first attempt.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def update_config(self, **config: Any) -> None:
        return None

    def get_config(self) -> dict[str, Any]:
        return {}

    async def structured_output(self, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:  # pragma: no cover
        raise NotImplementedError
        yield

    async def stream(
        self, messages: Any, tool_specs: Any = None, system_prompt: Any = None, **kwargs: Any
    ) -> AsyncGenerator[Any, None]:
        wave = sum(1 for m in messages if m["role"] == "assistant")
        yield {"messageStart": {"role": "assistant"}}
        if wave >= self.config["waves"]:
            yield {"contentBlockStart": {"start": {}}}
            yield {"contentBlockDelta": {"delta": {"text": "all waves done"}}}
            yield {"contentBlockStop": {}}
            yield {"messageStop": {"stopReason": "end_turn"}}
            return
        seed = f"{self.config['seed']}|{messages[0]['content'][0]['text']}|{wave}"
        rng = random.Random(seed)
        for i in range(self.config["tasks"]):
            data = {
                "port": self.config["port"],
                "hold": rng.choice(self.config["holds"]),
                "fail_first": rng.random() < self.config["fail_share"],
            }
            yield {"contentBlockStart": {"start": {"toolUse": {"name": "mark", "toolUseId": f"w{wave}t{i}"}}}}
            yield {"contentBlockDelta": {"delta": {"toolUse": {"input": json.dumps(data)}}}}
            yield {"contentBlockStop": {}}
        yield {"messageStop": {"stopReason": "tool_use"}}


def main(config: dict[str, Any]) -> None:
    settings = EngineSettings(
        retry=RetryPolicy(base_seconds=0.05, max_seconds=0.2), queue_grace_seconds=config["grace"], max_attempts=6
    )
    if "stalled_after_seconds" in {f.name for f in dataclasses.fields(EngineSettings)}:  # absent in older versions
        settings = dataclasses.replace(settings, stalled_after_seconds=config["stalled_after"])
    layout: dict[str, Any] = {"workers": config["runtime_workers"], "queue": "sqlite", "sweep_interval": 0.2}
    try:
        from arbiter.config import Deployment
    except ImportError:  # a version before the configuration objects: the same settings as keywords
        options: dict[str, Any] = layout
    else:
        options = {"deployment": Deployment(**layout)}
    with LocalRuntime(
        config["home"],
        model=ChaosModel(config),
        worker_model="openai:chaos",
        settings=settings,
        **options,
    ) as runtime:
        runtime.register_agent("mark", "Marks its start.", config["module"], timeout_seconds=config["timeout"])
        ids = [
            runtime.submit({"id": f"chaos-{n}", "source": "chaos", "detail-type": "go", "detail": {"n": n}})
            for n in range(config["orchestrations"])
        ]
        statuses = [runtime.wait(i, timeout=config["wait_seconds"]).status for i in ids]
        print(json.dumps({"statuses": statuses, "ids": ids}), flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
