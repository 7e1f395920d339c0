"""The fabrication-quality runner with a scripted model: a correct draft, a wrong one, and the summary of a file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench import fabrication_quality
from wrapper.sandbox import SandboxPool
from wrapper.testing import ScriptedModel

GOOD = """def handler(text: str) -> dict:
    letters = [c for c in text if "a" <= c.lower() <= "z" and c.isascii()]
    vowels = sum(1 for c in letters if c.lower() in "aeiou")
    return {"vowels": vowels, "consonants": len(letters) - vowels}
"""
#: Right on the example, wrong on a hidden check ("Rhythm"): y is no vowel.
WRONG = GOOD.replace('"aeiou"', '"aeiouy"')


def turns(code: str, tests: bool = False) -> list[dict[str, Any]]:
    """The Fabricator's draft, after the tests it writes first when ``tests`` (the default mode writes none)."""
    draft = {
        "name": "vowel_counter",
        "description": "Counts the ASCII vowels and consonants of a text.",
        "code": code,
        "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        "output_schema": {
            "type": "object",
            "properties": {"vowels": {"type": "integer"}, "consonants": {"type": "integer"}},
            "required": ["vowels", "consonants"],
        },
        "sample_inputs": [{"text": "Queue"}],
    }
    written = [{"structured": {"tests": "assert handler(text='banana') == {'vowels': 3, 'consonants': 3}\n"}}]
    return [*(written if tests else []), {"structured": draft, "usage": {"input_tokens": 1000, "output_tokens": 200}}]


@pytest.fixture(scope="module")
def pool() -> Iterator[SandboxPool]:
    with SandboxPool(size=1) as sandbox:
        yield sandbox


def item(name: str) -> dict[str, Any]:
    return next(i for i in fabrication_quality.load_items() if i["id"] == name)


def test_a_correct_draft_is_correct(tmp_path: Path, capsys: Any) -> None:
    script = tmp_path / "good.json"
    script.write_text(json.dumps({"turns": turns(GOOD)}))
    out = tmp_path / "results" / "run.jsonl"

    assert fabrication_quality.main(["--model", f"scripted:{script}", "--only", "count_vowels", "--out", str(out)]) == 0

    [record] = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["status"] == "correct"
    assert record["published"] is True
    assert record["checks_passed"] == record["checks_total"] == len(item("count_vowels")["checks"])
    assert record["examples_passed"] == record["examples_total"] == 1
    assert record["tokens"] == 1200
    assert record["attempts"] == 1
    printed = capsys.readouterr().out
    assert "[1/1] count_vowels (easy): correct in" in printed
    assert "1,200 tokens, 1 attempt" in printed


def test_a_draft_that_returns_a_wrong_value_is_valid_but_wrong(pool: SandboxPool) -> None:
    model = ScriptedModel(turns(WRONG, tests=True))
    record = fabrication_quality.run_item(
        item("count_vowels"),
        model=model,
        model_spec="scripted",
        pool=pool,
        max_attempts=1,
        with_examples=True,
        tests="settle",
    )

    assert record["status"] == "valid_but_wrong"
    assert record["examples_passed"] == 1
    assert record["checks_passed"] == record["checks_total"] - 1
    failure = record["first_failure"]
    assert failure["input"] == {"text": "Rhythm"}
    assert failure["got"] == {"vowels": 1, "consonants": 5}
    assert failure["where"] == "$.vowels"


def test_a_model_that_writes_nothing_fails_the_item_without_stopping_the_run(pool: SandboxPool) -> None:
    record = fabrication_quality.run_item(
        item("digit_stats"),
        model=ScriptedModel([]),
        model_spec="scripted",
        pool=pool,
        max_attempts=1,
        with_examples=False,
    )

    assert record["status"] == "failed"
    assert record["published"] is False
    assert record["examples_given"] is False
    assert record["error"]["type"]


def test_summary_of_a_results_file(tmp_path: Path, capsys: Any) -> None:
    rows = [
        {"id": "a", "difficulty": "easy", "status": "correct", "seconds": 10.0, "tokens": 100},
        {"id": "b", "difficulty": "easy", "status": "valid_but_wrong", "seconds": 20.0, "tokens": 300},
        {"id": "c", "difficulty": "hard", "status": "failed", "seconds": 30.0, "tokens": None},
    ]
    results = tmp_path / "run.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"torn')

    assert fabrication_quality.main(["--summary", str(results)]) == 0

    lines = capsys.readouterr().out.splitlines()
    easy = next(line for line in lines if line.startswith("easy")).split()
    assert easy[:8] == ["easy", "2", "2", "(100%)", "1", "(50%)", "1", "(50%)"]
    overall = next(line for line in lines if line.startswith("all")).split()
    assert overall[1] == "3" and "50%" in overall and "20.0" in overall
