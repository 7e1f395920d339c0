"""Generation: a Strands agent with no tools at all writes a worker module, returned as a structured draft."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from blackboard import FabricationRequest, Usage
from fabricator.exceptions import FabricatorError
from fabricator.policy import DEFAULT_POLICY, Policy
from fabricator.prompts import request_prompt, system_prompt

if TYPE_CHECKING:
    from strands.models import Model

__all__ = ["Draft", "GenerationError", "Generator"]


class Draft(BaseModel):
    """A worker agent as the Fabricator's model writes it."""

    name: str = Field(description="snake_case name that says what the worker does")
    description: str = Field(description="what it does, what it needs and what it returns, for a planner")
    code: str = Field(
        description="the whole Python module, defining handler(...) at module level",
        json_schema_extra={"contentMediaType": "text/x-python"},
    )
    input_schema: dict[str, Any] = Field(description="JSON Schema (type object) of handler's keyword arguments")
    sample_inputs: list[dict[str, Any]] = Field(description="1 to 3 realistic inputs that match the schema")


class GenerationError(FabricatorError):
    """The model did not produce a draft (the provider failed or returned no structured output)."""

    retryable = True


class Generator:
    """Writes drafts with any Strands model.

    The agent it uses has no tools (no shell, no network, no files): it can only answer with a draft.

    Args:
        model: the Strands model.
        policy: the policy whose allow-list the prompt teaches.
    """

    def __init__(self, model: Model, policy: Policy = DEFAULT_POLICY) -> None:
        self.model = model
        self._system_prompt = system_prompt(policy)
        self.usage = Usage()

    def draft(self, request: FabricationRequest, taken: Iterable[str], feedback: str = "") -> Draft:
        """Write one draft for ``request``, avoiding the ``taken`` names, fixing what ``feedback`` says."""
        from strands import Agent

        agent = Agent(model=self.model, system_prompt=self._system_prompt, tools=[], callback_handler=None)
        try:
            result = agent(request_prompt(request, taken, feedback), structured_output_model=Draft)
        except Exception as exc:
            raise GenerationError(f"the model did not write a draft: {type(exc).__name__}: {exc}") from exc
        usage = result.metrics.accumulated_usage
        self.usage = self.usage + Usage(
            input_tokens=usage.get("inputTokens", 0),
            output_tokens=usage.get("outputTokens", 0),
            total_tokens=usage.get("totalTokens", 0),
        )
        draft = result.structured_output
        if not isinstance(draft, Draft):
            raise GenerationError("the model returned no draft")
        return draft
