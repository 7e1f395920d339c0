"""Generation: a Strands agent with no tools at all writes tests, then a worker module, returned as structured output.

Three kinds of call, each one structured answer of the model with no tools (no shell, no network, no files):

- :meth:`Generator.tests`: test cases for the capability, written *before* any code and without seeing any;
- :meth:`Generator.draft`: the worker module with its schemas, written against the capability, the caller's
  examples and those tests;
- :meth:`Generator.rederive`: one expected output worked out again, step by step, to settle whether a failed test
  or the code is wrong.

Tests and derivations are asked for as Python source (asserts, an ``expected = ...`` line) declared as code, which a
small local model writes as a plain code block, fast and unconstrained; they are read back from the syntax tree.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, Field

from blackboard import FabricationRequest, Usage
from fabricator.cases import Case, parse_literal_assignment, parse_tests
from fabricator.exceptions import FabricatorError
from fabricator.policy import DEFAULT_POLICY, Policy
from fabricator.prompts import (
    DERIVATION_SYSTEM_PROMPT,
    TESTS_SYSTEM_PROMPT,
    derivation_prompt,
    request_prompt,
    system_prompt,
    tests_prompt,
)
from wrapper.field_checks import FieldCheck, FieldRefused, field_checks
from wrapper.loops import run_coroutine
from wrapper.models import track_usage
from wrapper.sampling import sampled

if TYPE_CHECKING:
    from strands.models import Model

__all__ = ["CaseTable", "CheckedDraft", "CodeRefused", "Derivation", "Draft", "GenerationError", "Generator"]

M = TypeVar("M", bound=BaseModel)

#: The temperature of a sampled draft: another candidate, still close to what the model finds most likely.
DRAFT_TEMPERATURE = 0.7

#: Bounds of a test table and of a derivation (a model that runs on is cut at a line end: the asserts before count).
MAX_TABLE_CHARS = 2400
MAX_DERIVATION_CHARS = 1500


class CheckedDraft(BaseModel):
    """A worker agent as the Fabricator's model writes it for a request with examples: no sample inputs.

    The caller's examples are run with their expected outputs; a sample input only shows that the code runs, and a
    small model writes the example's input again as its sample (a run, and its tokens, for nothing).
    """

    name: str = Field(description="snake_case name that says what the worker does")
    description: str = Field(description="what it does, what it needs and what it returns, for a planner")
    code: str = Field(
        description="the whole Python module, defining handler(...) at module level",
        json_schema_extra={"contentMediaType": "text/x-python"},
    )
    input_schema: dict[str, Any] = Field(description="JSON Schema (type object) of handler's keyword arguments")
    output_schema: dict[str, Any] = Field(
        description="JSON Schema of what handler returns (for an object: its properties, types and required fields)"
    )


class Draft(CheckedDraft):
    """A worker agent as the Fabricator's model writes it."""

    sample_inputs: list[dict[str, Any]] = Field(
        default_factory=list, description="0 to 2 more realistic inputs that match the schema"
    )


class CaseTable(BaseModel):
    """Test cases for a capability, written before the code as Python asserts."""

    tests: str = Field(
        description="Python asserts, one per line: assert handler(name=value, ...) == expected",
        max_length=MAX_TABLE_CHARS,
        json_schema_extra={"contentMediaType": "text/x-python"},
    )


class Derivation(BaseModel):
    """One expected output worked out step by step: comments, then ``expected = <literal>``."""

    working: str = Field(
        description="the working as Python comments, then one line: expected = <the literal value>",
        max_length=MAX_DERIVATION_CHARS,
        json_schema_extra={"contentMediaType": "text/x-python"},
    )


class GenerationError(FabricatorError):
    """The model did not produce a draft (the provider failed or returned no structured output)."""

    retryable = True


class CodeRefused(FabricatorError):
    """A draft's code was refused by the caller's check as soon as it was written; the rest was not asked for.

    Attributes:
        code: the code written.
        problem: why it was refused (the check's words).
    """

    def __init__(self, code: str, problem: str) -> None:
        self.code = code
        self.problem = problem
        super().__init__(f"the draft's code was refused: {problem[:500]}")


class Generator:
    """Writes tests, drafts and derivations with any Strands model.

    Each is one structured-output call of the model itself: no agent, no tools (no shell, no network, no files);
    the model can only answer with the object asked for.

    Args:
        model: the Strands model.
        policy: the policy whose allow-list the prompt teaches.
    """

    def __init__(self, model: Model, policy: Policy = DEFAULT_POLICY) -> None:
        self.model = model
        self._counted = track_usage(model, self._count)  # each call's usage report adds to ``usage``
        self._system_prompt = system_prompt(policy)
        self.usage = Usage()

    def draft(
        self,
        request: FabricationRequest,
        taken: Iterable[str],
        feedback: str = "",
        cases: Iterable[Case] = (),
        previous: str = "",
        sample: int = 0,
        code_check: FieldCheck | None = None,
    ) -> Draft:
        """Write one draft for ``request`` that passes ``cases``, avoiding the ``taken`` names.

        After a refusal, ``previous`` is the refused code and ``feedback`` what to fix in it. ``sample`` above 0 asks
        for a sampled draft (at :data:`DRAFT_TEMPERATURE`, with ``sample`` as its seed) instead of the model's most
        likely one: another candidate for the same prompt. ``code_check(code)`` judges the code as soon as it is
        written, for a model that writes it first (the local model; see :mod:`wrapper.field_checks`). With caller
        examples among ``cases`` no sample inputs are asked for (:class:`CheckedDraft`).

        Raises:
            CodeRefused: ``code_check`` refused the code; the rest of the draft was not written.
            GenerationError: the model did not answer.
        """
        cases = list(cases)
        prompt = request_prompt(request, taken, feedback, cases, previous)
        checks = {} if code_check is None else {"code": code_check}
        output: type[CheckedDraft] = CheckedDraft if any(c.origin == "example" for c in cases) else Draft
        try:
            with field_checks(checks):
                if sample <= 0:
                    written = self._ask(self._system_prompt, prompt, output)
                else:
                    with sampled(DRAFT_TEMPERATURE, seed=sample):
                        written = self._ask(self._system_prompt, prompt, output)
        except FieldRefused as refused:
            raise CodeRefused(refused.value, refused.problem) from refused
        return written if isinstance(written, Draft) else Draft(**written.model_dump())

    def tests(self, request: FabricationRequest, examples: list[Case], count: int) -> list[Case]:
        """About ``count`` test cases for ``request``'s capability, read from the asserts the model writes.

        Raises:
            GenerationError: the model did not answer.
        """
        table = self._ask(TESTS_SYSTEM_PROMPT, tests_prompt(request, examples, count), CaseTable)
        return parse_tests(table.tests, list(request.inputs) or (list(examples[0].input) if examples else []))

    def rederive(self, request: FabricationRequest, data: dict[str, Any]) -> tuple[bool, Any]:
        """The output the input ``data`` should give, worked out again from the capability alone (no code, no test).

        Returns:
            ``(True, value)``, or ``(False, None)`` when the working ends in no readable ``expected = ...`` line.

        Raises:
            GenerationError: the model did not answer.
        """
        derivation = self._ask(DERIVATION_SYSTEM_PROMPT, derivation_prompt(request, data), Derivation)
        return parse_literal_assignment(derivation.working, "expected")

    def _ask(self, system: str, prompt: str, output: type[M]) -> M:
        """One structured answer from the model itself (no agent loop: one call, its usage counted).

        A provider's validation failure is raised, never retried in a loop here: the Fabricator's own attempts
        decide what happens next.
        """
        messages: list[dict[str, Any]] = [{"role": "user", "content": [{"text": prompt}]}]
        try:
            return run_coroutine(lambda: self._structured(output, messages, system))
        except FieldRefused:
            raise
        except Exception as exc:
            raise GenerationError(
                f"the model did not write a {output.__name__}: {type(exc).__name__}: {str(exc)[:2000]}"
            ) from exc

    async def _structured(self, output: type[M], messages: list[dict[str, Any]], system: str) -> M:
        async for event in self._counted.structured_output(output, messages, system):  # type: ignore[arg-type]
            value = dict(event).get("output")
            if isinstance(value, output):
                return value
        raise GenerationError(f"the model returned no {output.__name__}")

    def _count(self, input_tokens: int, output_tokens: int) -> None:
        self.usage = self.usage + Usage(
            input_tokens=input_tokens, output_tokens=output_tokens, total_tokens=input_tokens + output_tokens
        )
