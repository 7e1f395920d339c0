"""The demo prints what each local model completion evaluated, reused and wrote (the gap to the floor)."""

from __future__ import annotations

from typing import Any

from arbiter._cli_demo import DemoSummary, _local_calls
from wrapper.local_model import CallFigures


class _Counted:
    """A model that counts its calls as a number (as some test models do): no figures."""

    calls = 3


class _Local:
    def __init__(self, *figures: CallFigures) -> None:
        self.calls = list(figures)


def _figures(started: float, **changes: Any) -> CallFigures:
    base: dict[str, Any] = {
        "constrained": True,
        "prompt_tokens": 1400,
        "evaluated": 400,
        "generated": 100,
        "seconds": 12.0,
        "prompt_seconds": 8.0,
        "generate_seconds": 3.5,
        "threads": 2,
        "started": started,
    }
    return CallFigures(**{**base, **changes})


def test_local_calls_are_listed_in_order_with_reuse_and_sampling_time() -> None:
    calls = _local_calls(
        planner=_Local(_figures(1.0), _figures(3.0, constrained=False)),
        fabricator=_Local(_figures(2.0)),
        other=_Counted(),
    )
    assert [c["role"] for c in calls] == ["planner", "fabricator", "planner"]
    first = calls[0]
    assert first["reused"] == 1000 and first["sampling_seconds"] == 0.5 and first["tokens_per_second"] == 25.0
    summary = DemoSummary(
        "local:m", "completed", 2, 3, [], {"total": 3, "planner": 2, "fabricator": 1}, 10, 20.0, calls
    )
    lines = summary.lines()
    assert any("3 completion(s): prompt tokens 1200 evaluated, 3000 reused; 300 generated" in line for line in lines)
    assert sum(1 for line in lines if line.startswith("  planner")) == 2
