"""Names a draft reads but never defines are found before it is published (a NameError in an untested branch)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from blackboard import Backends, FabricationRequest, memory_backends
from fabricator.fabricator import FabricationResult, Fabricator
from fabricator.harness import Candidate, validate
from fabricator.names import undefined_names, with_missing_imports
from wrapper.sandbox import SandboxPool
from wrapper.testing import ScriptedModel

# The shape of a worker the offline model published: right on the example, a NameError on any other input.
UNIMPORTED_SDK = """def handler(reason: str) -> dict:
    try:
        threshold = float(reason.split("threshold (")[1].split(")")[0])
        return {"threshold": threshold}
    except (ValueError, IndexError):
        raise sdk.NonRetryableError("Invalid input format")
"""
FIXED = "from wrapper import sdk\n\n\n" + UNIMPORTED_SDK
SCHEMA = {"type": "object", "properties": {"reason": {"type": "string"}}, "required": ["reason"]}
OUTPUT = {"type": "object", "properties": {"threshold": {"type": "number"}}, "required": ["threshold"]}
REASON = "3 datapoints [41.0, 57.0, 66.0] were greater than the threshold (25.0)."


@pytest.fixture(scope="module")
def pool() -> Iterator[SandboxPool]:
    with SandboxPool(size=1) as sandbox:
        yield sandbox


def names(code: str) -> list[str]:
    return [u.name for u in undefined_names(code, {"re", "math"})]


def test_a_name_read_in_an_untested_branch_is_found_with_its_line_and_fix() -> None:
    (found,) = undefined_names(UNIMPORTED_SDK)
    assert (found.name, found.line) == ("sdk", 6)
    assert str(found) == "line 6: name 'sdk' is not defined: add `from wrapper import sdk`"
    assert undefined_names(FIXED) == []


@pytest.mark.parametrize(
    ("code", "missing"),
    [
        ("def handler(x):\n    return re.sub('a', 'b', x)\n", ["re"]),
        ("def handler(x):\n    return helper(x)\n", ["helper"]),
        ("def handler(x):\n    f = lambda y: y + offset\n    return f(x)\n", ["offset"]),
        ("def handler(x):\n    return [y * scale for y in x]\n", ["scale"]),
        ("class K:\n    a = 1\n    def m(self):\n        return a\n", ["a"]),  # a class body is no enclosing scope
        ("TOTAL = missing + 1\n", ["missing"]),
    ],
)
def test_names_read_but_never_bound_are_found(code: str, missing: list[str]) -> None:
    assert names(code) == missing


@pytest.mark.parametrize(
    "code",
    [
        "import re\nfrom math import floor as fl\n\ndef handler(x):\n    return fl(len(re.findall('a', x)))\n",
        "def handler(x):\n    def inner(y):\n        return y + x\n    return inner(1)\n",
        "def handler(x):\n    global CACHE\n    CACHE = x\n\ndef other():\n    return CACHE\n",
        "def handler(items):\n    total = 0\n    for i, (a, b) in enumerate(items):\n        total += a * b + i\n"
        "    if (n := len(items)) > 2:\n        total += n\n    return total\n",
        "def handler(x):\n    try:\n        return int(x)\n    except ValueError as exc:\n        return str(exc)\n",
        "def handler(x):\n    match x:\n        case {'k': value}:\n            return value\n"
        "        case _:\n            return None\n",
        "class Box:\n    size = 2\n\n    def area(self):\n        return Box.size ** 2\n\n"
        "def handler():\n    return Box().area()\n",
        "def handler(x):\n    return [len(s) for s in x if s], {k: v for k, v in x},"
        " sorted(x, key=lambda s: -len(s))\n",
        "def handler():\n    return __name__\n",
        "def handler(x: int = 1, *args: int, **kwargs: int) -> int:\n    return x + sum(args) + len(kwargs)\n",
        "def handler(x):\n    del x\n    return None\n",
    ],
)
def test_names_bound_anywhere_python_binds_them_are_not_reported(code: str) -> None:
    assert names(code) == []


def test_a_module_with_a_star_import_is_not_checked() -> None:
    assert names("from math import *\n\ndef handler(x):\n    return floor(x)\n") == []


def test_the_harness_refuses_a_draft_with_an_undefined_name_before_running_it(pool: SandboxPool) -> None:
    candidate = Candidate(
        name="threshold_reader",
        description="reads a threshold",
        code=UNIMPORTED_SDK,
        input_schema=SCHEMA,
        output_schema=OUTPUT,
        sample_inputs=[{"reason": REASON}],
    )
    report = validate(candidate, sandbox=pool)
    assert not report.passed and [c.name for c in report.checks] == ["policy", "compile", "names"]
    assert "line 6: name 'sdk' is not defined: add `from wrapper import sdk`" in report.to_feedback()


def draft(code: str) -> dict[str, Any]:
    return {
        "structured": {
            "code": code,
            "name": "threshold_reader",
            "description": "Reads the threshold out of an alarm's state reason.",
            "input_schema": SCHEMA,
            "output_schema": OUTPUT,
        }
    }


def fabricate(pool: SandboxPool, *codes: str) -> tuple[FabricationResult, ScriptedModel, Backends]:
    backends = memory_backends()
    model = ScriptedModel([draft(code) for code in codes])
    request = FabricationRequest.parse(
        {
            "orchestration_id": "o1",
            "task_id": "t1",
            "capability": "Read the threshold from a CloudWatch alarm state reason.",
            "inputs": {"reason": "the state reason text"},
            "examples": [{"input": {"reason": REASON}, "expected": {"threshold": 25.0}}],
        }
    )
    return Fabricator(backends, model, pool, sample_timeout=5, tests="off").fabricate(request), model, backends


def test_the_fabricator_adds_an_import_the_draft_forgot(pool: SandboxPool) -> None:
    result, model, backends = fabricate(pool, UNIMPORTED_SDK)
    assert result.attempts == 1 and model.calls == 1
    assert backends.code_store.get(result.agent.code.sha256).decode() == "from wrapper import sdk\n" + UNIMPORTED_SDK


def test_a_draft_that_names_the_sdk_by_its_package_gets_the_package_imported(pool: SandboxPool) -> None:
    dotted = UNIMPORTED_SDK.replace("sdk.NonRetryableError", "wrapper.sdk.NonRetryableError")
    result, model, backends = fabricate(pool, dotted)
    assert result.attempts == 1 and model.calls == 1  # passed every check, the one draft
    assert backends.code_store.get(result.agent.code.sha256).decode() == "import wrapper.sdk\n" + dotted
    # A package with one allowed module imports that module; one with several is left to the model.
    assert with_missing_imports("def handler(u):\n    return urllib.parse.quote(u)\n", {"urllib.parse"})[1] == [
        "import urllib.parse"
    ]
    assert with_missing_imports("def handler(u):\n    return a.b(u)\n", {"a.b", "a.c"})[1] == []


def test_an_sdk_error_raised_by_its_bare_name_gets_imported(pool: SandboxPool) -> None:
    bare = UNIMPORTED_SDK.replace("sdk.NonRetryableError", "NonRetryableError")
    result, model, backends = fabricate(pool, bare)
    assert result.attempts == 1 and model.calls == 1  # the policy allows it and the sandbox runs it
    assert backends.code_store.get(result.agent.code.sha256).decode() == (
        "from wrapper.sdk import NonRetryableError\n" + bare
    )
    assert with_missing_imports("def handler(x):\n    return note(x)\n", {"re"})[1] == []  # not an error class


def test_a_name_nothing_can_import_is_sent_back_to_the_model(pool: SandboxPool) -> None:
    unknown = UNIMPORTED_SDK.replace("sdk.NonRetryableError", "InputError")
    fixed = unknown.replace("InputError", "ValueError")
    result, model, backends = fabricate(pool, unknown, fixed)
    assert result.attempts == 2
    assert backends.code_store.get(result.agent.code.sha256).decode() == fixed
    told = "".join(b.get("text", "") for m in model.requests[1].messages for b in m["content"])
    assert "line 6: name 'InputError' is not defined" in told


def test_missing_imports_go_after_the_docstring_and_future_imports() -> None:
    code = '"""Reads."""\nfrom __future__ import annotations\n\n\ndef handler(x):\n    return math.floor(re.sub(x))\n'
    repaired, added = with_missing_imports(code, {"math", "re"})
    assert added == ["import math", "import re"]
    assert repaired.startswith('"""Reads."""\nfrom __future__ import annotations\nimport math\nimport re\n')
    assert undefined_names(repaired) == []
    assert with_missing_imports("def handler(x):\n    return helper(x)\n", {"re"}) == (
        "def handler(x):\n    return helper(x)\n",
        [],
    )
    assert with_missing_imports("def handler(:\n", {"re"}) == ("def handler(:\n", [])
