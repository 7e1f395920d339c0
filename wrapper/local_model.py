"""The ``local:`` model provider: a GGUF model run in this process by llama.cpp (``pip install 'arbiter[local]'``).

:class:`LocalModel` is a Strands model. It renders the conversation with the model's own chat template (tools
included), runs llama.cpp, and reads tool calls out of the text (see :mod:`wrapper._fenced_tool_calls`): small
models such as Qwen2.5-Coder write them as JSON, in ``<tool_call>`` tags or fenced blocks. What makes a
1.5B model dependable:

- several tool calls per reply run in one wave only when the model has seen their values (``parallel_tool_calls``
  ``"grounded"``, see :mod:`wrapper.grounding`): the first call always runs, a later one whose arguments hold a
  value that is nowhere in the conversation (made up, or waiting for another call's result) is deferred to the
  next turn, so a small model does not act on values it does not have yet;
- when a tool is forced (``tool_choice``), or the only tool offered is Strands' structured output tool, the output
  is grammar-constrained to the tool's input schema: it is always a valid call. A string field declared as code
  (``"contentMediaType": "text/x-python"``) is written first, as a plain code block, not escaped inside JSON (cut at
  a line end at its ``maxLength``, if it has one); the
  other fields are written freely as a JSON block first (``json_first``) and under the grammar only when that
  block is not a valid object of the schema;
- after a tool result, a reply that only repeats calls already answered is not run again: the same prompt is asked
  once more offering only the tools not called yet (with one call per reply), or without any tool, for the answer
  (otherwise a small model loops on the same call);
- text is never turned into a call: an answer that mentions a tool ("there is no need to call the pager") is an
  answer, and only calls the model wrote in its reply are run;
- temperature 0 and a fixed seed by default, so the same conversation gets the same reply;
- the states of earlier prompts are kept (``prompt_cache_bytes``), so a prompt that continues an earlier one (the
  next turn of a conversation) is evaluated only from where they differ; and on disk (``prompt_state_bytes``, see
  :mod:`wrapper._prompt_states`), so a new process does not evaluate the planner's or the Fabricator's long system
  prompt and tool listing again.

One model file is loaded once per process, whatever the number of ``LocalModel`` objects and threads using it;
calls to it take turns (llama.cpp contexts are not thread-safe).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, TypedDict, TypeVar, cast

from pydantic import BaseModel
from strands.models import Model
from strands.types.content import Messages
from strands.types.streaming import StreamEvent
from strands.types.tools import ToolChoice, ToolSpec

from wrapper._chat_prompt import render_prompt
from wrapper._cpu import free_cores, usable_cores
from wrapper._fenced_tool_calls import ParsedCall, parse_reply
from wrapper._prompt_states import PromptStateStore, common_prefix
from wrapper.call_checks import CallScreen, current_call_checks, open_call
from wrapper.constants import ENV_PROMPT_STATE_BYTES
from wrapper.exceptions import ModelConfigurationError, WrapperError
from wrapper.field_checks import FieldRefused, current_field_checks
from wrapper.grounding import context_text, invented_values, split_grounded
from wrapper.model_store import default_model_path, model_identity, models_dir, resolve_model_file
from wrapper.sampling import current_sampling
from wrapper.schemas import output_problem

try:
    import llama_cpp
    import numpy as np
    from llama_cpp.llama_cache import LlamaRAMCache
    from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf
except ImportError as exc:  # wrapper.models treats a missing module as "the local provider is not installed"
    raise ModuleNotFoundError(
        "the local model provider needs llama-cpp-python: pip install 'arbiter-agents[local]'", name="llama_cpp"
    ) from exc

from wrapper._grammar_gate import GrammarGate

__all__ = ["CallFigures", "LocalModel", "LocalModelError", "default_model_path"]

logger = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)

# Strands puts this word in the description of the tool it registers for `structured_output_model`.
_STRUCTURED_OUTPUT_MARKER = "StructuredOutputTool"
_STOP = ["<|im_end|>", "<|endoftext|>"]
# A tool turn (calls or a short answer) never needs more; a model that runs away is cut off early.
_TURN_TOKENS = 512
_BATCH = 128
# A code field's ``maxLength`` in characters, as tokens: code averages more than three characters a token.
_CHARS_PER_TOKEN = 3
# An answer is one paragraph that ends a sentence.
_ANSWER_RULE = "answer ::= [^<{`\\[ \\t\\n] [^<`\\n]{0,600} [.!?]\n"
_ANSWER_NOW = "Answer now from the results above, in plain text. Do not call any tool."


class LocalModelError(WrapperError):
    """The local model could not be loaded or did not produce a usable reply."""


class LocalConfig(TypedDict, total=False):
    """Settings of a :class:`LocalModel`.

    Attributes:
        model_id: the GGUF file (set from the path or alias given to the constructor).
        temperature: sampling temperature; 0 is greedy (the default).
        top_p: nucleus sampling.
        seed: the sampling seed (default 0).
        max_tokens: the longest reply.
        n_ctx: the context window the model is loaded with.
        constrain_tools: when tools are offered, constrain the reply to either valid ``<tool_call>`` blocks or a
            plain answer (default ``True``; turn off for models that call tools in another format).
        parallel_tool_calls: how the calls of one reply are run. ``"grounded"`` (the default): the first, and each
            later one whose argument values all occur in the conversation (the others are deferred: not run, and
            asked for again next turn with this turn's results in view). ``True`` or ``"all"``: every call. ``False``
            or ``"off"``: one call per reply. Calls of one reply run at the same time, so none can use another's
            result, and a small model does not keep to that: it fills in values it does not have yet.
        json_first: fill a structured object's non-code fields by free generation first, and under the JSON
            Schema's grammar only when that reply is not a valid object of the schema (default ``True``: free
            generation is several times faster than grammar-constrained sampling on a CPU).
        fast_grammar: under greedy decoding (``temperature`` 0), check a grammar against the model's most likely
            token first and match the whole vocabulary only when it is refused (default ``True``: the same text as
            llama.cpp's grammar sampler, at nearly the speed of free generation; see :mod:`wrapper._grammar_gate`).
        prompt_cache_bytes: memory for the states of earlier prompts (default 1.5 GiB; 0 turns it off). A
            prompt that starts like an earlier one (the same conversation one turn later, or the planner's after the
            Fabricator's) is evaluated from where that one ended instead of from the start. The states on disk are a
            separate setting: both at 0 evaluate every prompt from the start.
        prompt_state_bytes: disk space for prompt states kept across processes (default ``ARBITER_PROMPT_STATE_BYTES``,
            else 2 GiB; 0 turns it off). A process whose prompt starts like one a process of the same model (file,
            llama.cpp version, context size) evaluated before loads that state instead of evaluating the shared
            start again: the system prompt and tool listing, ~1,200 tokens for the planner.
        prompt_state_dir: where those states are kept (default ``<models dir>/states``).
        n_threads: CPU threads (default: chosen before each call from the cores other processes leave idle, see
            :mod:`wrapper._cpu`: llama.cpp's threads wait for each other by spinning, so a thread on a busy core
            slows every token; on 2 cores, 2 threads gave ~25 tok/s idle but ~8 tok/s beside a busy process,
            where 1 thread gave ~15 tok/s).
    """

    model_id: str
    temperature: float
    top_p: float
    seed: int
    max_tokens: int
    n_ctx: int
    n_threads: int
    constrain_tools: bool
    parallel_tool_calls: bool | Literal["off", "grounded", "all"]
    json_first: bool
    fast_grammar: bool
    prompt_cache_bytes: int
    prompt_state_bytes: int
    prompt_state_dir: str


_DEFAULTS: LocalConfig = {
    "temperature": 0.0,
    "top_p": 0.95,
    "seed": 0,
    "max_tokens": 1536,
    "n_ctx": 8192,
    "prompt_cache_bytes": 3 << 29,
}


_DEFAULT_STATE_BYTES = 2 << 30
# A prompt whose start is on disk is saved again only when the disk covers less than this share of it: a growing
# conversation is saved a few times (each ~4/3 longer than the last), not at every turn.
_COVERED = 0.75
# Fewer shared tokens than this are evaluated faster than a state file is read.
_MIN_STATE_TOKENS = 32
# Context parameters a saved state depends on (besides n_ctx and n_batch).
_CONTEXT_FIELDS = (
    "n_ubatch",
    "n_seq_max",
    "ctx_type",
    "type_k",
    "type_v",
    "flash_attn_type",
    "rope_scaling_type",
    "rope_freq_base",
    "rope_freq_scale",
    "offload_kqv",
    "swa_full",
    "kv_unified",
    "embeddings",
)


class _PromptCache(LlamaRAMCache):
    """llama.cpp's in-memory prompt cache, with each state counted at its full size, backed by a disk store.

    The stock cache counts only the context state, not the logits copied with it (hundreds of MB each for a model
    with a large vocabulary), so its capacity would not bound its memory.

    With a ``disk`` store: a lookup loads the disk state sharing the longest start with the prompt into ``llama``
    when it shares more than the states in memory and the context itself (a state that llama.cpp refuses is
    removed and the prompt evaluated afresh); each state llama.cpp keeps after a completion is saved to disk unless
    the disk already covers most of it (``_COVERED``).
    """

    def __init__(self, capacity_bytes: int, llama: Any = None, disk: PromptStateStore | None = None) -> None:
        super().__init__(capacity_bytes=capacity_bytes)
        self._llama = llama
        self._disk = disk

    @property
    def cache_size(self) -> int:
        return sum(
            state.llama_state_size + state.scores.nbytes + state.input_ids.nbytes for state in self.cache_state.values()
        )

    def __getitem__(self, key: Any) -> Any:
        tokens = tuple(key)
        if self._disk is not None and self._llama is not None:
            in_memory = self._find_longest_prefix_key(tokens)
            wanted = np.asarray(tokens, dtype=np.int32)
            live = self._llama.input_ids[: self._llama.n_tokens]
            known = max(
                common_prefix(np.asarray(in_memory, dtype=np.int32), wanted) if in_memory else 0,
                common_prefix(np.asarray(live), wanted),
            )
            shared, path = self._disk.longest_prefix(tokens)
            if path is not None and shared > known and shared >= _MIN_STATE_TOKENS:
                state = self._from_disk(self._disk, path, shared)
                if state is not None:
                    super().__setitem__(state.input_ids[: state.n_tokens].tolist(), state)
                    return state
        return super().__getitem__(tokens)

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        if self._disk is None or value.n_tokens < _MIN_STATE_TOKENS:
            return
        tokens = value.input_ids[: value.n_tokens].tolist()
        shared, _ = self._disk.longest_prefix(tokens)
        if shared < _COVERED * len(tokens):
            self._disk.save(value)

    def _from_disk(self, disk: PromptStateStore, path: Path, shared: int) -> Any:
        """The state in ``path``, loaded into the model (so a state llama.cpp refuses is caught here)."""
        started = time.perf_counter()
        state = disk.load(path)
        if state is None:
            return None
        try:
            self._llama.load_state(state)
        except (RuntimeError, ValueError) as exc:
            self._llama.n_tokens = 0  # whatever was half loaded is evaluated over from the start
            disk.discard(path, f"llama.cpp refused it: {exc}")
            return None
        logger.debug(
            "path=<%s>, tokens=<%d>, shared=<%d>, ms=<%.0f> | prompt state loaded from disk",
            path,
            state.n_tokens,
            shared,
            (time.perf_counter() - started) * 1000,
        )
        return state


@dataclass
class _Loaded:
    llama: Any
    template: str | None
    lock: threading.Lock
    #: A real llama.cpp model (its grammar can be checked token by token: see :mod:`wrapper._grammar_gate`).
    native: bool = False


@dataclass(frozen=True)
class CallFigures:
    """What one llama.cpp completion cost, to compare with the floor (the tokens it had to evaluate and write).

    Attributes:
        constrained: whether a grammar constrained the reply.
        prompt_tokens: the prompt's length in tokens.
        evaluated: prompt tokens evaluated by this call (the rest were reused from an earlier state).
        generated: tokens generated.
        seconds: wall time of the call.
        prompt_seconds: time spent evaluating the prompt.
        generate_seconds: time spent evaluating the generated tokens.
        full_checks: generated tokens for which the whole vocabulary was matched against the grammar.
        threads: the CPU threads the call ran with.
        started: when the call started (seconds since the epoch).
    """

    constrained: bool
    prompt_tokens: int
    evaluated: int
    generated: int
    seconds: float
    prompt_seconds: float
    generate_seconds: float
    full_checks: int = 0
    threads: int = 0
    started: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The figures as JSON values, the derived ones included."""
        return {
            **asdict(self),
            "reused": self.reused,
            "sampling_seconds": round(self.sampling_seconds, 2),
            "tokens_per_second": round(self.tokens_per_second, 1),
        }

    @property
    def reused(self) -> int:
        """Prompt tokens not evaluated again."""
        return max(0, self.prompt_tokens - self.evaluated)

    @property
    def sampling_seconds(self) -> float:
        """Time outside model evaluation: sampling, the grammar included, and llama-cpp-python's own work."""
        return max(0.0, self.seconds - self.prompt_seconds - self.generate_seconds)

    @property
    def tokens_per_second(self) -> float:
        """Generated tokens per second of generation (sampling included, prompt evaluation excluded)."""
        spent = self.seconds - self.prompt_seconds
        return self.generated / spent if spent > 0 else 0.0


_LOADED: dict[tuple[str, int, int], _Loaded] = {}
_LOADING = threading.Lock()


@dataclass(frozen=True)
class _Reply:
    text: str
    calls: tuple[ParsedCall, ...]
    input_tokens: int
    output_tokens: int
    latency_ms: int


class LocalModel(Model):
    """A GGUF model run in process with llama.cpp, with tool calling for models that write calls as JSON.

    Args:
        path_or_alias: an installed catalogue alias (``qwen2.5-coder-1.5b``) or the path of a GGUF file.
        **config: :class:`LocalConfig` settings.

    Raises:
        ModelConfigurationError: the alias is not installed, or the file does not exist.
    """

    def __init__(self, path_or_alias: str | os.PathLike[str], **config: Any) -> None:
        path = resolve_model_file(path_or_alias)
        unknown = set(config) - set(LocalConfig.__annotations__)
        if unknown:
            raise ModelConfigurationError(
                f"unknown local model settings: {', '.join(sorted(unknown))}; "
                f"use {', '.join(LocalConfig.__annotations__)}"
            )
        self.config: LocalConfig = {**_DEFAULTS, **cast(LocalConfig, config), "model_id": str(path)}
        #: The figures of every llama.cpp completion this model made, in order.
        self.calls: list[CallFigures] = []
        #: Calls the model wrote but that were not run: their values were nowhere in the conversation.
        self.deferred_calls = 0
        #: Calls the model started but that were not run: a caller's check refused them, or the token limit cut them.
        self.refused_calls = 0

    def update_config(self, **model_config: Any) -> None:
        """Update the settings (a new ``n_ctx`` or ``n_threads`` takes effect for the next load)."""
        self.config.update(cast(LocalConfig, model_config))

    def get_config(self) -> LocalConfig:
        """Return the settings."""
        return self.config

    async def stream(
        self,
        messages: Messages,
        tool_specs: list[ToolSpec] | None = None,
        system_prompt: str | None = None,
        *,
        tool_choice: ToolChoice | None = None,
        **kwargs: Any,
    ) -> AsyncGenerator[StreamEvent, None]:
        """Run one model turn and yield it as Strands stream events.

        Raises:
            LocalModelError: the model could not be loaded.
        """
        reply = await asyncio.to_thread(self._turn, messages, list(tool_specs or []), system_prompt, tool_choice)
        for event in _events(reply):
            yield event

    async def structured_output(
        self, output_model: type[T], prompt: Messages, system_prompt: str | None = None, **kwargs: Any
    ) -> AsyncGenerator[dict[str, T | Any], None]:
        """Answer with an ``output_model`` object, the output constrained to its JSON Schema.

        Yields:
            The usage event, then ``{"output": <output_model instance>}``.

        Raises:
            LocalModelError: the model could not be loaded.
            FieldRefused: a field the caller checks was refused (after the usage event).
            pydantic.ValidationError: the object does not validate (e.g. a constraint the grammar cannot express).
        """
        schema = output_model.model_json_schema()
        loaded = self._load()
        try:
            value, usage = await asyncio.to_thread(self._fill, loaded, prompt, schema, system_prompt, lambda rest: None)
        except FieldRefused as refused:
            yield {"event": _metadata(*refused.usage)}
            raise
        yield {"event": _metadata(*usage)}
        yield {"output": output_model.model_validate(value)}

    def _fill(
        self,
        loaded: _Loaded,
        messages: Messages,
        schema: dict[str, Any],
        system_prompt: str | None,
        ask: Callable[[dict[str, Any]], str | None],
    ) -> tuple[dict[str, Any], tuple[int, int]]:
        """An object of ``schema``: its code fields first, each as a plain code block, then the rest as JSON.

        A string field declared as code (``"contentMediaType": "text/x-python"``, say) is written the way a code
        model writes code, in a fenced block, instead of escaped inside a JSON string (where a small model breaks
        its backslashes and quotes). The other fields are then constrained to their schema, with the code above
        them in the conversation. ``ask`` gives the user message that asks for those (``None``: no message).

        Raises:
            FieldRefused: a code field the caller checks (:mod:`wrapper.field_checks`) was refused; the rest is not
                written.
        """
        conversation: Messages = list(messages)
        value: dict[str, Any] = {}
        tokens_in = tokens_out = 0
        properties = dict(schema.get("properties", {}))
        for name, prop in properties.items():
            language = _code_language(prop)
            if language is None:
                continue
            about = f" ({prop['description']})" if prop.get("description") else ""
            asked = f"First write only `{name}`{about}, as one ```{language} block."
            conversation.append({"role": "user", "content": [{"text": asked}]})
            fence = f"```{language}\n"
            chat = render_prompt(loaded.template, conversation, [], system_prompt) + fence
            longest = prop.get("maxLength")
            if isinstance(longest, int):
                # A bounded field (tests, a derivation) is cut at its bound, on a line end, instead of running on.
                limit = max(16, longest // _CHARS_PER_TOKEN)
                text, (more_in, more_out) = self._complete(loaded, chat, None, forced=False, stop=["```"], limit=limit)
                text = _whole_lines(text, longest - 1)
            else:
                text, (more_in, more_out) = self._complete(loaded, chat, None, forced=True, stop=["```"])
            tokens_in, tokens_out = tokens_in + more_in, tokens_out + more_out
            value[name] = text.strip("\n") + "\n"
            check = current_field_checks().get(name)
            problem = None if check is None else check(value[name])
            if problem is not None:
                raise FieldRefused(name, value[name], problem, (tokens_in, tokens_out))
            conversation.append({"role": "assistant", "content": [{"text": f"{fence}{value[name]}```"}]})
        rest = _without(schema, set(value))
        if value and not rest.get("properties"):
            return value, (tokens_in, tokens_out)
        message = ask(rest) or ("Now the other fields, as one JSON object." if value else None)
        if message is not None:
            conversation.append({"role": "user", "content": [{"text": message}]})
        chat = render_prompt(loaded.template, conversation, [], system_prompt)
        if self.config.get("json_first", True):
            # Free generation runs several times faster than grammar-constrained sampling; the grammar is only
            # needed when the free reply is not an object of the schema.
            text, (more_in, more_out) = self._complete(loaded, chat + "```json\n", None, forced=False, stop=["```"])
            tokens_in, tokens_out = tokens_in + more_in, tokens_out + more_out
            free = _object_of(text, rest)
            if free is not None:
                value.update(free)
                return value, (tokens_in, tokens_out)
            logger.debug("schema=<%s> | free JSON reply did not fit; asking under the grammar", sorted(rest))
        text, (more_in, more_out) = self._complete(loaded, chat, _json_grammar(rest), forced=True)
        value.update(json.loads(text, strict=False))
        return value, (tokens_in + more_in, tokens_out + more_out)

    # ---------------------------------------------------------------- one turn

    def _turn(
        self, messages: Messages, specs: list[ToolSpec], system_prompt: str | None, tool_choice: ToolChoice | None
    ) -> _Reply:
        loaded = self._load()
        started = time.perf_counter()
        forced = _forced_tool(specs, tool_choice)
        if forced is not None:
            spec = next((s for s in specs if s["name"] == forced), None)
            if spec is None:
                raise LocalModelError(f"the forced tool {forced!r} is not among the tools offered")
            # No tool listing: the object's fields are asked for in words and its schema is the grammar, so that a
            # small model fills in values instead of copying the listing's descriptions.
            arguments, (tokens_in, tokens_out) = self._fill(
                loaded, messages, _input_schema(spec), system_prompt, lambda rest: _fill_in(spec, rest)
            )
            return _Reply("", (ParsedCall(spec["name"], arguments),), tokens_in, tokens_out, _ms(started))
        chat = render_prompt(loaded.template, messages, specs, system_prompt)
        mode = _parallel_mode(self.config.get("parallel_tool_calls", "grounded"))
        parallel = mode == "all"
        constrain = bool(self.config.get("constrain_tools", True))
        answered = _answered_calls(messages)
        offered = list(specs)
        seen = context_text(messages, system_prompt, specs) if mode == "grounded" else ""
        tokens_in = tokens_out = 0
        while True:
            grammar = _tool_turn_grammar(offered, mode != "off") if offered and constrain else None
            until: Callable[[str], bool] | None = None
            if mode == "grounded" and constrain:
                until = functools.partial(
                    _calls_done, names={s["name"] for s in offered}, context=seen, answered=frozenset(answered)
                )
            screen = CallScreen(current_call_checks(), [s["name"] for s in offered])
            text, (more_in, more_out) = self._complete(
                loaded, chat, grammar, forced=False, limit=_TURN_TOKENS, until=_screened(until, screen)
            )
            tokens_in, tokens_out = tokens_in + more_in, tokens_out + more_out
            names = [s["name"] for s in offered]
            text, dropped = _without_dropped(text, screen, names)
            self.refused_calls += bool(dropped)
            if dropped and not dropped & set(names):
                dropped = set(names)  # a tool not offered (again): what is asked next must be the answer
            parsed = parse_reply(text, {s["name"] for s in offered}) if offered else None
            calls = parsed.calls if parsed is not None else ()
            if mode == "off":
                calls = calls[:1]
            elif mode == "grounded" and len(calls) > 1:
                calls_run, deferred = split_grounded(calls, lambda call: call.input, seen)
                calls = tuple(calls_run)
                self.deferred_calls += len(deferred)
                if deferred:
                    logger.debug("calls=<%s> | deferred: values not in the conversation", [c.name for c in deferred])
            fresh = _fresh_calls(calls, answered)
            repeated = bool(calls) and _ends_with_tool_results(messages)
            if fresh or not (dropped or repeated):
                break
            # The model repeats a call it has the result of, or wrote one that was refused or cut off. One call per
            # reply: the same prompt again, offering only the tools it has not called (or had refused) yet, so it
            # takes a step it skipped; else (or when there is none): ask for the answer, without tools this time.
            called = {call.name for call in calls} | _called_tools(messages) | dropped
            logger.debug("calls=<%s>, dropped=<%s> | no new call", [call.name for call in calls], sorted(dropped))
            offered = [spec for spec in offered if spec["name"] not in called]
            if parallel or not constrain or not offered:
                nudged: Messages = [*messages, {"role": "user", "content": [{"text": _ANSWER_NOW}]}]
                # Constrained: the tools stay in the prompt (whose evaluation is then reused up to here) and the
                # grammar allows only an answer.
                listed = specs if constrain else []
                chat = render_prompt(loaded.template, nudged, listed, system_prompt)
                grammar = _answer_grammar() if constrain else None
                text, (more_in, more_out) = self._complete(loaded, chat, grammar, forced=False)
                return _Reply(text.strip(), (), tokens_in + more_in, tokens_out + more_out, _ms(started))
        if parsed is None:
            return _Reply(text.strip(), (), tokens_in, tokens_out, _ms(started))
        return _Reply(parsed.text, tuple(fresh), tokens_in, tokens_out, _ms(started))

    def _complete(
        self,
        loaded: _Loaded,
        prompt: str,
        grammar: Any,
        *,
        forced: bool,
        limit: int | None = None,
        stop: list[str] | None = None,
        until: Callable[[str], bool] | None = None,
    ) -> tuple[str, tuple[int, int]]:
        """One llama.cpp completion; ``until(text so far)`` returning true ends it there (a native model only)."""
        config = self.config
        sampling = current_sampling()
        if sampling is not None:  # asked for by the caller's block: this call only (see wrapper.sampling)
            config = cast(LocalConfig, {**config, "temperature": sampling.temperature, "seed": sampling.seed})
        max_tokens = config.get("max_tokens", _DEFAULTS["max_tokens"])
        greedy = float(config.get("temperature", 0.0)) == 0.0
        gate = None
        with loaded.lock:
            constraint: dict[str, Any] = {"grammar": grammar}
            if grammar is not None and greedy and loaded.native and config.get("fast_grammar", True):
                gate = GrammarGate(loaded.llama, grammar)
                constraint = {"logits_processor": llama_cpp.LogitsProcessorList([gate])}
            if until is not None and loaded.native:
                constraint["stopping_criteria"] = llama_cpp.StoppingCriteriaList([_TextStop(loaded.llama, until)])
            threads = 0
            if loaded.native:
                threads = int(config.get("n_threads") or free_cores())
                llama_cpp.llama_set_n_threads(loaded.llama.ctx, threads, threads)
                llama_cpp.llama_perf_context_reset(loaded.llama.ctx)
            began, started = time.time(), time.perf_counter()
            try:
                result = loaded.llama.create_completion(
                    prompt,
                    max_tokens=max_tokens if limit is None else min(limit, max_tokens),
                    temperature=config.get("temperature", 0.0),
                    top_p=config.get("top_p", 0.95),
                    seed=config.get("seed", 0),
                    stop=[*_STOP, *(stop or [])],
                    **constraint,
                )
            finally:
                if gate is not None:
                    gate.close()
            seconds = time.perf_counter() - started
            perf = llama_cpp.llama_perf_context(loaded.llama.ctx) if loaded.native else None
        choice = result["choices"][0]
        usage = result.get("usage") or {}
        text = str(choice.get("text") or "")
        figures = CallFigures(
            constrained=grammar is not None,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            evaluated=int(perf.n_p_eval) if perf is not None else int(usage.get("prompt_tokens", 0)),
            generated=int(usage.get("completion_tokens", 0)),
            seconds=seconds,
            prompt_seconds=float(perf.t_p_eval_ms) / 1000 if perf is not None else 0.0,
            generate_seconds=float(perf.t_eval_ms) / 1000 if perf is not None else 0.0,
            full_checks=gate.full_checks if gate is not None else 0,
            threads=threads,
            started=began,
        )
        self.calls.append(figures)
        finish = choice.get("finish_reason")
        logger.debug("usage=<%s>, finish=<%s>, figures=<%s> | reply: %s", usage, finish, figures, text)
        if forced and choice.get("finish_reason") == "length":
            raise LocalModelError(
                f"the constrained reply was cut at max_tokens={config.get('max_tokens')}; raise max_tokens"
            )
        return text, (int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)))

    def _load(self) -> _Loaded:
        path = self.config["model_id"]
        n_ctx = int(self.config.get("n_ctx", _DEFAULTS["n_ctx"]))
        n_threads = int(self.config.get("n_threads") or usable_cores())  # each call sets its own (see _complete)
        key = (path, n_ctx, n_threads)
        with _LOADING:
            loaded = _LOADED.get(key)
            if loaded is None:
                started = time.perf_counter()
                state_bytes = self._state_bytes()
                try:
                    llama = llama_cpp.Llama(
                        model_path=path,
                        n_ctx=n_ctx,
                        n_threads=n_threads,
                        n_threads_batch=n_threads,
                        # The logits of a prompt's last batch are copied with every saved prompt state: a smaller
                        # batch keeps a state ~80 MB instead of ~310 MB, for about the same evaluation speed.
                        n_batch=_BATCH,
                        seed=0,
                        verbose=False,
                    )
                except (ValueError, RuntimeError, OSError) as exc:
                    raise LocalModelError(f"could not load the local model {path}: {exc}") from exc
                cache_bytes = int(self.config.get("prompt_cache_bytes", _DEFAULTS["prompt_cache_bytes"]))
                disk = self._state_store(llama, state_bytes) if state_bytes > 0 else None
                if cache_bytes > 0 or disk is not None:
                    llama.set_cache(_PromptCache(max(cache_bytes, 0), llama, disk))
                template = llama.metadata.get("tokenizer.chat_template")
                _align_reuse(llama, _BATCH)
                loaded = _Loaded(llama, template, threading.Lock(), native=True)
                _LOADED[key] = loaded
                logger.debug("path=<%s>, ms=<%.0f> | local model loaded", path, (time.perf_counter() - started) * 1000)
            return loaded

    def _state_bytes(self) -> int:
        """The disk space for prompt states: the setting, else ``ARBITER_PROMPT_STATE_BYTES``, else 2 GiB.

        Raises:
            ModelConfigurationError: the environment variable is not a whole number.
        """
        configured = self.config.get("prompt_state_bytes")
        if configured is not None:
            return int(configured)
        from_env = os.environ.get(ENV_PROMPT_STATE_BYTES, "").strip()
        try:
            return int(from_env) if from_env else _DEFAULT_STATE_BYTES
        except ValueError as exc:
            raise ModelConfigurationError(
                f"{ENV_PROMPT_STATE_BYTES}={from_env!r} is not a number of bytes (0 turns the store off)"
            ) from exc

    def _state_store(self, llama: Any, capacity_bytes: int) -> PromptStateStore | None:
        """The disk store of prompt states for ``llama`` (``None`` when the model file cannot be identified)."""
        path = Path(self.config["model_id"])
        try:
            model = model_identity(path)
        except OSError as exc:
            logger.warning("path=<%s>, error=<%s> | no prompt states on disk for this model", path, exc)
            return None
        params = llama.context_params
        identity = {
            "model": model,
            "llama_cpp": llama_cpp.__version__,
            "n_ctx": llama.n_ctx(),
            "n_batch": llama.n_batch,
            **{name: repr(getattr(params, name, None)) for name in _CONTEXT_FIELDS},
        }
        directory = Path(self.config.get("prompt_state_dir") or models_dir() / "states").expanduser()
        return PromptStateStore(directory, capacity_bytes, identity, llama.n_ctx())

    def __repr__(self) -> str:
        return f"LocalModel({Path(self.config['model_id']).name!r})"


def _forced_tool(specs: list[ToolSpec], tool_choice: ToolChoice | None) -> str | None:
    """The tool the reply must call, if one is forced (or the structured output tool is all there is)."""
    if tool_choice is not None and "tool" in tool_choice:
        return str(cast(dict[str, Any], tool_choice)["tool"]["name"])
    if tool_choice is not None and "any" in tool_choice and len(specs) == 1:
        return specs[0]["name"]
    if len(specs) == 1 and _STRUCTURED_OUTPUT_MARKER in specs[0].get("description", ""):
        return specs[0]["name"]
    return None


def _align_reuse(llama: Any, batch: int) -> None:
    """Make ``llama`` reuse an evaluated prefix only up to a multiple of ``batch`` tokens.

    llama.cpp evaluates a prompt in batches, and a token's state depends slightly on the batch it was evaluated in.
    A prompt continued from an arbitrary point (a saved state, the previous turn) is cut into other batches than the
    same prompt evaluated from the start, so a near tie under greedy decoding can go the other way, and the same
    conversation gets another reply depending on what was cached. Cutting the reused prefix back to a batch boundary
    makes every evaluation fall into the batches of a fresh one, at the price of up to ``batch - 1`` tokens.
    """
    generate = llama.generate

    def aligned(tokens: Any, *args: Any, **kwargs: Any) -> Any:
        reused = 0
        for have, want in zip(llama._input_ids, tokens, strict=False):
            if have != want:
                break
            reused += 1
        keep = reused - reused % batch
        if keep < llama.n_tokens:
            llama._ctx.kv_cache_seq_rm(-1, keep, -1)
            llama.n_tokens = keep
        return generate(tokens, *args, **kwargs)

    llama.generate = aligned


class _TextStop:
    """A llama-cpp-python stopping criterion over the text generated so far."""

    def __init__(self, llama: Any, until: Callable[[str], bool]) -> None:
        self._llama = llama
        self._until = until
        self._prompt_length: int | None = None

    def __call__(self, input_ids: Any, logits: Any) -> bool:
        if self._prompt_length is None:
            self._prompt_length = len(input_ids)
        generated = [int(t) for t in input_ids[self._prompt_length :]]
        if not generated:
            return False
        return self._until(self._llama.detokenize(generated).decode("utf-8", errors="replace"))


def _screened(until: Callable[[str], bool] | None, screen: CallScreen) -> Callable[[str], bool] | None:
    """``until`` that also stops the reply at a call the caller's checks refuse (see :mod:`wrapper.call_checks`)."""
    if not screen:
        return until
    return lambda text: screen.refusal(text) is not None or (until is not None and until(text))


def _without_dropped(text: str, screen: CallScreen, offered: list[str]) -> tuple[str, set[str]]:
    """The reply up to a call it must not make, and the tools of the calls cut off.

    Cut: a call the caller's checks refuse, with what follows it, and a call left unfinished at the token limit
    (a small model that repeats a key until it is cut off); such a reply is never taken for an answer. An
    unfinished call whose tool cannot be read drops every tool, so that the answer is asked for next.
    """
    refused = screen.refusal(text)  # whole calls too: a provider without stopping criteria wrote on past them
    if refused is not None:
        logger.info("tool=<%s>, problem=<%s> | call refused as it was written", refused.name, refused.problem)
        return text[: refused.start], {refused.name}
    opened = open_call(text)
    if opened is None:
        return text, set()
    start, name = opened
    logger.info("tool=<%s> | call cut off at the token limit: dropped", name)
    return text[:start], {name} if name is not None else set(offered)


def _calls_done(text: str, names: set[str], context: str, answered: frozenset[str] = frozenset()) -> bool:
    """Whether a reply should stop after its last complete call: a later call that would not run, or a repeat.

    The first call always runs; a later one whose values are not in the conversation is deferred (and what the
    model writes after it usually depends on it too), and a repeated one runs once: writing on is wasted time. A
    call the conversation has the result of (``answered``, from :func:`_answered_calls`) never runs again, even
    first: a small model that starts writing its earlier calls out again goes on through all of them.
    """
    if not text.rstrip().endswith("</tool_call>"):
        return False
    parsed = parse_reply(text, names)
    if parsed is None or not parsed.calls:
        return False
    *earlier, last = parsed.calls
    key = _call_key(last.name, last.input)
    if key in answered:
        return True
    if not earlier:
        return False
    return any(_call_key(c.name, c.input) == key for c in earlier) or bool(invented_values(last.input, context))


def _parallel_mode(setting: Any) -> Literal["off", "grounded", "all"]:
    if setting is True or setting == "all":
        return "all"
    if setting is False or setting == "off":
        return "off"
    if setting == "grounded":
        return "grounded"
    raise ModelConfigurationError(
        f"parallel_tool_calls must be true, false, 'off', 'grounded' or 'all', not {setting!r}"
    )


def _call_schema(specs: list[ToolSpec]) -> dict[str, Any]:
    """JSON Schema of one call of any of ``specs``: ``{"name": <tool>, "arguments": <its input>}``."""
    options = [
        {
            "type": "object",
            "properties": {"name": {"const": spec["name"]}, "arguments": _input_schema(spec)},
            "required": ["name", "arguments"],
        }
        for spec in specs
    ]
    return options[0] if len(options) == 1 else {"anyOf": options}


def _fill_in(spec: ToolSpec, schema: dict[str, Any]) -> str:
    """Ask for the input of ``spec`` (its fields in ``schema``) as one JSON object, field by field."""
    required = set(schema.get("required", []))
    fields = "\n".join(
        f"- {name} ({prop.get('type', 'value')}{', required' if name in required else ''})"
        + (f": {prop['description']}" if prop.get("description") else "")
        for name, prop in dict(schema.get("properties", {})).items()
    )
    description = re.sub(
        r"^IMPORTANT: This StructuredOutputTool.*?<description>(.*)</description>$",
        r"\1",
        spec.get("description", ""),
        flags=re.DOTALL,
    )
    return (
        f"Reply with one JSON object only: the input of `{spec['name']}` ({description.strip()}).\n"
        f"Its fields:\n{fields}\n"
        'Inside a JSON string write every double quote as \\" and every newline as \\n; in Python code inside a '
        "string, use single quotes for Python strings."
    )


def _whole_lines(text: str, longest: int) -> str:
    """``text`` cut to at most ``longest`` characters, at the end of a line when it is longer."""
    if len(text) <= longest:
        return text
    cut = text[:longest]
    return cut[: cut.rfind("\n") + 1] if "\n" in cut else cut


def _code_language(prop: dict[str, Any]) -> str | None:
    """The language of a string field declared as source code (``contentMediaType`` ``text/x-<language>``)."""
    media = str(prop.get("contentMediaType", ""))
    if prop.get("type") == "string" and media.startswith("text/x-") and media[7:].isidentifier():
        return media[7:]
    return None


def _without(schema: dict[str, Any], names: set[str]) -> dict[str, Any]:
    """``schema`` without the properties ``names``."""
    if not names:
        return schema
    properties = {k: v for k, v in dict(schema.get("properties", {})).items() if k not in names}
    required = [k for k in schema.get("required", []) if k not in names]
    return {**schema, "properties": properties, "required": required}


#: A line of pretty-printed JSON that holds one string value: ``  "key": "value",``.
_STRING_LINE = re.compile(r'^(\s*"[^"\\]+"\s*:\s*")(.*)("\s*,?\s*)$')


def _unescaped_quotes_escaped(text: str) -> str:
    """``text`` with the double quotes inside one-line string values escaped.

    A small model writes ``"description": "Return {"count": n}"`` in a JSON block; on a line that holds one string
    value, every quote between the value's first and last is meant as text.
    """

    def escaped(line: str) -> str:
        found = _STRING_LINE.match(line)
        if found is None:
            return line
        inner = re.sub(r'(?<!\\)"', r'\\"', found.group(2))
        return found.group(1) + inner + found.group(3)

    return "\n".join(escaped(line) for line in text.splitlines())


def _object_of(text: str, schema: dict[str, Any]) -> dict[str, Any] | None:
    """``text`` as a JSON object valid for ``schema`` (quotes inside string values mended), or ``None``."""
    try:
        value = json.loads(text, strict=False)
    except ValueError:
        try:
            value = json.loads(_unescaped_quotes_escaped(text), strict=False)
        except ValueError:
            return None
    if not isinstance(value, dict) or output_problem(schema, value) is not None:
        return None
    return value


def _json_grammar(schema: dict[str, Any]) -> Any:
    return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)


def _tool_turn_grammar(specs: list[ToolSpec], parallel: bool, *, answer: bool = True) -> Any:
    """Tool calls in the model's own ``<tool_call>`` format, each valid for its tool's schema, or an answer, or both.

    Only one call unless ``parallel``; with ``answer=False``, only calls.

    Text is one paragraph of at most 600 characters (a short plan before the calls, or the answer) without ``<``
    or backticks: a call can only be written in the tags, whole, never half-written as text or in a fence the
    parser would have to guess at, and a small model cannot wander into a numbered plan instead of calling tools.
    An answer ends a sentence (``.``, ``!`` or ``?``): a reply cannot stop at a preamble such as "the next steps
    are:" without the calls it announces.
    """
    rules = json_schema_to_gbnf(json.dumps(_call_schema(specs)))
    rules = re.sub(r"^root ::=", "call ::=", rules, flags=re.MULTILINE)
    more = '("\\n<tool_call>\\n" call "\\n</tool_call>")*' if parallel else ""
    grammar = (
        rules
        + ("\nroot ::= calls | text calls | answer\n" if answer else "\nroot ::= calls\n")
        + f'calls ::= "<tool_call>\\n" call "\\n</tool_call>" {more}\n'
        + 'text ::= [^<{`\\[ \\t\\n] [^<`\\n]{0,600} "\\n"?\n'
        + _ANSWER_RULE
    )
    return LlamaGrammar.from_string(grammar, verbose=False)


def _answer_grammar() -> Any:
    """A plain answer only (see :func:`_tool_turn_grammar`)."""
    return LlamaGrammar.from_string("root ::= answer\n" + _ANSWER_RULE, verbose=False)


def _input_schema(spec: ToolSpec) -> dict[str, Any]:
    schema = dict(cast(dict[str, Any], spec.get("inputSchema", {})).get("json") or {"type": "object"})
    schema.setdefault("type", "object")
    return schema


def _call_key(name: str, tool_input: Any) -> str:
    return name + "\x00" + json.dumps(tool_input, sort_keys=True, default=str)


def _called_tools(messages: Messages) -> set[str]:
    """The names of the tools the conversation called."""
    return {
        block["toolUse"]["name"] for message in messages for block in message.get("content", []) if "toolUse" in block
    }


def _answered_calls(messages: Messages) -> set[str]:
    """The calls of the conversation that have a result."""
    answered = {
        block["toolResult"]["toolUseId"]
        for message in messages
        for block in message.get("content", [])
        if "toolResult" in block
    }
    return {
        _call_key(block["toolUse"]["name"], block["toolUse"].get("input"))
        for message in messages
        for block in message.get("content", [])
        if "toolUse" in block and block["toolUse"]["toolUseId"] in answered
    }


def _fresh_calls(calls: tuple[ParsedCall, ...], answered: set[str]) -> list[ParsedCall]:
    """The calls not answered yet, each once (a small model loops on the same calls, even within one reply)."""
    seen = set(answered)
    fresh: list[ParsedCall] = []
    for call in calls:
        key = _call_key(call.name, call.input)
        if key not in seen:
            fresh.append(call)
            seen.add(key)
    return fresh


def _ends_with_tool_results(messages: Messages) -> bool:
    return bool(messages) and any("toolResult" in block for block in messages[-1].get("content", []))


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _metadata(input_tokens: int, output_tokens: int, latency_ms: int = 0) -> StreamEvent:
    return {
        "metadata": {
            "usage": {
                "inputTokens": input_tokens,
                "outputTokens": output_tokens,
                "totalTokens": input_tokens + output_tokens,
            },
            "metrics": {"latencyMs": latency_ms},
        }
    }


def _events(reply: _Reply) -> Iterator[StreamEvent]:
    yield {"messageStart": {"role": "assistant"}}
    if reply.text or not reply.calls:
        yield {"contentBlockStart": {"start": {}}}
        yield {"contentBlockDelta": {"delta": {"text": reply.text}}}
        yield {"contentBlockStop": {}}
    for call in reply.calls:
        tool_use_id = f"tooluse_{uuid.uuid4().hex[:16]}"
        yield {"contentBlockStart": {"start": {"toolUse": {"name": call.name, "toolUseId": tool_use_id}}}}
        yield {"contentBlockDelta": {"delta": {"toolUse": {"input": json.dumps(call.input)}}}}
        yield {"contentBlockStop": {}}
    yield {"messageStop": {"stopReason": "tool_use" if reply.calls else "end_turn"}}
    yield _metadata(reply.input_tokens, reply.output_tokens, reply.latency_ms)
