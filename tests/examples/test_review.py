"""The reviewer example (``examples/review/``) with its scripted models: a fabricated version is published, the
reviewer's bus trigger on ``agent.published`` runs it, and the verdict is where ``agents show`` and ``agents approve``
print it."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.arbiter.test_cli import invoke

REVIEW = Path(__file__).resolve().parents[2] / "examples" / "review"


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"review_{name}", REVIEW / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_fabricated_version_is_reviewed_and_the_verdict_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    assert _module("run").main(["--home", str(home), "--timeout", "120"]) == 0
    out = capsys.readouterr().out
    assert "published word_counter@1 (pending_approval)" in out
    assert "review of word_counter@1: approve - counts words with str.split" in out

    code, shown, err = invoke("agents", "show", "word_counter", "--home", str(home))
    assert code == 0, err
    assert "word_counter@1  pending_approval" in shown
    assert "on agent.published (pending_approval): orchestration" in shown
    assert "review by reviewer@1: approve — counts words with str.split" in shown
    as_json = json.loads(invoke("agents", "show", "word_counter", "--home", str(home), "--json")[1])
    (published,) = as_json[0]["publications"]
    assert published["outputs"]["reviewer@1"]["verdict"] == "approve"

    code, approved, err = invoke("agents", "approve", "word_counter@1", "--home", str(home))
    assert code == 0, err
    assert approved.splitlines()[0] == "approved word_counter@1"
    assert "review by reviewer@1: approve" in approved


def test_the_reviewer_raises_concerns_a_reader_would() -> None:
    reviewer = _module("reviewer")
    risky = "def handler(text: str) -> dict:\n    try:\n        return eval(text)\n    except:\n        return {}\n"
    assert sorted(reviewer.static_findings(risky)) == [
        "a bare except hides every error (line 4)",
        "calls eval() (line 3)",
        "no module docstring: say what the worker does",
    ]
    assert reviewer.static_findings("def handler(:\n") == ["the code does not parse: invalid syntax (line 1)"]
    assert reviewer.static_findings('"""Fine."""\n\ndef run():\n    return 1\n') == ["no top-level handler function"]
    too_large = reviewer.handler("big", 1, "active", code=None)
    assert too_large["verdict"] == "concerns"


@pytest.fixture(autouse=True)
def _no_leaked_modules() -> None:
    sys.modules.pop("review_run", None)
