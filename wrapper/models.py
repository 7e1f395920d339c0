"""The model factory: turns a model spec string into a Strands model, and counts the tokens a model uses.

A spec is ``<provider>:<name>``:

- ``bedrock:<model or inference profile id>``: Amazon Bedrock; the region comes from the usual AWS settings.
- ``ollama:<model>``: an Ollama server at ``OLLAMA_HOST`` (default ``http://127.0.0.1:11434``).
- ``openai:<model>``: an OpenAI-compatible endpoint at ``OPENAI_BASE_URL`` with ``OPENAI_API_KEY``.
- ``local:<path.gguf or alias>``: an in-process local model (needs the local model provider).
- ``scripted:<file.json>``: a :class:`~wrapper.testing.ScriptedModel` that plays a fixed script.

:func:`resolve_model` picks the spec: the explicit argument, else ``ARBITER_MODEL``, else the local model if one is
installed, else it raises :class:`~wrapper.exceptions.ModelConfigurationError` saying how to set one.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, get_type_hints

from pydantic import BaseModel
from strands.models import Model
from strands.types.content import Messages, SystemContentBlock
from strands.types.streaming import StreamEvent
from strands.types.tools import ToolSpec

from wrapper.constants import DEFAULT_OLLAMA_HOST, ENV_MODEL, ENV_OLLAMA_HOST, ENV_OPENAI_API_KEY, ENV_OPENAI_BASE_URL
from wrapper.exceptions import ModelConfigurationError

__all__ = [
    "PROVIDERS",
    "ModelSpec",
    "UsageTrackingModel",
    "needs_network",
    "parse_model_spec",
    "resolve_model",
    "track_usage",
]

logger = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)

#: The provider prefixes a model spec may start with.
PROVIDERS = ("bedrock", "ollama", "openai", "local", "scripted")

_HOW_TO_SET = (
    f"set {ENV_MODEL}=bedrock:<model id>, ollama:<model>, openai:<model>, local:<path.gguf> or scripted:<file.json>"
)
_LOCAL_MODULE = "wrapper.local_model"


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: which provider, and the model (id, path or file) it should use."""

    provider: str
    name: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.name}"


def parse_model_spec(spec: str) -> ModelSpec:
    """Parse ``<provider>:<name>``; only the first colon separates them (Bedrock ids contain colons).

    Raises:
        ModelConfigurationError: the spec is empty, has no or an unknown provider prefix, or no model name.
    """
    text = spec.strip()
    if not text:
        raise ModelConfigurationError(f"the model spec is empty; {_HOW_TO_SET}")
    provider, colon, name = text.partition(":")
    provider, name = provider.strip().lower(), name.strip()
    if not colon or provider not in PROVIDERS:
        raise ModelConfigurationError(
            f"model spec {spec!r} does not start with a known provider; use one of "
            + ", ".join(f"{prefix}:" for prefix in PROVIDERS)
        )
    if not name:
        raise ModelConfigurationError(f"model spec {spec!r} names no model after {provider + ':'!r}")
    return ModelSpec(provider, name)


#: Providers that reach a model over the network (sandboxed workers using them need network access).
HOSTED_PROVIDERS = ("bedrock", "ollama", "openai")


def needs_network(spec: str | None) -> bool:
    """Whether workers using this model spec must reach the network (``False`` for no spec or a bad one)."""
    if spec is None:
        return False
    try:
        return parse_model_spec(spec).provider in HOSTED_PROVIDERS
    except ModelConfigurationError:
        return False


def resolve_model(spec: str | None = None, **config: Any) -> Model:
    """Return the Strands model for ``spec``, else for ``ARBITER_MODEL``, else the installed local model.

    Args:
        spec: A model spec such as ``bedrock:us.anthropic.claude-sonnet-4-20250514-v1:0``; ``None`` to use the
            environment.
        **config: Model configuration overrides (e.g. ``temperature=0``), passed to the provider.

    Raises:
        ModelConfigurationError: no model is configured, the spec is invalid, or its provider is not installed.
    """
    if spec is None:
        spec = os.environ.get(ENV_MODEL, "").strip() or None
    if spec is not None:
        return _build(parse_model_spec(spec), config)
    local = _local_module()
    path = local.default_model_path() if local is not None else None
    if path is None:
        raise ModelConfigurationError(f"no model is configured; {_HOW_TO_SET}")
    logger.debug("path=<%s> | using the installed local model", path)
    model: Model = local.LocalModel(path, **config)
    return model


def _build(spec: ModelSpec, config: dict[str, Any]) -> Model:
    logger.debug("provider=<%s>, name=<%s> | resolving model", spec.provider, spec.name)
    if spec.provider == "bedrock":
        from strands.models import BedrockModel

        # model_id, not model: BedrockModel ignores unknown keys (with a warning) and would run its default model.
        return BedrockModel(model_id=spec.name, **config)
    if spec.provider == "ollama":
        ollama = _provider_class("strands.models.ollama", "OllamaModel", package="ollama")
        host = os.environ.get(ENV_OLLAMA_HOST) or DEFAULT_OLLAMA_HOST
        return ollama(host, model_id=spec.name, **config)  # type: ignore[no-any-return]
    if spec.provider == "openai":
        return _openai(spec.name, config)
    if spec.provider == "local":
        local = _local_module()
        if local is None:
            raise ModelConfigurationError(
                f"model spec {str(spec)!r}: the local model provider is not installed; use another provider or "
                "install local model support"
            )
        return local.LocalModel(spec.name, **config)  # type: ignore[no-any-return]
    from wrapper.testing import ScriptedModel

    return ScriptedModel.from_file(spec.name, **config)


def _openai(name: str, config: dict[str, Any]) -> Model:
    openai = _provider_class("strands.models.openai", "OpenAIModel", package="openai")
    client_args = {
        key: value
        for key, value in (
            ("base_url", os.environ.get(ENV_OPENAI_BASE_URL)),
            ("api_key", os.environ.get(ENV_OPENAI_API_KEY)),
        )
        if value
    }
    # OpenAIModel takes sampling settings (temperature, max_tokens...) inside `params`, not as top-level config.
    known = set(get_type_hints(openai.OpenAIConfig))
    params = {key: value for key, value in config.items() if key not in known}
    settings = {key: value for key, value in config.items() if key in known}
    if params:
        settings["params"] = {**(settings.get("params") or {}), **params}
    return openai(client_args=client_args, model_id=name, **settings)  # type: ignore[no-any-return]


def _provider_class(module: str, name: str, *, package: str) -> Any:
    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != package:
            raise
        raise ModelConfigurationError(
            f"the {package!r} package is needed for {package}: model specs; install it with "
            f"`pip install 'strands-agents[{package}]'`"
        ) from None


def _local_module() -> Any:
    try:
        return importlib.import_module(_LOCAL_MODULE)
    except ModuleNotFoundError as exc:
        # Absent, or present without its optional dependencies (llama.cpp): either way the local provider is not
        # installed, which must not break resolution for users of the other providers.
        logger.debug("missing=<%s> | the local model provider is not installed", exc.name)
        return None


def track_usage(model: Model, on_usage: Callable[[int, int], None]) -> Model:
    """Wrap ``model`` so that each usage report in its output calls ``on_usage(input_tokens, output_tokens)``.

    Everything else is delegated unchanged, so the result can be given to a ``strands.Agent``.
    """
    return UsageTrackingModel(model, on_usage)


class UsageTrackingModel(Model):
    """A Strands model that delegates to another and reports the token usage in its stream (see :func:`track_usage`).

    Attributes the wrapper does not define (``config``, ``client``...) are read from the wrapped model.
    """

    def __init__(self, model: Model, on_usage: Callable[[int, int], None]) -> None:
        self.wrapped = model
        self._on_usage = on_usage
        # Strands reads this class attribute to decide how to ask for structured output; it must be the wrapped one's.
        self._supports_structured_output = model._supports_structured_output

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes not found normally; `wrapped` is looked up in __dict__ so that a half-built or
        # unpickled instance raises AttributeError instead of recursing.
        wrapped = self.__dict__.get("wrapped")
        if wrapped is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(wrapped, name)

    @property
    def stateful(self) -> bool:
        """Whether the wrapped model keeps conversation state server-side."""
        return self.wrapped.stateful

    @property
    def context_window_limit(self) -> int | None:
        """The wrapped model's context window limit."""
        return self.wrapped.context_window_limit

    def update_config(self, **model_config: Any) -> None:
        """Update the wrapped model's configuration."""
        self.wrapped.update_config(**model_config)

    def get_config(self) -> Any:
        """Return the wrapped model's configuration."""
        return self.wrapped.get_config()

    async def count_tokens(
        self,
        messages: Messages,
        tool_specs: list[ToolSpec] | None = None,
        system_prompt: str | None = None,
        system_prompt_content: list[SystemContentBlock] | None = None,
    ) -> int:
        """Estimate the input tokens with the wrapped model."""
        return await self.wrapped.count_tokens(messages, tool_specs, system_prompt, system_prompt_content)

    async def stream(
        self,
        messages: Messages,
        tool_specs: list[ToolSpec] | None = None,
        system_prompt: str | None = None,
        **kwargs: Any,
    ) -> AsyncGenerator[StreamEvent, None]:
        """Stream from the wrapped model, reporting the usage in its ``metadata`` events."""
        async for event in self.wrapped.stream(messages, tool_specs, system_prompt, **kwargs):
            self._report(event)
            yield event

    async def structured_output(
        self, output_model: type[T], prompt: Messages, system_prompt: str | None = None, **kwargs: Any
    ) -> AsyncGenerator[dict[str, T | Any], None]:
        """Get structured output from the wrapped model, reporting the usage in the events it yields."""
        async for event in self.wrapped.structured_output(output_model, prompt, system_prompt, **kwargs):
            self._report(event)
            yield event

    def _report(self, event: Any) -> None:
        # Providers' structured_output yields Strands' chunk events, which carry the raw stream event under "event".
        if isinstance(event, dict) and isinstance(event.get("event"), dict):
            event = event["event"]
        metadata = event.get("metadata") if isinstance(event, dict) else None
        usage = metadata.get("usage") if isinstance(metadata, dict) else None
        if isinstance(usage, dict):
            self._on_usage(int(usage.get("inputTokens", 0)), int(usage.get("outputTokens", 0)))

    def __repr__(self) -> str:
        return f"UsageTrackingModel({self.wrapped!r})"
