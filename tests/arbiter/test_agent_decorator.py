"""Agents defined as decorated functions: name, description and input schema come from the function itself."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import annotated_types
import pytest
from pydantic import Field

import arbiter
from arbiter import AgentFunction, LocalRuntime, UsageError
from arbiter.config import Deployment
from arbiter.testing import ScriptedModel
from blackboard import AgentState
from tests.arbiter.conftest import FAST, RuntimeFactory, event
from wrapper import SandboxPool


@arbiter.agent
def forecast(
    city: Annotated[str, "The city, as its inhabitants write it"],
    days: Annotated[int, Field(ge=1, le=14)] = 3,
    unit: str = Field("celsius", description="celsius or fahrenheit"),
    detail: bool = False,
) -> dict[str, Any]:
    """Forecast the weather of a city.

    Args:
        city: overridden by the Annotated text.
        days: how many days
            ahead.
        detail: whether to add the hourly figures.

    Returns:
        The forecast.
    """
    return {"city": city, "days": days, "unit": unit, "detail": detail}


def test_name_description_and_schema_come_from_the_function() -> None:
    assert isinstance(forecast, AgentFunction) and forecast.trusted
    assert forecast.name == "forecast"
    assert forecast.description == "Forecast the weather of a city.\n\nReturns:\n    The forecast."
    assert forecast.input_schema == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "The city, as its inhabitants write it"},
            "days": {
                "type": "integer",
                "minimum": 1,
                "maximum": 14,
                "default": 3,
                "description": "how many days ahead.",
            },
            "unit": {"type": "string", "default": "celsius", "description": "celsius or fahrenheit"},
            "detail": {"type": "boolean", "default": False, "description": "whether to add the hourly figures."},
        },
        "required": ["city"],
    }
    assert forecast("Oslo") == {"city": "Oslo", "days": 3, "unit": "celsius", "detail": False}


def test_options_override_what_the_function_says() -> None:
    @arbiter.agent(name="weather", description="Weather.", timeout_seconds=5, max_attempts=2)
    def anything(place: Annotated[str, annotated_types.MinLen(2)]) -> str:
        return place

    assert (anything.name, anything.description, anything.timeout_seconds, anything.max_attempts) == (
        "weather",
        "Weather.",
        5,
        2,
    )
    assert anything.input_schema["properties"]["place"] == {"type": "string", "minLength": 2}


def test_a_type_pydantic_cannot_describe_accepts_any_value() -> None:
    class Opaque:
        pass

    def handler(thing: Opaque, n: int) -> int:
        """Uses an opaque thing."""
        return n

    assert arbiter.agent(handler).input_schema["properties"] == {"thing": {}, "n": {"type": "integer"}}


def test_an_annotated_description_that_is_not_a_string_is_refused() -> None:
    def handler(n: Annotated[int, 42]) -> int:
        """Doubles."""
        return n * 2

    with pytest.raises(UsageError, match=r"handler: parameter 'n': Annotated metadata 42 \(int\)"):
        arbiter.agent(handler)

    def twice(n: Annotated[int, "a number", "another"]) -> int:
        """Doubles."""
        return n * 2

    with pytest.raises(UsageError, match="2 description strings"):
        arbiter.agent(twice)


def test_functions_that_cannot_be_agents_are_refused() -> None:
    async def later(n: int) -> int:
        """Async."""
        return n

    def silent(n: int) -> int:
        return n

    with pytest.raises(UsageError, match="async def"):
        arbiter.agent(later)
    with pytest.raises(UsageError, match="needs a description"):
        arbiter.agent(silent)
    with pytest.raises(UsageError, match="lambda has no name"):
        arbiter.agent(lambda n: n)
    with pytest.raises(UsageError, match="an agent already"):
        arbiter.agent(forecast)


def test_rt_agent_registers_and_the_planner_can_call_it(runtime: RuntimeFactory) -> None:
    turns: list[dict[str, Any]] = [{"tool_calls": [{"name": "double", "input": {"n": 21}}]}, {"text": "42"}]
    rt = runtime(turns)

    @rt.agent
    def double(n: Annotated[int, "the number"]) -> int:
        """Doubles a number."""
        return n * 2

    (manifest,) = rt.backends.registry.versions("double")
    assert manifest.isolation == "in_process" and manifest.description == "Doubles a number."
    assert manifest.input_schema["properties"]["n"] == {"type": "integer", "description": "the number"}
    result = rt.run(event(), timeout=60)
    (task,) = rt.orchestration(result.orchestration_id).tasks
    assert result.ok and task.result is not None and task.result.output == 42
    assert double(4) == 8


def test_registering_the_same_function_twice_keeps_one_version(runtime: RuntimeFactory) -> None:
    rt = runtime([{"text": "done"}])
    rt.agent(forecast)
    rt.agent(forecast)
    (manifest,) = rt.backends.registry.versions("forecast")
    assert manifest.state is AgentState.ACTIVE


def test_another_function_under_a_taken_name_is_refused(runtime: RuntimeFactory) -> None:
    rt = runtime([{"text": "done"}])
    rt.agent(forecast)

    def other(city: str) -> str:
        """Another forecast."""
        return city

    with pytest.raises(UsageError, match=r"'forecast' is taken in this runtime by the function .*\.forecast"):
        rt.agent(name="forecast")(other)
    assert len(rt.backends.registry.versions("forecast")) == 1


def test_a_sandboxed_function_runs_its_own_source_in_the_sandbox(runtime: RuntimeFactory) -> None:
    turns: list[dict[str, Any]] = [{"tool_calls": [{"name": "word_count", "input": {"text": "a b c"}}]}, {"text": "3"}]
    rt = runtime(turns)

    @rt.agent(trusted=False)
    def word_count(text: Annotated[str, "the text"]) -> int:
        """Counts the words of a text."""
        import re

        return len(re.findall(r"\S+", text))

    (manifest,) = rt.backends.registry.versions("word_count")
    module = rt.backends.code_store.get(manifest.code.sha256).decode()
    assert manifest.isolation == "sandbox" and "@rt.agent" not in module and "handler = word_count" in module
    result = rt.run(event(), timeout=60)
    (task,) = rt.orchestration(result.orchestration_id).tasks
    assert result.ok and task.result is not None and task.result.output == 3


def test_decorated_functions_given_up_front(tmp_path: Path, pool: SandboxPool) -> None:
    turns: list[dict[str, Any]] = [
        {"tool_calls": [{"name": "forecast", "input": {"city": "Oslo", "days": 2}}]},
        {"text": "ok"},
    ]
    with LocalRuntime(
        tmp_path / "home",
        model=ScriptedModel(turns),
        settings=FAST,
        agents=[forecast],
        deployment=Deployment(sandbox=pool),
    ) as rt:
        result = rt.run(event(), timeout=60)
        (task,) = rt.orchestration(result.orchestration_id).tasks
    assert result.ok and task.result is not None
    assert task.result.output == {"city": "Oslo", "days": 2, "unit": "celsius", "detail": False}


def test_a_sandboxed_function_with_a_field_default_is_refused() -> None:
    def handler(n: int = Field(2, description="the number")) -> int:
        """Doubles."""
        return n * 2

    with pytest.raises(UsageError, match=r"sandboxed agent's defaults are plain values .* n with Annotated"):
        arbiter.agent(trusted=False)(handler)
    assert arbiter.agent(handler)() == 4
