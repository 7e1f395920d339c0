"""A code reviewer: reads a published worker version's code and gives a verdict, ``approve`` or ``concerns``.

Two passes: a static one (the code parses, defines ``handler``, no ``eval``/``exec``/``open``/``__import__``, no bare
``except``, a module docstring), and the model's (``wrapper.sdk.model()``: the worker model of the deployment), asked
for ``{"verdict": ..., "reasons": [...]}``. Any static finding, or a model that says ``concerns``, makes the verdict
``concerns``; an answer of the model that cannot be read is a reason, not a crash.
"""

from __future__ import annotations

import ast
import json
import re

from strands import Agent

from wrapper import sdk

_RISKY_CALLS = frozenset({"eval", "exec", "open", "__import__", "compile"})
_JSON = re.compile(r"\{.*\}", re.DOTALL)
_PROMPT = """You review the Python code of a worker agent before it is used.
The worker is {name}@{version}: {description}

```python
{code}
```

Answer with one JSON object and nothing else: {{"verdict": "approve" or "concerns", "reasons": ["...", ...]}}.
Say "concerns" if the code can fail on valid input, does something other than the description says, or is unsafe."""


def static_findings(code: str) -> list[str]:
    """What a reader sees without running the code."""
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        return [f"the code does not parse: {exc.msg} (line {exc.lineno})"]
    findings = []
    if not any(isinstance(n, ast.FunctionDef) and n.name == "handler" for n in tree.body):
        findings.append("no top-level handler function")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _RISKY_CALLS:
            findings.append(f"calls {node.func.id}() (line {node.lineno})")
        if isinstance(node, ast.ExceptHandler) and node.type is None:
            findings.append(f"a bare except hides every error (line {node.lineno})")
    if ast.get_docstring(tree) is None:
        findings.append("no module docstring: say what the worker does")
    return findings


def model_review(name: str, version: int, description: str, code: str) -> tuple[str, list[str]]:
    """The model's verdict and reasons (``concerns`` with the reason when its answer cannot be read)."""
    prompt = _PROMPT.format(name=name, version=version, description=description, code=code)
    answer = str(Agent(model=sdk.model(), callback_handler=None)(prompt))
    found = _JSON.search(answer)
    try:
        parsed = json.loads(found.group(0)) if found else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict) or parsed.get("verdict") not in ("approve", "concerns"):
        return "concerns", [f"the model's review could not be read: {answer[:200]!r}"]
    reasons = [str(r) for r in parsed.get("reasons") or []]
    return str(parsed["verdict"]), reasons


def handler(name: str, version: int, state: str, description: str = "", code: str | None = None) -> dict:
    """Review ``name@version`` (published in ``state``) and return the verdict with its reasons."""
    if code is None:
        return {
            "agent": f"{name}@{version}",
            "verdict": "concerns",
            "reasons": ["the code is too large to travel in the announcement: review it by hand"],
        }
    findings = static_findings(code)
    verdict, reasons = model_review(name, version, description, code)
    return {
        "agent": f"{name}@{version}",
        "state": state,
        "verdict": "concerns" if findings else verdict,
        "reasons": findings + reasons,
    }
