"""The public fabrication capability set: its schema, and its reference handlers pass every example and check."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fabricator.compare import compare

DATA = Path(__file__).resolve().parents[2] / "bench" / "data" / "fabrication"
KEYS = {"id", "difficulty", "category", "capability", "inputs", "examples", "checks"}
DIFFICULTIES = {"easy", "medium", "hard"}
CATEGORIES = {"text", "numbers", "dates", "parsing", "data", "algorithms"}


def _items() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads((DATA / "capabilities.json").read_text(encoding="utf-8"))
    return items


def _reference() -> dict[str, Callable[..., Any]]:
    spec = importlib.util.spec_from_file_location("fabrication_reference", DATA / "reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    reference: dict[str, Callable[..., Any]] = module.REFERENCE
    return reference


ITEMS = _items()
REFERENCE = _reference()


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and not value)


def test_the_set_is_large_and_spread_over_difficulties_and_categories() -> None:
    assert len(ITEMS) >= 40
    by_difficulty = Counter(item["difficulty"] for item in ITEMS)
    assert set(by_difficulty) == DIFFICULTIES
    assert min(by_difficulty.values()) >= 10
    assert set(Counter(item["category"] for item in ITEMS)) == CATEGORIES
    ids = [item["id"] for item in ITEMS]
    assert len(ids) == len(set(ids))
    assert len({item["capability"] for item in ITEMS}) == len(ITEMS)


@pytest.mark.parametrize("item", ITEMS, ids=lambda item: item["id"])
def test_item_schema(item: dict[str, Any]) -> None:
    assert set(item) == KEYS
    assert re.fullmatch(r"[a-z][a-z0-9_]*", item["id"])
    assert item["difficulty"] in DIFFICULTIES
    assert item["category"] in CATEGORIES
    assert isinstance(item["capability"], str) and 20 <= len(item["capability"]) <= 8000
    assert item["inputs"] and all(isinstance(v, str) and v for v in item["inputs"].values())
    assert 1 <= len(item["examples"]) <= 3
    assert 5 <= len(item["checks"]) <= 8
    for case in item["examples"] + item["checks"]:
        assert set(case) == {"input", "expected"}
        assert set(case["input"]) == set(item["inputs"])
    for example in item["examples"]:
        expected = example["expected"]
        assert not _empty(expected), "an example's whole output must not be empty"
        assert not (isinstance(expected, dict) and all(_empty(v) for v in expected.values()))


@pytest.mark.parametrize("item", ITEMS, ids=lambda item: item["id"])
def test_hidden_checks_add_inputs_the_examples_do_not_show(item: dict[str, Any]) -> None:
    shown = [example["input"] for example in item["examples"]]
    checks = [check["input"] for check in item["checks"]]
    assert not [check for check in checks if check in shown]
    assert len({json.dumps(check, sort_keys=True) for check in checks}) == len(checks)


def test_every_item_has_exactly_one_reference() -> None:
    assert set(REFERENCE) == {item["id"] for item in ITEMS}


@pytest.mark.parametrize("item", ITEMS, ids=lambda item: item["id"])
def test_reference_passes_every_example_and_check(item: dict[str, Any]) -> None:
    handler = REFERENCE[item["id"]]
    for kind in ("examples", "checks"):
        for index, case in enumerate(item[kind]):
            got = handler(**copy.deepcopy(case["input"]))
            json.dumps(got, allow_nan=False)
            result = compare(case["expected"], got)
            assert result.matches, f"{kind}[{index}] {case['input']}: {result.where}: {result.reason}"
