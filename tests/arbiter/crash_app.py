"""A program for the crash-resume test: runs a three-wave orchestration; ``first`` blocks in wave 2 to be killed.

Usage: python crash_app.py HOME LOG first|second
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from strands.models import Model

from arbiter import AgentDefinition, EngineSettings, LocalRuntime
from arbiter.config import Deployment
from blackboard import RetryPolicy

TURNS: list[dict[str, Any]] = [
    {"tool": ("step", {"n": 1})},
    {"tool": ("step", {"n": 2})},
    {"tool": ("step", {"n": 3})},
    {"text": "all three steps done"},
]


class ConversationModel(Model):
    """Picks its turn from the conversation (how many assistant turns it holds), so a restarted process goes on."""

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
        turn = TURNS[sum(1 for m in messages if m["role"] == "assistant")]
        yield {"messageStart": {"role": "assistant"}}
        if "tool" in turn:
            name, data = turn["tool"]
            tool_id = f"step{data['n']}"
            yield {"contentBlockStart": {"start": {"toolUse": {"name": name, "toolUseId": tool_id}}}}
            yield {"contentBlockDelta": {"delta": {"toolUse": {"input": json.dumps(data)}}}}
            yield {"contentBlockStop": {}}
            yield {"messageStop": {"stopReason": "tool_use"}}
        else:
            yield {"contentBlockStart": {"start": {}}}
            yield {"contentBlockDelta": {"delta": {"text": turn["text"]}}}
            yield {"contentBlockStop": {}}
            yield {"messageStop": {"stopReason": "end_turn"}}


def main(home: str, log: str, phase: str) -> None:
    path = Path(log)

    def step(n: int) -> str:
        with path.open("a") as handle:
            handle.write(f"start {n}\n")
        if n == 2 and phase == "first":
            threading.Event().wait()  # blocked until the test kills this process
        with path.open("a") as handle:
            handle.write(f"done {n}\n")
        return f"step {n} ok"

    settings = EngineSettings(retry=RetryPolicy(base_seconds=0.05, max_seconds=0.1), queue_grace_seconds=0.5)
    # Given up front: the restarted process resumes step 2 with its callable already registered.
    agents = [AgentDefinition("step", "Runs one numbered step.", step, timeout_seconds=1.5)]
    with LocalRuntime(
        home, model=ConversationModel(), settings=settings, agents=agents, deployment=Deployment(sweep_interval=0.2)
    ) as runtime:
        orchestration_id = runtime.submit({"id": "crash-test-1", "source": "test", "detail-type": "go", "detail": {}})
        result = runtime.wait(orchestration_id, timeout=120)
        print(json.dumps({"status": result.status, "output": result.output, "id": orchestration_id}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
