"""The fabrication-ceiling runner with a scripted model: each draft judged apart, and the table of a file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench import fabrication_ceiling
from bench.fabrication_quality import load_items
from tests.bench.test_fabrication_quality import GOOD, WRONG, turns
from wrapper.sandbox import SandboxPool
from wrapper.testing import ScriptedModel

#: Fails the caller's example ("Queue": 4 vowels, 1 consonant): counts every letter as a vowel.
OFF = GOOD.replace('c.lower() in "aeiou"', "True")
#: Refused by the policy before it runs.
BROKEN = "import subprocess\n" + GOOD


@pytest.fixture(scope="module")
def pool() -> Iterator[SandboxPool]:
    with SandboxPool(size=1) as sandbox:
        yield sandbox


def test_each_draft_is_judged_on_the_examples_then_the_hidden_checks(pool: SandboxPool) -> None:
    item = next(i for i in load_items() if i["id"] == "count_vowels")
    drafts = [turn for code in (WRONG, GOOD, OFF, BROKEN) for turn in turns(code)]
    record = fabrication_ceiling.run_item(
        item, model=ScriptedModel(drafts), model_spec="scripted", pool=pool, samples=3
    )
    assert [d["status"] for d in record["drafts"]] == ["examples_only", "correct", "wrong", "broken"]
    assert record["drafts"][0]["why"]["where"] == "$.vowels"
    assert "example[0]" in record["drafts"][2]["why"] and "subprocess" in record["drafts"][3]["why"]


def test_a_model_that_writes_nothing_counts_as_broken_drafts(pool: SandboxPool) -> None:
    item = next(i for i in load_items() if i["id"] == "digit_stats")
    record = fabrication_ceiling.run_item(item, model=ScriptedModel([]), model_spec="scripted", pool=pool, samples=1)
    assert [d["status"] for d in record["drafts"]] == ["broken", "broken"]


def test_the_table_gives_the_ceiling_and_the_precision(tmp_path: Path, capsys: Any) -> None:
    def row(name: str, difficulty: str, *statuses: str) -> dict[str, Any]:
        return {"id": name, "difficulty": difficulty, "drafts": [{"status": s} for s in statuses]}

    rows = [
        row("a", "easy", "correct", "examples_only"),
        row("b", "easy", "wrong", "correct"),
        row("c", "hard", "examples_only", "broken"),
    ]
    path = tmp_path / "ceiling.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert fabrication_ceiling.main(["--summary", str(path)]) == 0
    lines = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines() if line.strip()}
    # greedy right 1 of 3, any right 2 of 3; 6 drafts, 2 right, 4 pass the examples: precision 50 %
    assert lines["all"][1:] == ["3", "1", "(33%)", "2", "(67%)", "6", "2", "4", "50%"]
    assert lines["easy"][1:] == ["2", "1", "(50%)", "2", "(100%)", "4", "2", "3", "67%"]
