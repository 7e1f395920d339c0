"""The Fabricator: reuse an existing agent, or tests → generate → validate → refine → publish a new one.

Generation and validation are kept apart: the model writes a draft; the harness decides, with checks the model
cannot influence (policy, compile, schemas, signature, sandboxed runs compared with expected outputs); a refused
draft's report goes back to the model for the next attempt, up to ``max_attempts``; then the request fails with the
last report, and nothing is published.

What a draft must reproduce:

- the caller's acceptance examples (``FabricationRequest.examples``): always; a draft that fails one is refused;
- the Fabricator's own tests, written by the model *before* any code and without seeing any (``tests``);
  generated tests can be wrong too, and how a disagreement is settled is the mode:

  - ``"vote"``: a draft that passes everything but some generated tests (it returned an output of its schema, or
    refused the input on purpose) waits for another, sampled, draft of the same prompt; when two drafts return the
    same for every test input, the tests they both fail are overruled (outvoted) and the first is published.
    Drafts that never agree publish nothing. A crash, a timeout or an output outside the schema on a test input
    still refuses the draft;
  - ``"settle"``: each failed test is re-derived once by a separate call that sees neither the code nor the test;
    when the re-derived value agrees with the draft's output and not with the test, the test is overruled (kept in
    the report with the reason, and dropped for later attempts); otherwise it stands and the draft is refused;
  - ``"strict"``: a test is never overruled; ``"off"`` (the default, ``ARBITER_FABRICATOR_TESTS``): none written.

  With the offline 1.5B model, tests written before the code cost more right drafts than they caught wrong ones
  (``bench/fabrication_quality.py``), hence the default.

With ``cross_check`` (off by default, :mod:`fabricator.crosscheck`) a draft that passes is cross-checked: a second
draft, sampled apart, must pass every check too and return the same outputs on probe inputs (the examples' inputs
pushed to their edges); a disagreement refuses both, and publishes nothing.

An existing agent is reused only if its description matches and it reproduces the caller's examples in the sandbox.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import ValidationError

from blackboard import AgentManifest, Backends, FabricationRequest, tracing
from blackboard.ports.registry import StatsDelta
from fabricator.cases import MAX_TESTS, Case, examples_of, input_key, usable_tests
from fabricator.compare import compare, shown
from fabricator.constants import ENV_FABRICATOR_TESTS
from fabricator.crosscheck import PARTNER_DRAFTS, agreement, cross_check_enabled, probe_inputs
from fabricator.defects import defects, defects_feedback, outside_schema
from fabricator.exceptions import FabricatorError
from fabricator.generator import CodeRefused, Draft, GenerationError, Generator
from fabricator.harness import Candidate, Check, ValidationReport, one_line, run_probes, validate
from fabricator.names import with_missing_imports
from fabricator.policy import DEFAULT_POLICY, Policy
from fabricator.publisher import publish, safe_name
from fabricator.repairs import with_required_parameters
from fabricator.reuse import REUSE_THRESHOLD, find_existing
from wrapper.field_checks import FieldCheck
from wrapper.matching import Matcher
from wrapper.sandbox import SandboxPool
from wrapper.schemas import modern_bounds

if TYPE_CHECKING:
    from strands.models import Model

__all__ = ["DEFAULT_TESTS", "TESTS_MODES", "FabricationFailedError", "FabricationResult", "Fabricator", "tests_mode"]

logger = logging.getLogger(__name__)

#: How generated tests are used: ``vote`` between candidates, ``settle`` disagreements with a re-derivation,
#: ``strict``, or ``off`` (none written).
TestsMode = Literal["vote", "settle", "strict", "off"]
TESTS_MODES: tuple[TestsMode, ...] = get_args(TestsMode)
#: The default use of generated tests (see ``bench/fabrication_quality.py`` and the README for the measurements).
DEFAULT_TESTS: TestsMode = "off"


def tests_mode(value: str | None = None) -> TestsMode:
    """The tests mode: ``value``, else ``ARBITER_FABRICATOR_TESTS``, else :data:`DEFAULT_TESTS`.

    Raises:
        FabricatorError: the value is not one of :data:`TESTS_MODES`.
    """
    chosen = value if value is not None else os.environ.get(ENV_FABRICATOR_TESTS) or DEFAULT_TESTS
    for mode in TESTS_MODES:
        if chosen == mode:
            return mode
    where = "tests" if value is not None else ENV_FABRICATOR_TESTS
    raise FabricatorError(f"{where} must be one of {', '.join(TESTS_MODES)}, not {chosen!r}")


@dataclass(frozen=True)
class _Viable:
    """A draft that passed every check but some generated tests: a candidate waiting for one that agrees with it."""

    draft: Draft
    candidate: Candidate
    report: ValidationReport


#: Errors a worker raises on purpose for input it cannot handle (the input of a generated test may be such input).
_DELIBERATE_ERRORS = frozenset({"ValueError", "NonRetryableError"})
#: What a candidate "returned" for an input it refused on purpose, in a vote.
_REFUSED = "<refused the input>"


def _hard_failures(report: ValidationReport) -> list[Check]:
    """The failed checks a vote cannot overrule.

    A generated test counts as soft when the draft returned an output of its own schema (the test's expected value
    may be wrong), refused the input on purpose, or the test's input does not fit the input schema (the test may
    be wrong). A crash (``TypeError``, ``IndexError``...), a timeout or an output outside the schema stays hard.
    """
    return [
        c for c in report.failed if not c.name.startswith("test[") or (c.error and c.error not in _DELIBERATE_ERRORS)
    ]


def _behaviour(report: ValidationReport) -> dict[str, Any]:
    """What a candidate returned for each generated test's input (a refusal on purpose counts as one answer)."""
    return {
        c.name: _REFUSED if c.error in _DELIBERATE_ERRORS else c.got
        for c in report.checks
        if c.name.startswith("test[")
    }


def _same(a: Any, b: Any) -> bool:
    return compare(a, b).matches and compare(b, a).matches


def _agreeing(report: ValidationReport, viable: list[_Viable]) -> tuple[Draft, Candidate, ValidationReport] | None:
    """The earliest viable candidate that returns what ``report``'s candidate does for every generated test input.

    Its failed tests are overruled: two drafts written apart agree with each other against the test, and a small
    model's expected values (worked out without running anything) are wrong more often than two agreeing programs.
    """
    mine = _behaviour(report)
    for other in viable:
        theirs = _behaviour(other.report)
        if theirs.keys() == mine.keys() and all(_same(theirs[k], mine[k]) for k in mine):
            agreed = other.report
            for check in other.report.failed:
                agreed = agreed.overrule(
                    check.name,
                    f"outvoted: two candidates written apart both returned {shown(check.got)}, not the test's "
                    f"{shown(check.expected)}",
                )
            return other.draft, other.candidate, agreed
    return None


def _disagreement(viable: list[_Viable]) -> str:
    """Why no candidate was published although some passed the examples: where they disagree, or the test."""
    first = viable[0].report
    lines = [
        f"{len(viable)} candidate(s) passed the caller's examples, but no two of them agreed on every generated test "
        "input and none passed all of those tests; nothing was published:"
    ]
    if len(viable) > 1:
        second = _behaviour(viable[1].report)
        for name, got in _behaviour(first).items():
            if name in second and not _same(got, second[name]):
                check = next(c for c in first.checks if c.name == name)
                lines.append(
                    f"- {name}: handler input {shown(check.input)} gave {shown(got)} and {shown(second[name])}"
                )
                break
    lines += [f"- {check.name}: {check.evidence[:400]}" for check in first.failed[:2]]
    return "\n".join(lines)


@dataclass(frozen=True)
class FabricationResult:
    """What a fabrication produced.

    Attributes:
        agent: the agent to use (new, or the existing one that was reused).
        reused: whether an existing agent was chosen instead of writing one.
        attempts: how many drafts were written.
        report: the validation report of the published draft, or of the examples an agent reused passed.
        duration_ms: wall time of the whole fabrication.
        examples_passed: how many of the caller's acceptance examples the agent reproduced.
    """

    agent: AgentManifest
    reused: bool
    attempts: int
    report: ValidationReport | None
    duration_ms: float
    examples_passed: int = 0


#: Told to the model when its draft repeats code that was refused already.
_REPEATED = (
    "Your last draft repeated code that was already refused. Do not repeat it: write the module again from the "
    "start, another way."
)


#: Told to the model when a draft and its fix were both refused: the next draft is written afresh.
_AFRESH = "Your last two drafts were refused. Write the module again from the start, another way."


def _next_attempt(evidence: str, code: str, previous: str, attempt: int) -> tuple[str, str, int]:
    """The next attempt's feedback, the code it fixes ("": none) and its sample seed (0: the most likely draft).

    A refused draft is shown to the model to fix; a refused fix is followed by a sampled draft from scratch, with
    the evidence of the refusal: measured with the offline 1.5B model, its second fix of the same code rarely
    passed where a fresh sample of the first prompt often did.
    """
    if not previous:
        return evidence, code, 0
    return f"{evidence}\n{_AFRESH}", "", attempt


def _code_key(code: str, *schemas: Any) -> str:
    """The same key for the same draft whatever its comments and layout: its code's syntax tree and its schemas.

    The schemas count: the same code refused for an incomplete schema is worth checking with a complete one. Code
    refused before its schemas were written is keyed by the code alone.
    """
    try:
        tree = ast.dump(ast.parse(code))
    except (SyntaxError, ValueError):
        tree = "\n".join(line.rstrip() for line in code.strip().splitlines())
    return f"{tree}\n{json.dumps(list(schemas), sort_keys=True, default=str)}" if schemas else tree


def _draft_key(draft: Draft) -> str:
    """:func:`_code_key` of a whole draft: its code and its schemas."""
    return _code_key(draft.code, draft.input_schema, draft.output_schema)


def _edges(probed: list[Check]) -> Check:
    """The report's summary of a candidate's runs on probe inputs that found no defect."""
    answered = sum(1 for check in probed if check.passed)
    outside = outside_schema(probed)
    also = ""
    if outside:
        also = (
            f"; {len(outside)} output(s) outside the output schema, which fail the attempt at run time, e.g. "
            f"{one_line(outside[0].evidence)}"
        )
    return Check(
        name="edges",
        passed=True,
        evidence=f"ran on {len(probed)} probe input(s) next to the examples: {answered} returned an output of the "
        f"output schema; no defect (see fabricator.defects){also}",
        duration_ms=sum(check.duration_ms for check in probed),
    )


def _with_checks(report: ValidationReport, checks: list[Check]) -> ValidationReport:
    """``report`` with ``checks`` (passed ones) added at its end."""
    return report.model_copy(update={"checks": [*report.checks, *checks]})


def _object_typed(schema: Any) -> Any:
    """An input schema that lists ``properties`` but leaves out ``"type": "object"`` means an object: say so."""
    if isinstance(schema, dict) and "type" not in schema and isinstance(schema.get("properties"), dict):
        return {"type": "object", **schema}
    return schema


#: How much of the failed check the planner sees.
_PLANNER_CHECK_CHARS = 400


class FabricationFailedError(FabricatorError):
    """No draft passed validation within the attempts; ``feedback`` is the last refusal, for the planner."""

    def __init__(self, attempts: int, feedback: str, report: ValidationReport | None) -> None:
        self.attempts = attempts
        self.feedback = feedback
        self.report = report
        super().__init__(f"no valid worker after {attempts} attempt(s); last refusal:\n{feedback}")

    def for_planner(self) -> str:
        """What the planner is told: the first failed check, that nothing was published, and what to do instead.

        The full refusal is written for the Fabricator's model ("fix these"); shown to a planner it reads as an
        invitation to ask again, which only spends the budget on the same capability.
        """
        checks = [line[2:] for line in self.feedback.splitlines() if line.startswith("- ")]
        first = checks[0] if checks else (self.feedback.strip().splitlines() or ["no draft could be written"])[0]
        if len(first) > _PLANNER_CHECK_CHARS:
            first = first[:_PLANNER_CHECK_CHARS] + "…"
        return (
            f"no worker could be written for this capability: no draft passed after {self.attempts} attempt(s); "
            f"the last failed {first}. Nothing was published. Do not ask for this capability again for this "
            "event: go on with the workers you have, then answer."
        )


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
        tests: how the Fabricator's own tests are used (see the module docstring); default
            ``ARBITER_FABRICATOR_TESTS``, else ``off``.
        test_count: how many tests the model is asked to write.
        cross_check: publish a draft only when a second one, sampled apart, agrees with it on probe inputs
            (:mod:`fabricator.crosscheck`); default ``ARBITER_FABRICATOR_CROSS_CHECK``, else off.
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
        reuse_threshold: float = REUSE_THRESHOLD,
        policy: Policy = DEFAULT_POLICY,
        sample_timeout: float = 20.0,
        matcher: Matcher | None = None,
        tests: TestsMode | None = None,
        test_count: int = 5,
        cross_check: bool | None = None,
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
        self.tests = tests_mode(tests)
        self.test_count = min(test_count, MAX_TESTS)
        self.cross_check = cross_check_enabled(cross_check)

    def fabricate(self, request: FabricationRequest) -> FabricationResult:
        """Answer a fabrication request with an agent.

        Raises:
            FabricationFailedError: no draft passed validation (the caller's examples included).
            GenerationError: (retryable) only if the model never answered at all.
        """
        started = time.perf_counter()
        examples = examples_of(request.examples)
        if request.replaces is None:
            reused = self._reuse(request, examples)
            if reused is not None:
                agent, report = reused
                passed = 0 if report is None else report.count("example[")
                took = (time.perf_counter() - started) * 1000
                return FabricationResult(agent, True, 0, report, took, passed)
        tests = self._tests(request, examples)
        derived: dict[str, tuple[bool, Any]] = {}
        feedback, report, previous, sample = "", None, "", 0
        refused: set[str] = set()
        viable: list[_Viable] = []  # vote: drafts that passed everything but some generated tests
        taken = {m.name for m in self.backends.registry.list_agents()}
        early: list[ValidationReport] = []  # the reports of the code checks, last one last
        check = self._code_check(examples, early) if examples else None
        for attempt in range(1, self.max_attempts + 1):
            try:
                with tracing.start_span("fabricator.generate", attributes={"arbiter.fabrication_attempt": attempt}):
                    draft = self.generator.draft(
                        request, taken, feedback, [*examples, *tests], previous, sample=sample, code_check=check
                    )
            except CodeRefused as refusal:
                seen = _code_key(refusal.code)
                logger.info("attempt=<%d> | the code failed the caller's examples; the rest was not written", attempt)
                if seen in refused:
                    feedback, previous, sample = f"{refusal.problem}\n{_REPEATED}", "", attempt
                else:
                    refused.add(seen)
                    feedback, previous, sample = _next_attempt(refusal.problem, refusal.code, previous, attempt)
                report = early[-1] if early else None
                continue
            except GenerationError as exc:
                feedback, report, sample = str(exc), None, 0
                logger.warning("attempt=<%d> | %s", attempt, exc)
                continue
            sample = 0
            draft = self._repaired(draft)
            seen = _draft_key(draft)
            if seen in refused:
                # Shown its refused code, a small greedy model often gives it back unchanged; checking it again would
                # only repeat the refusal, so the next attempt starts from scratch with a sampled draft.
                logger.info("attempt=<%d> | the draft repeats code already checked; sampling a new one", attempt)
                feedback, previous, sample = f"{feedback}\n{_REPEATED}", "", attempt
                continue
            refused.add(seen)
            candidate, feedback = self._candidate(draft, [*examples, *tests])
            if candidate is None:
                report = None
                continue
            report = self._validate(candidate)
            if not report.passed and self.tests == "settle":
                report = self._settle(request, report, derived)
                overruled = {input_key(c.input) for c in report.checks if c.overruled and c.input is not None}
                tests = [t for t in tests if t.key not in overruled]
            logger.debug(
                "attempt=<%d>, name=<%s>, passed=<%s>, ms=<%.0f> | validated",
                attempt,
                draft.name,
                report.passed,
                report.duration_ms,
            )
            if not report.passed and self.tests == "vote" and not _hard_failures(report):
                agreed = _agreeing(report, viable)
                if agreed is None:
                    viable.append(_Viable(draft, candidate, report))
                    logger.debug("attempt=<%d> | passed all but generated tests; sampling another candidate", attempt)
                    feedback, previous, sample = "", "", attempt
                    continue
                draft, candidate, report = agreed
            if report.passed:
                inputs = probe_inputs(examples, candidate)
                probed = self._probe(candidate, inputs)
                found = defects(probed)
                if found:
                    logger.info("attempt=<%d>, defects=<%d> | passed its checks, broke on probes", attempt, len(found))
                    report = report.model_copy(update={"checks": [*report.checks, *found], "passed": False})
                    feedback, previous, sample = _next_attempt(defects_feedback(found), draft.code, previous, attempt)
                    continue
                report = _with_checks(report, [_edges(probed)] if probed else [])
                if self.cross_check:
                    draft, candidate, report, attempt = self._cross_checked(
                        _Viable(draft, candidate, report), request, taken, [*examples, *tests], attempt, probed
                    )
                return self._publish(request, draft, candidate, report, attempt, started)
            feedback, previous, sample = _next_attempt(report.to_feedback(), draft.code, previous, attempt)
        if viable and (report is None or not _hard_failures(report)):
            feedback = _disagreement(viable)
        raise FabricationFailedError(self.max_attempts, feedback, report)

    def _cross_checked(
        self,
        first: _Viable,
        request: FabricationRequest,
        taken: set[str],
        cases: list[Case],
        attempt: int,
        probed: list[Check],
    ) -> tuple[Draft, Candidate, ValidationReport, int]:
        """``first`` with the probes a second candidate, sampled apart, answered the same; and the drafts written.

        ``probed`` holds ``first``'s runs on the probe inputs (:func:`fabricator.crosscheck.probe_inputs`).

        Raises:
            FabricationFailedError: the second candidate disagrees on a probe, or none passed its checks.
        """
        inputs = [check.input or {} for check in probed]
        written = attempt
        feedback, previous = "", ""
        for partner in range(1, PARTNER_DRAFTS + 1):
            written += 1
            # A sampled draft from scratch; after one that failed its checks, its fix (its own reading, mended).
            sample = 0 if previous else attempt * 100 + partner
            try:
                with tracing.start_span("fabricator.cross_check", attributes={"arbiter.fabrication_attempt": written}):
                    draft = self.generator.draft(request, taken, feedback, cases, previous, sample=sample)
            except GenerationError as exc:
                feedback, previous = "", ""
                logger.warning("partner=<%d> | %s", partner, exc)
                continue
            draft = self._repaired(draft)
            if _draft_key(draft) == _draft_key(first.draft):
                same = Check(
                    name="cross_check",
                    passed=True,
                    evidence="a second draft, sampled apart, is the same program",
                    duration_ms=0.0,
                )
                return first.draft, first.candidate, _with_checks(first.report, [same]), written
            candidate, feedback = self._candidate(draft, cases)
            previous = draft.code
            if candidate is None:
                continue
            report = self._validate(candidate)
            if not report.passed:
                feedback = report.to_feedback()
                continue
            agreed, differ = agreement(probed, self._probe(candidate, inputs))
            if differ is not None:
                logger.info("candidate=<%s> | refused: %s", first.candidate.name, differ.feedback())
                raise FabricationFailedError(written, differ.feedback(), first.report)
            summary = Check(
                name="cross_check",
                passed=True,
                evidence=f"a second candidate written apart ({candidate.name}) passes every check and returns the "
                f"same for {len(agreed)} of {len(inputs)} probe input(s) (the others: one of them refused it)",
                duration_ms=0.0,
            )
            return first.draft, first.candidate, _with_checks(first.report, [*agreed, summary]), written
        points = [line for line in feedback.splitlines() if line.startswith("- ")]
        unconfirmed = (
            "One candidate passed every check, but no second candidate written apart did, so it could not be "
            "cross-checked; nothing was published:\n"
            + (points[0] if points else f"- the second candidate: {feedback[:400] or 'not written'}")
        )
        raise FabricationFailedError(written, unconfirmed, first.report)

    def _code_check(self, examples: list[Case], reports: list[ValidationReport]) -> FieldCheck:
        """A check of a draft's code on its own, as soon as it is written: the static checks and the caller's examples.

        A draft whose code fails them would be refused whatever its name, description and schemas, so a model that
        writes the code first (the local model) is not asked for those. Each check's report is added to ``reports``.
        """

        def check(code: str) -> str | None:
            repaired, _ = with_missing_imports(code, self.policy.allowed_imports)
            candidate = Candidate(
                name="draft", description="", code=repaired, input_schema={"type": "object"}, cases=examples
            )
            report = self._validate(candidate, code_only=True)
            reports.append(report)
            return None if report.passed else report.to_feedback()

        return check

    def _repaired(self, draft: Draft) -> Draft:
        """The draft with the repairs that are certain (see :mod:`fabricator.repairs`).

        The imports it reads but forgot (``sdk``, an allowed module by its name), and in its input schema the
        handler's parameters without a default as required.
        """
        code, imports = with_missing_imports(draft.code, self.policy.allowed_imports)
        schema, required = with_required_parameters(code, draft.input_schema)
        if not imports and not required:
            return draft
        logger.info(
            "name=<%s>, imports=<%s>, required=<%s> | repaired the draft", draft.name, "; ".join(imports), required
        )
        return draft.model_copy(update={"code": code, "input_schema": schema})

    def _probe(self, candidate: Candidate, inputs: list[dict[str, Any]]) -> list[Check]:
        return run_probes(
            candidate, inputs, sandbox=self.sandbox, model_spec=self.model_spec, timeout_seconds=self.sample_timeout
        )

    def _publish(
        self,
        request: FabricationRequest,
        draft: Draft,
        candidate: Candidate,
        report: ValidationReport,
        attempt: int,
        started: float,
    ) -> FabricationResult:
        with tracing.start_span("fabricator.publish", attributes={"arbiter.agent": candidate.name}):
            agent = publish(
                self.backends,
                draft.model_copy(
                    update={
                        "name": candidate.name,
                        "input_schema": candidate.input_schema,
                        "output_schema": candidate.output_schema,
                    }
                ),
                report,
                replaces=request.replaces,
                exact_version=None if request.replaces_version is None else request.replaces_version + 1,
                approval=self.approval,
                orchestration_id=request.orchestration_id,
                task_id=request.task_id,
            )
        passed = report.count("example[")
        self._count_examples(agent, passed)
        took = (time.perf_counter() - started) * 1000
        return FabricationResult(agent, False, attempt, report, took, passed)

    def _validate(self, candidate: Candidate, *, runs_only: bool = False, code_only: bool = False) -> ValidationReport:
        return validate(
            candidate,
            sandbox=self.sandbox,
            model_spec=self.model_spec,
            policy=self.policy,
            timeout_seconds=self.sample_timeout,
            runs_only=runs_only,
            code_only=code_only,
        )

    def _tests(self, request: FabricationRequest, examples: list[Case]) -> list[Case]:
        """The model's own tests, written before any code; none when the model could not write any."""
        if self.tests == "off":
            return []
        try:
            with tracing.start_span("fabricator.tests"):
                written = self.generator.tests(request, examples, self.test_count)
        except GenerationError as exc:
            logger.warning("capability=<%s> | no tests written: %s", request.capability[:80], exc)
            return []
        tests = usable_tests(written, list(request.inputs), examples)
        logger.debug("written=<%d>, usable=<%d> | tests written before the code", len(written), len(tests))
        return tests

    def _settle(
        self, request: FabricationRequest, report: ValidationReport, derived: dict[str, tuple[bool, Any]]
    ) -> ValidationReport:
        """Overrule each failed generated test whose expected value a re-derivation contradicts, as the draft does.

        Only when generated tests are all that failed (anything else refuses the draft anyway), and only for a test
        whose run returned an output (a crash is the code's fault). ``derived`` keeps each re-derivation by input,
        so an input is worked out once per fabrication.
        """
        failed = report.failed
        if not failed or any(not c.name.startswith("test[") or c.input is None for c in failed):
            return report
        for check in failed:
            if check.got is None or check.input is None:
                continue
            key = input_key(check.input)
            if key not in derived:
                try:
                    with tracing.start_span("fabricator.rederive"):
                        derived[key] = self.generator.rederive(request, check.input)
                except GenerationError as exc:
                    logger.warning("test=<%s> | could not re-derive: %s", check.name, exc)
                    derived[key] = (False, None)
            ok, value = derived[key]
            if ok and compare(value, check.got).matches and not compare(value, check.expected).matches:
                reason = (
                    f"re-derived {shown(value)} from the capability, as the code returned, not the test's "
                    f"{shown(check.expected)}"
                )
                logger.debug("test=<%s> | overruled: %s", check.name, reason)
                report = report.overrule(check.name, reason)
        return report

    def _reuse(
        self, request: FabricationRequest, examples: list[Case]
    ) -> tuple[AgentManifest, ValidationReport | None] | None:
        """An active agent that does the job: its description matches, and it reproduces every caller example."""
        existing = self._existing(request.capability)
        if existing is None:
            return None
        manifest, score = existing
        if not examples:
            logger.debug("agent=<%s>, score=<%.2f> | reusing an existing agent", manifest.ref, score)
            return manifest, None
        if manifest.isolation != "sandbox":
            logger.info("agent=<%s> | not reused: a trusted agent's examples cannot be checked here", manifest.ref)
            return None
        candidate = Candidate(
            name=manifest.name,
            description=manifest.description,
            code=self.backends.code_store.get(manifest.code.sha256).decode("utf-8"),
            input_schema=manifest.input_schema,
            output_schema=manifest.output_schema,
            cases=examples,
        )
        report = self._validate(candidate, runs_only=True)
        if not report.passed:
            logger.info("agent=<%s> | not reused: %s", manifest.ref, report.to_feedback())
            return None
        logger.debug("agent=<%s>, score=<%.2f> | reusing an agent that passed the examples", manifest.ref, score)
        self._count_examples(manifest, report.count("example["))
        return manifest, report

    def _count_examples(self, agent: AgentManifest, passed: int) -> None:
        if passed:
            self.backends.registry.add_stats(agent.name, agent.version, StatsDelta(example_checks=passed))

    def _existing(self, capability: str) -> tuple[AgentManifest, float] | None:
        if self.matcher is None:
            return find_existing(self.backends.registry, capability, self.reuse_threshold)
        self.matcher.refresh()
        match = self.matcher.best(capability, self.reuse_threshold)
        return None if match is None else (match.manifest, match.score)

    @staticmethod
    def _candidate(draft: Draft, cases: list[Case]) -> tuple[Candidate | None, str]:
        try:
            candidate = Candidate(
                name=safe_name(draft.name),
                description=draft.description,
                code=draft.code,
                input_schema=_object_typed(modern_bounds(draft.input_schema)),
                output_schema=modern_bounds(draft.output_schema),
                sample_inputs=draft.sample_inputs[:3],
                cases=cases,
            )
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            return None, f"the draft is incomplete: {problems}"
        return candidate, ""
