"""The validation harness: decides whether a candidate worker may be registered, with the evidence of every check.

Checks, in order (ARCHITECTURE step 7); the static ones stop at the first failure, the runs all run:

1. ``policy``: the static policy on the syntax tree (:mod:`fabricator.policy`);
2. ``compile``: the builtin compiler accepts the source; ``names``: every name it reads is defined (a ``NameError``
   in a branch no example takes is found before it is published: :mod:`fabricator.names`);
3. ``schema``: the input schema is a Draft 2020-12 JSON Schema of ``type: object``;
4. ``output_schema``: the declared output schema is a Draft 2020-12 JSON Schema;
5. ``signature``: ``handler``'s parameters, read from the tree (nothing is imported), fit the schema;
6. ``example[i]`` (the caller's acceptance examples), ``test[i]`` (the Fabricator's own tests) and ``sample[i]``
   (the draft's sample inputs): each input matches the input schema, then runs in the sandbox as a real task would;
   the output must be JSON, match the output schema, and equal the expected value under the rules of
   :mod:`fabricator.compare` (a sample has no expected value: its output must not be empty, and a dict whose every
   value is empty counts as empty).

Every run's check carries its evidence as fields too (``input``, ``expected``, ``got``, ``rule``). A failed ``test``
check may later be *overruled* (the Fabricator found the test itself wrong); it then no longer fails the report.
Nothing the candidate does raises out of :func:`validate`: it becomes a failed check.
"""

from __future__ import annotations

import ast
import contextvars
import json
import logging
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, model_validator

from blackboard import tracing
from blackboard.records import AGENT_NAME_PATTERN
from fabricator.cases import Case, call_text
from fabricator.compare import RULE, compare, shown
from fabricator.exceptions import HarnessError
from fabricator.names import undefined_names
from fabricator.policy import DEFAULT_POLICY, Policy, PolicyViolation, check_policy
from wrapper.exceptions import SandboxError
from wrapper.models import needs_network
from wrapper.sandbox import SandboxLimits, SandboxPool, SandboxRequest
from wrapper.schemas import input_problem, output_problem
from wrapper.sdk import TaskContext

__all__ = ["OUTPUT_SCHEMA_ERROR", "Candidate", "Check", "ValidationReport", "one_line", "run_probes", "validate"]

logger = logging.getLogger(__name__)

#: Providers reached over the network; workers that use them need it, all others run without.
_MAX_EVIDENCE = 2000
_MAX_OUTPUT_REPR = 300
#: How many failed checks the feedback to the model tells, and how long each may be.
_FEEDBACK_CHECKS = 4
_FEEDBACK_CHARS = 500
#: What a check function returns: passed, evidence and, for runs, the check's fields (input, expected, got, rule).
_Outcome = tuple[bool, str] | tuple[bool, str, dict[str, Any]]
_MAX_PARALLEL_SAMPLES = 4
#: The ``error`` of a run whose output does not match the draft's own output schema.
OUTPUT_SCHEMA_ERROR = "output_schema"


class Candidate(BaseModel):
    """A worker the generator wrote and the harness is to judge.

    Attributes:
        name: the agent name it would be registered under.
        description: what it does (for the planner).
        code: the module source; it defines ``handler``.
        input_schema: the JSON Schema of ``handler``'s keyword arguments.
        output_schema: the JSON Schema every output must match (``None``: not declared, which fails validation).
        sample_inputs: inputs to try it on, with no expected output.
        cases: inputs with an expected output (the caller's examples, the Fabricator's tests).
    """

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=AGENT_NAME_PATTERN)
    description: str
    code: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None = None
    sample_inputs: list[dict[str, Any]] = Field(default_factory=list)
    cases: list[Case] = Field(default_factory=list)

    @model_validator(mode="after")
    def _has_inputs(self) -> Candidate:
        if not self.sample_inputs and not self.cases:
            raise ValueError("a candidate needs at least one sample input or case to run")
        return self


class Check(BaseModel):
    """The outcome of one check, with what was seen.

    A run's check also names its ``input``, what was ``expected`` (for examples and tests), what it ``got`` and the
    comparison ``rule``, or the ``error`` it raised (its type name, ``timed_out`` for a run that did not end);
    ``overruled`` says why a failed test was found wrong itself (it then does not count).
    """

    model_config = ConfigDict(frozen=True)

    name: str
    passed: bool
    evidence: str
    duration_ms: float
    input: dict[str, Any] | None = None
    expected: Any = None
    got: Any = None
    rule: str = ""
    overruled: str = ""
    error: str = ""


class ValidationReport(BaseModel):
    """Every check that ran, in order; ``passed`` only if all of them did."""

    passed: bool
    checks: list[Check]
    duration_ms: float

    @property
    def failed(self) -> list[Check]:
        """The checks that failed and were not overruled, in order."""
        return [check for check in self.checks if not check.passed and not check.overruled]

    def overrule(self, name: str, reason: str) -> ValidationReport:
        """This report with the failed check ``name`` (a generated test) overruled for ``reason``."""
        checks = [c.model_copy(update={"overruled": reason}) if c.name == name else c for c in self.checks]
        return self.model_copy(update={"checks": checks, "passed": all(c.passed or c.overruled for c in checks)})

    def count(self, prefix: str) -> int:
        """How many checks whose name starts with ``prefix`` (``example[``, ``test[``) passed."""
        return sum(1 for check in self.checks if check.name.startswith(prefix) and check.passed)

    def to_feedback(self) -> str:
        """Return the failed checks as compact text for the generator's next attempt ("" when all passed).

        Each check is told in one line (a traceback is left out: its last line, the error, is in the evidence) and
        at most :data:`_FEEDBACK_CHECKS` of them: a small model's next prompt stays short, and so its evaluation.
        """
        failed = self.failed
        if not failed:
            return ""
        lines = [f"The candidate failed {len(failed)} check(s); fix these and keep what passed:"]
        lines += [f"- {check.name}: {one_line(check.evidence)}" for check in failed[:_FEEDBACK_CHECKS]]
        if len(failed) > _FEEDBACK_CHECKS:
            lines.append(
                f"- and {len(failed) - _FEEDBACK_CHECKS} more: " + ", ".join(c.name for c in failed[_FEEDBACK_CHECKS:])
            )
        return "\n".join(lines)


def validate(
    candidate: Candidate,
    *,
    sandbox: SandboxPool,
    model_spec: str | None = None,
    policy: Policy = DEFAULT_POLICY,
    timeout_seconds: float = 20.0,
    runs_only: bool = False,
    code_only: bool = False,
) -> ValidationReport:
    """Run every check on ``candidate`` and report.

    Args:
        candidate: the worker to judge.
        sandbox: the pool the sample inputs run in.
        model_spec: the model spec the worker gets from ``wrapper.sdk.model()`` while it runs the samples.
        policy: the static policy.
        timeout_seconds: wall-clock limit of each sample run.
        runs_only: run the cases and samples only, without the static checks (for a registered agent that passed
            them when it was published, checked again before it is reused).
        code_only: judge the code alone, before its schemas exist: the checks of the code (policy, compile,
            names), then the cases, their outputs compared with no schema.

    Returns:
        The report; ``passed`` tells whether the candidate may be registered.

    Raises:
        HarnessError: the sandbox machinery failed (not the candidate); retryable.
    """
    with tracing.start_span("fabricator.validate", attributes={"arbiter.agent": candidate.name}) as span:
        report = _validate(candidate, sandbox, model_spec, policy, timeout_seconds, runs_only, code_only)
        if span is not None:
            span.set_attribute("arbiter.passed", report.passed)
        return report


def _validate(
    candidate: Candidate,
    sandbox: SandboxPool,
    model_spec: str | None,
    policy: Policy,
    timeout_seconds: float,
    runs_only: bool,
    code_only: bool = False,
) -> ValidationReport:
    started = time.perf_counter()
    static: list[tuple[str, Callable[[], tuple[bool, str]]]] = [
        ("policy", lambda: _policy(candidate.code, policy)),
        ("compile", lambda: _compile(candidate)),
        ("names", lambda: _names(candidate.code, policy)),
        ("schema", lambda: _schema(candidate.input_schema)),
        ("output_schema", lambda: _output_schema(candidate.output_schema)),
        ("signature", lambda: _signature(candidate.code, candidate.input_schema)),
    ]
    if code_only:
        static = static[:3]  # policy, compile, names: what the code alone decides
    checks: list[Check] = []
    for name, run in [] if runs_only else static:
        checks.append(_timed(name, run))
        if not checks[-1].passed:
            return _report(checks, started)
    limits = SandboxLimits(timeout_seconds=timeout_seconds, network=needs_network(model_spec))
    counters = {"example": 0, "test": 0}
    named: list[tuple[str, dict[str, Any], Case | None]] = []
    for case in candidate.cases:
        named.append((f"{case.origin}[{counters[case.origin]}]", case.input, case))
        counters[case.origin] += 1
    if not code_only:
        named += [(f"sample[{i}]", sample, None) for i, sample in enumerate(candidate.sample_inputs)]
    runs = [
        (
            name,
            lambda name=name, data=data, case=case: _sample(candidate, name, data, case, sandbox, model_spec, limits),
        )
        for name, data, case in named
    ]
    checks += _side_by_side(runs)
    return _report(checks, started)


def run_probes(
    candidate: Candidate,
    inputs: list[dict[str, Any]],
    *,
    sandbox: SandboxPool,
    model_spec: str | None = None,
    timeout_seconds: float = 20.0,
) -> list[Check]:
    """Run ``candidate`` on each of ``inputs`` (no expected value; an empty output is fine): ``probe[i]`` checks.

    A check passed when the run returned JSON that matches the output schema; its ``got`` is that output, else its
    ``error`` names what went wrong. Used to compare two candidates (:mod:`fabricator.crosscheck`), not to judge one.

    Raises:
        HarnessError: the sandbox machinery failed (not the candidate); retryable.
    """
    limits = SandboxLimits(timeout_seconds=timeout_seconds, network=needs_network(model_spec))
    runs = [
        (
            f"probe[{i}]",
            lambda i=i, data=data: _sample(candidate, f"probe[{i}]", data, None, sandbox, model_spec, limits, False),
        )
        for i, data in enumerate(inputs)
    ]
    return _side_by_side(runs) if runs else []


def _side_by_side(runs: Sequence[tuple[str, Callable[..., _Outcome]]]) -> list[Check]:
    """The runs' checks, in order; the runs go side by side.

    The pool queues what it cannot take, and a hanging run does not delay the others. Each thread continues this
    one's context, so that the runs are spans of the caller's.
    """
    with ThreadPoolExecutor(min(len(runs), _MAX_PARALLEL_SAMPLES), thread_name_prefix="arbiter-harness") as threads:
        contexts = [contextvars.copy_context() for _ in runs]  # one each: a context runs in one thread at a time
        return list(threads.map(lambda context, item: context.run(_timed, *item), contexts, runs))


def one_line(evidence: str) -> str:
    """Evidence without its traceback, cut to :data:`_FEEDBACK_CHARS`."""
    head = evidence.split("\nTraceback (most recent call last):", 1)[0].strip()
    return head if len(head) <= _FEEDBACK_CHARS else head[: _FEEDBACK_CHARS - 4] + " ..."


def _report(checks: list[Check], started: float) -> ValidationReport:
    duration = (time.perf_counter() - started) * 1000
    return ValidationReport(passed=all(c.passed for c in checks), checks=checks, duration_ms=duration)


def _timed(name: str, run: Callable[[], _Outcome]) -> Check:
    started = time.perf_counter()
    fields: dict[str, Any] = {}
    try:
        passed, evidence, *more = run()
        fields = more[0] if more else {}
    except HarnessError:
        raise
    except Exception as exc:  # whatever the candidate's input provokes is its failure, never ours to raise
        logger.debug("check=<%s> | check raised", name, exc_info=True)
        passed, evidence = False, f"{type(exc).__name__}: {exc}"
    if len(evidence) > _MAX_EVIDENCE:
        evidence = evidence[: _MAX_EVIDENCE - 15] + " ... (truncated)"
    took = (time.perf_counter() - started) * 1000
    return Check(name=name, passed=passed, evidence=evidence, duration_ms=took, **fields)


def _quietly(action: Callable[[], Any]) -> list[str]:
    """Run ``action``, returning the warnings it raised (invalid escape sequences...) instead of emitting them."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        action()
    return [f"{w.category.__name__}: {w.message}" for w in seen]


def _policy(code: str, policy: Policy) -> tuple[bool, str]:
    violations: list[PolicyViolation] = []
    _quietly(lambda: violations.extend(check_policy(code, policy)))  # the compile check reports the warnings
    if violations:
        return False, "; ".join(str(v) for v in violations)
    return True, f"no violations in {code.count(chr(10)) + 1} lines"


def _compile(candidate: Candidate) -> tuple[bool, str]:
    try:
        candidate.code.encode("utf-8")
        seen = _quietly(lambda: compile(candidate.code, "<candidate>", "exec", dont_inherit=True))
    except UnicodeEncodeError as exc:
        return False, f"the source is not valid UTF-8 text: {exc}"
    except SyntaxError as exc:
        return False, f"{type(exc).__name__} at line {exc.lineno}: {exc.msg}"
    except (ValueError, RecursionError, MemoryError) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    return True, "compiled" + (f" with warnings: {'; '.join(seen)}" if seen else " without warnings")


def _names(code: str, policy: Policy) -> tuple[bool, str]:
    """Every name the module reads is defined (imported, assigned, a parameter, a builtin): see :mod:`.names`."""
    try:
        missing = undefined_names(code, policy.allowed_imports)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:  # compiled already; be safe anyway
        return False, f"{type(exc).__name__}: {exc}"
    if missing:
        return False, "; ".join(str(m) for m in missing[:5]) + " (a NameError when that line runs)"
    return True, "every name read is defined"


def _schema(schema: Mapping[str, Any]) -> tuple[bool, str]:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        return False, f"not a valid Draft 2020-12 JSON Schema at {where}: {exc.message}"
    if schema.get("type") != "object":
        return False, f"the input schema must have type 'object', not {schema.get('type')!r}"
    props = sorted(schema.get("properties", {}))
    return True, f"valid Draft 2020-12 object schema; properties {props}, required {schema.get('required', [])}"


def _output_schema(schema: Mapping[str, Any] | None) -> tuple[bool, str]:
    if schema is None:
        return False, "no output_schema: declare the JSON Schema of what handler returns"
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        return False, f"output_schema is not a valid Draft 2020-12 JSON Schema at {where}: {exc.message}"
    return True, f"valid Draft 2020-12 schema of type {schema.get('type', 'any')!r}"


def _signature(code: str, schema: Mapping[str, Any]) -> tuple[bool, str]:
    trees: list[ast.Module] = []
    _quietly(lambda: trees.append(ast.parse(code)))
    handler = next((s for s in trees[0].body if isinstance(s, ast.FunctionDef) and s.name == "handler"), None)
    if handler is None:
        return False, "no module-level 'def handler(...)'"
    args = handler.args
    problems: list[str] = []
    if args.posonlyargs:
        problems.append(f"positional-only parameters {[a.arg for a in args.posonlyargs]}: inputs come as keywords")
    if args.vararg is not None:
        problems.append(f"*{args.vararg.arg} is not allowed: inputs come as keywords")
    positional = [*args.posonlyargs, *args.args]
    first_default = len(positional) - len(args.defaults)
    params = {a.arg: i >= first_default for i, a in enumerate(positional)}  # name -> has a default
    params |= {a.arg: d is not None for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)}
    properties = set(schema.get("properties", {}))
    required = set(schema.get("required", []))
    for name in sorted(required - set(params)):
        if args.kwarg is None:
            problems.append(f"required property {name!r} is not a parameter of handler (add it or **kwargs)")
    for name in sorted(n for n, has_default in params.items() if not has_default and n not in required):
        problems.append(f"parameter {name!r} has no default but is not a required property of the input schema")
    for name in sorted(properties - set(params)):
        if args.kwarg is None and name not in required:
            problems.append(f"property {name!r} would be passed but handler has no such parameter (or **kwargs)")
    shown = ", ".join(f"{n}=..." if d else n for n, d in params.items()) + (
        f", **{args.kwarg.arg}" if args.kwarg else ""
    )
    if problems:
        return False, f"handler({shown}) vs schema: " + "; ".join(problems)
    return True, f"handler({shown}) fits required {sorted(required)} and properties {sorted(properties)}"


def _sample(
    candidate: Candidate,
    name: str,
    data: dict[str, Any],
    case: Case | None,
    sandbox: SandboxPool,
    model_spec: str | None,
    limits: SandboxLimits,
    judge_empty: bool = True,
) -> _Outcome:
    fields: dict[str, Any] = {"input": data}
    if case is not None:
        fields |= {"expected": case.expected, "rule": RULE}
    problem = input_problem(candidate.input_schema, data)
    if problem is not None:
        return False, f"input {shown(data)} does not match the input schema at {problem}", fields
    with tracing.start_span("fabricator.sample", attributes={"arbiter.sample": name}):
        passed, evidence, got, error = _run_sample(
            candidate, name, data, case, sandbox, model_spec, limits, judge_empty
        )
    return passed, evidence, fields | {"got": got, "error": error}


def _run_sample(
    candidate: Candidate,
    name: str,
    data: dict[str, Any],
    case: Case | None,
    sandbox: SandboxPool,
    model_spec: str | None,
    limits: SandboxLimits,
    judge_empty: bool = True,
) -> tuple[bool, str, Any, str]:
    """Passed, evidence, the output (``None`` if there is none) and the error type of a run that failed."""
    context = TaskContext(
        orchestration_id="validation",
        task_id=name.replace("[", "").replace("]", ""),
        agent=f"{candidate.name}@candidate",
        model_spec=model_spec,
        traceparent=tracing.current_traceparent(),
    )
    request = SandboxRequest(
        code=candidate.code.encode("utf-8"),
        module_name=f"candidate_{candidate.name}",
        input=data,
        context=context.model_dump(mode="json"),
        limits=limits,
    )
    try:
        outcome = sandbox.run(request)
    except SandboxError as exc:
        raise HarnessError(f"the sandbox could not run {name} of {candidate.name!r}: {exc}") from exc
    took = f"{outcome.duration_ms:.0f} ms"
    call = call_text(data)
    if outcome.status == "timed_out":
        timed_out = f"{call} timed out after {limits.timeout_seconds:g} s ({outcome.error_message})"
        return False, timed_out, None, "timed_out"
    if outcome.status != "succeeded":
        tail = f"; stdout: {outcome.stdout_tail[-300:]!r}" if outcome.stdout_tail else ""
        error = outcome.error_type or outcome.status
        return False, f"{call} failed in {took}: {outcome.error_type}: {outcome.error_message}{tail}", None, error
    output = outcome.output
    try:
        json.dumps(output, allow_nan=False)
    except (TypeError, ValueError) as exc:
        not_json = f"{call} returned a value that is not JSON ({exc}): {repr(output)[:_MAX_OUTPUT_REPR]}"
        return False, not_json, None, "not_json"
    got = shown(output)
    problem = None if candidate.output_schema is None else output_problem(candidate.output_schema, output)
    comparison = None if case is None else compare(case.expected, output)
    if comparison is not None and case is not None and not comparison.matches:
        # What was expected comes first: it says what to fix; a schema mismatch alone does not.
        also = f"; it also does not match the output schema at {problem}" if problem is not None else ""
        return (
            False,
            f"{call} returned {got}; expected {shown(case.expected)} ({comparison.where}: {comparison.reason}){also}",
            output,
            "" if problem is None else OUTPUT_SCHEMA_ERROR,
        )
    if problem is not None:
        mismatch = f"{call} returned {got}, which does not match the output schema at {problem}"
        return False, mismatch, output, OUTPUT_SCHEMA_ERROR
    if case is not None:
        return True, f"{call} returned {got} as expected, in {took}", output, ""
    if not judge_empty:
        return True, f"{call} returned {got} in {took}", output, ""
    if _empty(output):
        return False, f"{call} returned the empty output {got}: return the result the task asks for", output, ""
    if isinstance(output, dict) and all(_empty(value) for value in output.values()):
        return False, f"{call} returned {got}, every field empty: the sample input should give values", output, ""
    return True, f"{call} succeeded in {took}; output {got}", output, ""


def _empty(value: object) -> bool:
    return value is None or (isinstance(value, str | list | dict) and not value)
