"""The model factory: spec parsing, provider resolution and usage tracking (offline: nothing leaves loopback)."""

from __future__ import annotations

import asyncio
import importlib.util
import ipaddress
import json
import socket
import sys
import types
from pathlib import Path
from typing import Any, TypedDict

import pytest
from pydantic import BaseModel
from strands import Agent, tool
from strands.models import BedrockModel, Model

from wrapper.exceptions import ModelConfigurationError
from wrapper.models import PROVIDERS, ModelSpec, UsageTrackingModel, parse_model_spec, resolve_model, track_usage
from wrapper.testing import ScriptedModel

SCRIPT: dict[str, Any] = {
    "turns": [
        {
            "tool_calls": [{"name": "burger_cook", "input": {"item": "cheeseburger"}}],
            "usage": {"input_tokens": 120, "output_tokens": 30},
        },
        {"text": "Your order is ready.", "usage": {"input_tokens": 200, "output_tokens": 12}},
    ]
}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No model configured, no AWS profile or instance metadata, and no connection beyond loopback."""
    for name in ("ARBITER_MODEL", "AWS_PROFILE", "AWS_REGION", "OLLAMA_HOST", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    # Hermetic whether or not a local model provider gets installed: "not installed" unless a test installs a fake.
    monkeypatch.setitem(sys.modules, "wrapper.local_model", None)
    real_connect = socket.socket.connect

    def guarded(sock: socket.socket, address: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0])
            if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
                raise AssertionError(f"test tried to connect to {address}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def script_file(tmp_path: Path) -> Path:
    path = tmp_path / "script.json"
    path.write_text(json.dumps(SCRIPT), encoding="utf-8")
    return path


cooked: list[str] = []


@tool
def burger_cook(item: str) -> str:
    """Cook a burger.

    Args:
        item: What to cook.
    """
    cooked.append(item)
    return f"cooked {item}"


class Order(BaseModel):
    item: str
    quantity: int


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "bedrock:us.anthropic.claude-sonnet-4-20250514-v1:0",
            ModelSpec("bedrock", "us.anthropic.claude-sonnet-4-20250514-v1:0"),
        ),
        ("ollama:llama3.2", ModelSpec("ollama", "llama3.2")),
        ("openai:gpt-4o-mini", ModelSpec("openai", "gpt-4o-mini")),
        ("local:/models/qwen.gguf", ModelSpec("local", "/models/qwen.gguf")),
        ("local:qwen-1.5b", ModelSpec("local", "qwen-1.5b")),
        ("scripted:tests/script.json", ModelSpec("scripted", "tests/script.json")),
        ("  Bedrock : amazon.nova-lite-v1:0 ", ModelSpec("bedrock", "amazon.nova-lite-v1:0")),
    ],
)
def test_parse_model_spec_accepts_every_provider(spec: str, expected: ModelSpec) -> None:
    assert parse_model_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", "the model spec is empty; set ARBITER_MODEL="),
        ("   ", "the model spec is empty"),
        ("claude", "'claude' does not start with a known provider; use one of bedrock:, ollama:, openai:, local:"),
        ("anthropic:claude", "'anthropic:claude' does not start with a known provider"),
        ("bedrock:", "'bedrock:' names no model after 'bedrock:'"),
        ("scripted:  ", "names no model"),
    ],
)
def test_parse_model_spec_rejects_malformed_specs(spec: str, expected: str) -> None:
    with pytest.raises(ModelConfigurationError) as caught:
        parse_model_spec(spec)

    assert expected in str(caught.value)


def test_model_spec_prints_as_a_spec() -> None:
    assert str(ModelSpec("ollama", "llama3")) == "ollama:llama3"
    assert PROVIDERS == ("bedrock", "ollama", "openai", "local", "scripted")


def test_bedrock_spec_builds_a_bedrock_model_with_that_model_id() -> None:
    model = resolve_model("bedrock:us.anthropic.claude-sonnet-4-20250514-v1:0", temperature=0)

    assert isinstance(model, BedrockModel)
    assert model.config["model_id"] == "us.anthropic.claude-sonnet-4-20250514-v1:0"
    assert model.config.get("temperature") == 0
    assert model.client.meta.region_name == "eu-west-1"


def test_scripted_spec_loads_the_script_file(script_file: Path) -> None:
    model = resolve_model(f"scripted:{script_file}")

    assert isinstance(model, ScriptedModel)
    assert len(model.turns) == 2


def test_explicit_spec_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch, script_file: Path) -> None:
    monkeypatch.setenv("ARBITER_MODEL", "bedrock:amazon.nova-lite-v1:0")

    assert isinstance(resolve_model(f"scripted:{script_file}"), ScriptedModel)


def test_arbiter_model_is_the_fallback(monkeypatch: pytest.MonkeyPatch, script_file: Path) -> None:
    monkeypatch.setenv("ARBITER_MODEL", f"scripted:{script_file}")

    assert isinstance(resolve_model(), ScriptedModel)


def test_an_invalid_arbiter_model_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBITER_MODEL", "gpt4")

    with pytest.raises(ModelConfigurationError, match="'gpt4' does not start with a known provider"):
        resolve_model()


@pytest.mark.parametrize("value", [None, "", "  "])
def test_nothing_configured_says_how_to_set_a_model(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is not None:
        monkeypatch.setenv("ARBITER_MODEL", value)

    with pytest.raises(ModelConfigurationError) as caught:
        resolve_model()

    assert str(caught.value) == (
        "no model is configured; set ARBITER_MODEL=bedrock:<model id>, ollama:<model>, openai:<model>, "
        "local:<path.gguf> or scripted:<file.json>"
    )


def test_an_empty_explicit_spec_is_an_error() -> None:
    with pytest.raises(ModelConfigurationError, match="the model spec is empty"):
        resolve_model("")


def test_unknown_provider_is_an_error() -> None:
    with pytest.raises(ModelConfigurationError, match="'huggingface:gpt2' does not start with a known provider"):
        resolve_model("huggingface:gpt2")


def fake_local_module(default: Path | None) -> types.ModuleType:
    module = types.ModuleType("wrapper.local_model")

    class LocalModel(ScriptedModel):
        def __init__(self, path: Path | str, **config: Any) -> None:
            super().__init__([{"text": "local"}], **config)
            self.path = path

    module.LocalModel = LocalModel  # type: ignore[attr-defined]
    module.default_model_path = lambda: default  # type: ignore[attr-defined]
    return module


def test_the_installed_local_model_is_the_last_fallback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "wrapper.local_model", fake_local_module(tmp_path / "qwen.gguf"))

    model = resolve_model(temperature=0)

    assert getattr(model, "path", None) == tmp_path / "qwen.gguf"
    assert model.get_config()["temperature"] == 0


def test_a_local_provider_without_weights_is_not_a_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wrapper.local_model", fake_local_module(None))

    with pytest.raises(ModelConfigurationError, match="no model is configured"):
        resolve_model()


def test_local_spec_goes_to_the_local_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wrapper.local_model", fake_local_module(None))

    model = resolve_model("local:qwen-1.5b")

    assert getattr(model, "path", None) == "qwen-1.5b"


def test_local_spec_without_the_local_provider_is_an_error() -> None:
    with pytest.raises(ModelConfigurationError, match="the local model provider is not installed"):
        resolve_model("local:/models/qwen.gguf")


def test_a_local_provider_missing_its_dependencies_counts_as_not_installed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # wrapper.local_model exists, but llama.cpp cannot be imported (None in sys.modules blocks the import).
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    monkeypatch.setitem(sys.modules, "llama_cpp.llama_grammar", None)
    monkeypatch.delitem(sys.modules, "wrapper.local_model")
    monkeypatch.setenv("ARBITER_MODELS_DIR", str(tmp_path))

    with pytest.raises(ModelConfigurationError, match="no model is configured"):
        resolve_model()
    with pytest.raises(ModelConfigurationError, match="the local model provider is not installed"):
        resolve_model("local:qwen-1.5b")


@pytest.mark.parametrize(("provider", "package"), [("ollama", "ollama"), ("openai", "openai")])
def test_optional_providers_build_or_name_the_missing_package(
    monkeypatch: pytest.MonkeyPatch, provider: str, package: str
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    if importlib.util.find_spec(package) is None:
        with pytest.raises(ModelConfigurationError, match=rf"pip install 'strands-agents\[{package}\]'"):
            resolve_model(f"{provider}:some-model")
    else:
        model = resolve_model(f"{provider}:some-model")
        assert model.get_config()["model_id"] == "some-model"


class FakeOllamaModel(ScriptedModel):
    def __init__(self, host: str | None, **config: Any) -> None:
        super().__init__([], **config)
        self.host = host


class FakeOpenAIModel(ScriptedModel):
    class OpenAIConfig(TypedDict, total=False):
        model_id: str
        params: dict[str, Any] | None

    def __init__(self, client_args: dict[str, Any] | None = None, **config: Any) -> None:
        super().__init__([], **config)
        self.client_args = client_args


def install_fake_provider(monkeypatch: pytest.MonkeyPatch, module: str, **classes: Any) -> None:
    fake = types.ModuleType(module)
    for name, cls in classes.items():
        setattr(fake, name, cls)
    monkeypatch.setitem(sys.modules, module, fake)


def test_ollama_spec_uses_ollama_host(monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake_provider(monkeypatch, "strands.models.ollama", OllamaModel=FakeOllamaModel)

    default = resolve_model("ollama:llama3.2", temperature=0)
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9999")
    custom = resolve_model("ollama:llama3.2")

    assert getattr(default, "host", None) == "http://127.0.0.1:11434"
    assert default.get_config() == {"model_id": "llama3.2", "temperature": 0}
    assert getattr(custom, "host", None) == "http://127.0.0.1:9999"


def test_openai_spec_reads_the_endpoint_from_env_and_puts_sampling_in_params(monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake_provider(monkeypatch, "strands.models.openai", OpenAIModel=FakeOpenAIModel)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "local-key")

    model = resolve_model("openai:qwen2.5", temperature=0, params={"max_tokens": 64})

    assert getattr(model, "client_args", None) == {"base_url": "http://127.0.0.1:8000/v1", "api_key": "local-key"}
    assert model.get_config() == {"model_id": "qwen2.5", "params": {"max_tokens": 64, "temperature": 0}}


def test_openai_client_args_leave_out_unset_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake_provider(monkeypatch, "strands.models.openai", OpenAIModel=FakeOpenAIModel)

    assert getattr(resolve_model("openai:gpt-4o-mini"), "client_args", None) == {}


def run_agent(model: Model) -> str:
    return str(Agent(model=model, tools=[burger_cook], callback_handler=None)("One cheeseburger.")).strip()


def test_track_usage_counts_every_model_call_of_a_real_agent() -> None:
    cooked.clear()
    usage: list[tuple[int, int]] = []

    tracked = track_usage(ScriptedModel(SCRIPT["turns"]), lambda i, o: usage.append((i, o)))
    tracked_text = run_agent(tracked)
    plain_text = run_agent(ScriptedModel(SCRIPT["turns"]))

    assert usage == [(120, 30), (200, 12)]
    assert tracked_text == plain_text == "Your order is ready."
    assert cooked == ["cheeseburger", "cheeseburger"]


def test_track_usage_delegates_everything_else() -> None:
    inner = ScriptedModel([{"text": "hi"}], temperature=0.2)
    tracked = track_usage(inner, lambda i, o: None)

    tracked.update_config(max_tokens=10)

    assert isinstance(tracked, UsageTrackingModel)
    assert tracked.wrapped is inner
    assert tracked.get_config() == {"model_id": "scripted", "temperature": 0.2, "max_tokens": 10}
    assert getattr(tracked, "config", None) is inner.config
    assert getattr(tracked, "remaining", None) == 1
    assert tracked.stateful is False
    assert tracked.context_window_limit is None
    with pytest.raises(AttributeError):
        _ = tracked.no_such_attribute


def test_track_usage_counts_structured_output() -> None:
    usage: list[tuple[int, int]] = []
    script = [{"structured": {"item": "fries", "quantity": 2}, "usage": {"input_tokens": 40, "output_tokens": 9}}]
    tracked = track_usage(ScriptedModel(script), lambda i, o: usage.append((i, o)))

    async def collect() -> list[Any]:
        return [event async for event in tracked.structured_output(Order, [])]

    events = asyncio.run(collect())

    assert events[-1] == {"output": Order(item="fries", quantity=2)}
    assert usage == [(40, 9)]


def test_track_usage_with_agent_structured_output() -> None:
    usage: list[tuple[int, int]] = []
    script = [{"structured": {"item": "shake", "quantity": 1}, "usage": {"input_tokens": 7, "output_tokens": 3}}]
    tracked = track_usage(ScriptedModel(script), lambda i, o: usage.append((i, o)))

    result = Agent(model=tracked, callback_handler=None)("A shake.", structured_output_model=Order)

    assert result.structured_output == Order(item="shake", quantity=1)
    assert usage == [(7, 3)]


class ChunkEventModel(ScriptedModel):
    """Yields structured output the way Strands' providers do: chunk events, a stop event, then the output."""

    async def structured_output(
        self, output_model: type[Any], prompt: Any, system_prompt: str | None = None, **kwargs: Any
    ) -> Any:
        usage = {"inputTokens": 5, "outputTokens": 6, "totalTokens": 11}
        yield {"event": {"messageStop": {"stopReason": "tool_use"}}}
        yield {"event": {"metadata": {"usage": usage, "metrics": {"latencyMs": 1}}}}
        yield {"stop": ("tool_use", {"role": "assistant", "content": []}, usage, {"latencyMs": 1})}
        yield {"output": output_model(item="cola", quantity=1)}


def test_track_usage_counts_usage_in_strands_chunk_events() -> None:
    usage: list[tuple[int, int]] = []
    tracked = track_usage(ChunkEventModel([]), lambda i, o: usage.append((i, o)))

    async def collect() -> list[Any]:
        return [event async for event in tracked.structured_output(Order, [])]

    assert asyncio.run(collect())[-1] == {"output": Order(item="cola", quantity=1)}
    assert usage == [(5, 6)]
