"""Putting the engine together: the same coordinator for the embedded runtime and the Lambda function."""

from __future__ import annotations

from typing import TYPE_CHECKING

from arbiter.coordinator import Coordinator, EngineSettings
from arbiter.planner import Planner
from arbiter.prompts import SYSTEM_PROMPT
from blackboard import Backends, FabricationRequest, TaskQueue
from wrapper.matching import Matcher
from wrapper.models import resolve_model

if TYPE_CHECKING:
    from strands.models import Model

__all__ = ["build_coordinator", "resolve"]


def resolve(model: Model | str | None) -> Model:
    """A Strands model from a model, a model spec, or nothing (``ARBITER_MODEL``, else the local model)."""
    if model is None or isinstance(model, str):
        return resolve_model(model)
    return model


def build_coordinator(
    backends: Backends,
    model: Model | str | None,
    *,
    settings: EngineSettings | None = None,
    fabrication_queue: TaskQueue | None = None,
    matcher: Matcher | None = None,
    system_prompt: str = SYSTEM_PROMPT,
) -> Coordinator:
    """The coordinator over ``backends`` with a planner on ``model``.

    Args:
        backends: the adapters.
        model: the planning model (a Strands model or a model spec).
        settings: engine defaults.
        fabrication_queue: where ``fabricate`` tasks are sent (none: they fail with a clear error).
        matcher: picks the agents each planning call sees (none: every active agent).
        system_prompt: the planner's instructions (``arbiter.prompts.system_prompt(runbook)`` adds a runbook).
    """

    def send(request: FabricationRequest) -> None:
        assert fabrication_queue is not None
        fabrication_queue.send([request])

    return Coordinator(
        backends,
        Planner(resolve(model), system_prompt),
        settings or EngineSettings(),
        fabricate=send if fabrication_queue is not None else None,
        matcher=matcher,
    )
