"""The Fabricator: reuse an existing agent, or generate → validate → refine → publish a new one.

Generation and validation are kept apart: the model writes a draft; the harness decides, with checks the model
cannot influence (policy, compile, schema, signature, sandboxed sample runs); a refused draft's report goes back to
the model for the next attempt, up to ``max_attempts``; then the request fails with the last report.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import ValidationError

from blackboard import AgentManifest, Backends, FabricationRequest, tracing
from fabricator.exceptions import FabricatorError
from fabricator.generator import Draft, GenerationError, Generator
from fabricator.harness import Candidate, ValidationReport, validate
from fabricator.policy import DEFAULT_POLICY, Policy
from fabricator.publisher import publish, safe_name
from fabricator.reuse import find_existing
from wrapper.matching import Matcher
from wrapper.sandbox import SandboxPool

if TYPE_CHECKING:
    from strands.models import Model

__all__ = ["FabricationFailedError", "FabricationResult", "Fabricator"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FabricationResult:
    """What a fabrication produced.

    Attributes:
        agent: the agent to use (new, or the existing one that was reused).
        reused: whether an existing agent was chosen instead of writing one.
        attempts: how many drafts were written.
        report: the validation report of the published draft (``None`` when reused).
        duration_ms: wall time of the whole fabrication.
    """

    agent: AgentManifest
    reused: bool
    attempts: int
    report: ValidationReport | None
    duration_ms: float


class FabricationFailedError(FabricatorError):
    """No draft passed validation within the attempts; ``feedback`` is the last refusal, for the planner."""

    def __init__(self, attempts: int, feedback: str, report: ValidationReport | None) -> None:
        self.attempts = attempts
        self.feedback = feedback
        self.report = report
        super().__init__(f"no valid worker after {attempts} attempt(s); last refusal:\n{feedback}")


class Fabricator:
    """Writes, validates and publishes worker agents.

    Args:
        backends: the registry and code store it publishes to.
        model: the Strands model that writes drafts.
        sandbox: where sample inputs run.
        model_spec: the model spec sandboxed samples get from ``wrapper.sdk.model()``.
        max_attempts: drafts per request before it fails.
        approval: publish new versions as ``pending_approval`` instead of ``active``.
        reuse_threshold: how similar an active agent's description must be to be reused instead (0 to 1).
        policy: the static policy drafts must meet.
        sample_timeout: seconds one sample run may take.
        matcher: the capability matcher the planner uses; the reuse check asks it (lexical matching without one).
    """

    def __init__(
        self,
        backends: Backends,
        model: Model,
        sandbox: SandboxPool,
        *,
        model_spec: str | None = None,
        max_attempts: int = 3,
        approval: bool = False,
        reuse_threshold: float = 0.7,
        policy: Policy = DEFAULT_POLICY,
        sample_timeout: float = 20.0,
        matcher: Matcher | None = None,
    ) -> None:
        self.backends = backends
        self.generator = Generator(model, policy)
        self.sandbox = sandbox
        self.model_spec = model_spec
        self.max_attempts = max_attempts
        self.approval = approval
        self.reuse_threshold = reuse_threshold
        self.policy = policy
        self.sample_timeout = sample_timeout
        self.matcher = matcher

    def fabricate(self, request: FabricationRequest) -> FabricationResult:
        """Answer a fabrication request with an agent.

        Raises:
            FabricationFailedError: no draft passed validation.
            GenerationError: (retryable) only if the model never answered at all.
        """
        started = time.perf_counter()
        if request.replaces is None:
            existing = self._existing(request.capability)
            if existing is not None:
                logger.debug("agent=<%s>, score=<%.2f> | reusing an existing agent", existing[0].ref, existing[1])
                return FabricationResult(existing[0], True, 0, None, (time.perf_counter() - started) * 1000)
        feedback, report = "", None
        taken = {m.name for m in self.backends.registry.list_agents()}
        for attempt in range(1, self.max_attempts + 1):
            try:
                with tracing.start_span("fabricator.generate", attributes={"arbiter.fabrication_attempt": attempt}):
                    draft = self.generator.draft(request, taken, feedback)
            except GenerationError as exc:
                feedback, report = str(exc), None
                logger.warning("attempt=<%d> | %s", attempt, exc)
                continue
            candidate, feedback = self._candidate(draft)
            if candidate is None:
                report = None
                continue
            report = validate(
                candidate,
                sandbox=self.sandbox,
                model_spec=self.model_spec,
                policy=self.policy,
                timeout_seconds=self.sample_timeout,
            )
            logger.debug(
                "attempt=<%d>, name=<%s>, passed=<%s>, ms=<%.0f> | validated",
                attempt,
                draft.name,
                report.passed,
                report.duration_ms,
            )
            if report.passed:
                with tracing.start_span("fabricator.publish", attributes={"arbiter.agent": candidate.name}):
                    agent = publish(
                        self.backends,
                        draft.model_copy(update={"name": candidate.name}),
                        report,
                        replaces=request.replaces,
                        exact_version=None if request.replaces_version is None else request.replaces_version + 1,
                        approval=self.approval,
                    )
                return FabricationResult(agent, False, attempt, report, (time.perf_counter() - started) * 1000)
            feedback = report.to_feedback()
        raise FabricationFailedError(self.max_attempts, feedback, report)

    def _existing(self, capability: str) -> tuple[AgentManifest, float] | None:
        if self.matcher is None:
            return find_existing(self.backends.registry, capability, self.reuse_threshold)
        self.matcher.refresh()
        match = self.matcher.best(capability, self.reuse_threshold)
        return None if match is None else (match.manifest, match.score)

    @staticmethod
    def _candidate(draft: Draft) -> tuple[Candidate | None, str]:
        try:
            candidate = Candidate(
                name=safe_name(draft.name),
                description=draft.description,
                code=draft.code,
                input_schema=draft.input_schema,
                sample_inputs=draft.sample_inputs,
            )
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            return None, f"the draft is incomplete: {problems}"
        return candidate, ""
