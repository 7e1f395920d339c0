"""The validation harness: decides whether a candidate worker may be registered, with the evidence of every check.

Checks, in order (ARCHITECTURE step 7); the static ones stop at the first failure, the sample runs all run:

1. ``policy``: the static policy on the syntax tree (:mod:`fabricator.policy`);
2. ``compile``: the builtin compiler accepts the source;
3. ``schema``: the input schema is a Draft 2020-12 JSON Schema of ``type: object``;
4. ``signature``: ``handler``'s parameters, read from the tree (nothing is imported), fit the schema;
5. ``sample[i]``: each sample input matches the schema, then runs in the sandbox as a real task would, and returns
   a JSON-serialisable, non-empty output (a dict whose every value is empty counts as empty).

Nothing the candidate does raises out of :func:`validate`: it becomes a failed check.
"""

from __future__ import annotations

import ast
import contextvars
import json
import logging
import time
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field

from blackboard import tracing
from blackboard.records import AGENT_NAME_PATTERN
from fabricator.exceptions import HarnessError
from fabricator.policy import DEFAULT_POLICY, Policy, PolicyViolation, check_policy
from wrapper.exceptions import SandboxError
from wrapper.models import needs_network
from wrapper.sandbox import SandboxLimits, SandboxPool, SandboxRequest
from wrapper.schemas import input_problem
from wrapper.sdk import TaskContext

__all__ = ["Candidate", "Check", "ValidationReport", "validate"]

logger = logging.getLogger(__name__)

#: Providers reached over the network; workers that use them need it, all others run without.
_MAX_EVIDENCE = 2000
_MAX_OUTPUT_REPR = 300
_MAX_PARALLEL_SAMPLES = 4


class Candidate(BaseModel):
    """A worker the generator wrote and the harness is to judge.

    Attributes:
        name: the agent name it would be registered under.
        description: what it does (for the planner).
        code: the module source; it defines ``handler``.
        input_schema: the JSON Schema of ``handler``'s keyword arguments.
        sample_inputs: inputs to try it on; at least one.
    """

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=AGENT_NAME_PATTERN)
    description: str
    code: str
    input_schema: dict[str, Any]
    sample_inputs: list[dict[str, Any]] = Field(min_length=1)


class Check(BaseModel):
    """The outcome of one check, with what was seen."""

    model_config = ConfigDict(frozen=True)

    name: str
    passed: bool
    evidence: str
    duration_ms: float


class ValidationReport(BaseModel):
    """Every check that ran, in order; ``passed`` only if all of them did."""

    passed: bool
    checks: list[Check]
    duration_ms: float

    @property
    def failed(self) -> list[Check]:
        """The checks that failed, in order."""
        return [check for check in self.checks if not check.passed]

    def to_feedback(self) -> str:
        """Return the failed checks as compact text for the generator's next attempt ("" when all passed)."""
        if not self.failed:
            return ""
        lines = [f"The candidate failed {len(self.failed)} check(s); fix these and keep what passed:"]
        lines += [f"- {check.name}: {check.evidence}" for check in self.failed]
        return "\n".join(lines)


def validate(
    candidate: Candidate,
    *,
    sandbox: SandboxPool,
    model_spec: str | None = None,
    policy: Policy = DEFAULT_POLICY,
    timeout_seconds: float = 20.0,
) -> ValidationReport:
    """Run every check on ``candidate`` and report.

    Args:
        candidate: the worker to judge.
        sandbox: the pool the sample inputs run in.
        model_spec: the model spec the worker gets from ``wrapper.sdk.model()`` while it runs the samples.
        policy: the static policy.
        timeout_seconds: wall-clock limit of each sample run.

    Returns:
        The report; ``passed`` tells whether the candidate may be registered.

    Raises:
        HarnessError: the sandbox machinery failed (not the candidate); retryable.
    """
    with tracing.start_span("fabricator.validate", attributes={"arbiter.agent": candidate.name}) as span:
        report = _validate(candidate, sandbox, model_spec, policy, timeout_seconds)
        if span is not None:
            span.set_attribute("arbiter.passed", report.passed)
        return report


def _validate(
    candidate: Candidate, sandbox: SandboxPool, model_spec: str | None, policy: Policy, timeout_seconds: float
) -> ValidationReport:
    started = time.perf_counter()
    static: list[tuple[str, Callable[[], tuple[bool, str]]]] = [
        ("policy", lambda: _policy(candidate.code, policy)),
        ("compile", lambda: _compile(candidate)),
        ("schema", lambda: _schema(candidate.input_schema)),
        ("signature", lambda: _signature(candidate.code, candidate.input_schema)),
    ]
    checks: list[Check] = []
    for name, run in static:
        checks.append(_timed(name, run))
        if not checks[-1].passed:
            return _report(checks, started)
    limits = SandboxLimits(timeout_seconds=timeout_seconds, network=needs_network(model_spec))
    runs = [
        (f"sample[{i}]", lambda i=i, sample=sample: _sample(candidate, i, sample, sandbox, model_spec, limits))
        for i, sample in enumerate(candidate.sample_inputs)
    ]
    # Samples run side by side: the pool queues what it cannot take, and a hanging sample does not delay the others.
    # Each thread continues this one's context, so that the sample runs are spans of the validation.
    with ThreadPoolExecutor(min(len(runs), _MAX_PARALLEL_SAMPLES), thread_name_prefix="arbiter-harness") as threads:
        contexts = [contextvars.copy_context() for _ in runs]  # one each: a context runs in one thread at a time
        checks += threads.map(lambda context, item: context.run(_timed, *item), contexts, runs)
    return _report(checks, started)


def _report(checks: list[Check], started: float) -> ValidationReport:
    duration = (time.perf_counter() - started) * 1000
    return ValidationReport(passed=all(c.passed for c in checks), checks=checks, duration_ms=duration)


def _timed(name: str, run: Callable[[], tuple[bool, str]]) -> Check:
    started = time.perf_counter()
    try:
        passed, evidence = run()
    except HarnessError:
        raise
    except Exception as exc:  # whatever the candidate's input provokes is its failure, never ours to raise
        logger.debug("check=<%s> | check raised", name, exc_info=True)
        passed, evidence = False, f"{type(exc).__name__}: {exc}"
    if len(evidence) > _MAX_EVIDENCE:
        evidence = evidence[: _MAX_EVIDENCE - 15] + " ... (truncated)"
    return Check(name=name, passed=passed, evidence=evidence, duration_ms=(time.perf_counter() - started) * 1000)


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
    index: int,
    sample: dict[str, Any],
    sandbox: SandboxPool,
    model_spec: str | None,
    limits: SandboxLimits,
) -> tuple[bool, str]:
    problem = input_problem(candidate.input_schema, sample)
    if problem is not None:
        return False, f"sample input does not match the input schema at {problem}"
    with tracing.start_span("fabricator.sample", attributes={"arbiter.sample": index}):
        return _run_sample(candidate, index, sample, sandbox, model_spec, limits)


def _run_sample(
    candidate: Candidate,
    index: int,
    sample: dict[str, Any],
    sandbox: SandboxPool,
    model_spec: str | None,
    limits: SandboxLimits,
) -> tuple[bool, str]:
    context = TaskContext(
        orchestration_id="validation",
        task_id=f"sample{index}",
        agent=f"{candidate.name}@candidate",
        model_spec=model_spec,
        traceparent=tracing.current_traceparent(),
    )
    request = SandboxRequest(
        code=candidate.code.encode("utf-8"),
        module_name=f"candidate_{candidate.name}",
        input=sample,
        context=context.model_dump(mode="json"),
        limits=limits,
    )
    try:
        outcome = sandbox.run(request)
    except SandboxError as exc:
        raise HarnessError(f"the sandbox could not run sample {index} of {candidate.name!r}: {exc}") from exc
    took = f"{outcome.duration_ms:.0f} ms"
    if outcome.status == "timed_out":
        return False, f"timed out after {limits.timeout_seconds:g} s ({outcome.error_type}: {outcome.error_message})"
    if outcome.status != "succeeded":
        tail = f"; stdout: {outcome.stdout_tail[-300:]!r}" if outcome.stdout_tail else ""
        return False, f"failed in {took}: {outcome.error_type}: {outcome.error_message}{tail}"
    output = outcome.output
    shown = repr(output)
    if len(shown) > _MAX_OUTPUT_REPR:
        shown = shown[:_MAX_OUTPUT_REPR] + "..."
    try:
        json.dumps(output, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return False, f"output is not JSON-serialisable ({exc}): {shown}"
    if _empty(output):
        return False, f"empty output {shown}: return the result the task asks for"
    if isinstance(output, dict) and all(_empty(value) for value in output.values()):
        return False, f"every field of the output is empty {shown}: the sample input should give values"
    return True, f"succeeded in {took}; output {shown}"


def _empty(value: object) -> bool:
    return value is None or (isinstance(value, str | list | dict) and not value)
