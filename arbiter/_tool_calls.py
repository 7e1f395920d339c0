"""Turning a model's tool calls into tasks: safe unique ids, schema checks, and the messages sent for them."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from arbiter.planner import ToolCall
from arbiter.prompts import FABRICATE_TOOL, REMINDER_PREFIX
from blackboard import AgentManifest, Orchestration, Task, TaskError, TaskMessage
from blackboard.messages import NoteSnapshot
from blackboard.records import TASK_ID_PATTERN
from fabricator.reuse import REUSE_THRESHOLD
from wrapper.grounding import context_text, invented_values, string_values
from wrapper.matching import lexical_similarity
from wrapper.schemas import input_problem

__all__ = [
    "copied_phrase",
    "fabricated_names",
    "fabrication_refusal",
    "observed_examples",
    "query_text",
    "schema_problem",
    "task_message",
    "unique_ids",
    "waiting_for_results",
    "with_ids",
]

#: How much of an orchestration the matcher reads to choose agents.
MAX_QUERY_CHARS = 2000

_TASK_ID = re.compile(TASK_ID_PATTERN)


def task_message(task: Task, traceparent: str | None = None, notes: list[NoteSnapshot] | None = None) -> TaskMessage:
    return TaskMessage(
        notes=notes,
        orchestration_id=task.orchestration_id,
        task_id=task.task_id,
        attempt=task.attempt,
        agent=task.agent,
        input=task.input,
        deadline=task.deadline,
        traceparent=traceparent,
        token=task.token,
    )


def waiting_for_results(orchestration: Orchestration) -> bool:
    """Whether the conversation ends with the model's tool calls (its results are not appended yet)."""
    if orchestration.wave == 0 or not orchestration.conversation:
        return False
    last = orchestration.conversation[-1]
    return last.get("role") == "assistant" and any("toolUse" in block for block in last.get("content", []))


def unique_ids(orchestration: Orchestration, calls: Sequence[ToolCall]) -> list[ToolCall]:
    """Tool-use ids become task ids: replace any that is not a safe key or is used already in this orchestration.

    The ids in use are those of the tool uses in the conversation (every task was one), so no task is read.
    """
    taken = {
        block["toolUse"]["toolUseId"]
        for message in orchestration.conversation
        if message.get("role") == "assistant"
        for block in message.get("content", [])
        if "toolUse" in block
    }
    unique: list[ToolCall] = []
    for index, call in enumerate(calls):
        task_id = call.tool_use_id
        if not _TASK_ID.match(task_id) or task_id in taken:
            task_id = f"w{orchestration.wave + 1}_call{index}"
            suffix = 0
            while task_id in taken:
                suffix += 1
                task_id = f"w{orchestration.wave + 1}_call{index}_{suffix}"
        taken.add(task_id)
        unique.append(ToolCall(task_id, call.name, call.input, call.input_error))
    return unique


def with_ids(content: list[dict[str, Any]], renamed: Sequence[ToolCall]) -> list[Any]:
    """The assistant content with each tool use carrying its task id (the tool results must answer those ids)."""
    ids = iter([c.tool_use_id for c in renamed])
    out: list[Any] = []
    for block in content:
        if "toolUse" in block:
            out.append({"toolUse": {**block["toolUse"], "toolUseId": next(ids)}})
        else:
            out.append(block)
    return out


def schema_problem(schema: dict[str, Any], data: dict[str, Any]) -> TaskError | None:
    problem = input_problem(schema, data)
    return None if problem is None else TaskError(type="InvalidToolInput", message=problem, retryable=False)


def query_text(orchestration: Orchestration) -> str:
    """What the matcher matches agents against: the event, then the latest results and notes."""
    event = orchestration.event
    parts = [f"{event.detail_type} from {event.source}: {json.dumps(event.detail, default=str)}"]
    if orchestration.wave and orchestration.conversation:
        for block in orchestration.conversation[-1].get("content", []):
            if "text" in block:
                parts.append(str(block["text"]))
            for item in block.get("toolResult", {}).get("content", []):
                parts.append(str(item.get("text", "")))
    return " ".join(parts)[-MAX_QUERY_CHARS:]


def _answered(orchestration: Orchestration) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Each tool call of the conversation that has its result, with that result (``toolUse``, ``toolResult``)."""
    uses = {
        block["toolUse"]["toolUseId"]: block["toolUse"]
        for message in orchestration.conversation
        if message.get("role") == "assistant"
        for block in message.get("content", [])
        if "toolUse" in block
    }
    return [
        (uses[result["toolUseId"]], result)
        for message in orchestration.conversation
        if message.get("role") == "user"
        for block in message.get("content", [])
        if (result := block.get("toolResult", {})).get("toolUseId") in uses
    ]


def fabricated_names(orchestration: Orchestration) -> list[str]:
    """The agents ``fabricate`` calls of this orchestration produced (read from their tool results)."""
    names = []
    for use, result in _answered(orchestration):
        if use.get("name") == FABRICATE_TOOL["name"] and result.get("status") == "success":
            for item in result.get("content", []):
                try:
                    name = json.loads(item.get("text", "")).get("agent")
                except (ValueError, AttributeError):
                    continue
                if isinstance(name, str):
                    names.append(name)
    return names


def unused_fabrications(orchestration: Orchestration) -> list[str]:
    """Agents fabricated for this orchestration that no tool call used yet, unless the model was reminded of them.

    A model that asks for a worker and then answers without calling it has usually skipped a step (small models do);
    the coordinator reminds it once (:func:`arbiter.prompts.unused_reminder`), and never twice.
    """
    called: set[str] = set()
    for message in orchestration.conversation:
        if message.get("role") == "user" and any(
            str(block.get("text", "")).startswith(REMINDER_PREFIX) for block in message.get("content", [])
        ):
            return []
        if message.get("role") == "assistant":
            called.update(b["toolUse"]["name"] for b in message.get("content", []) if "toolUse" in b)
    return [name for name in dict.fromkeys(fabricated_names(orchestration)) if name not in called]


def _capability_key(text: object) -> str:
    """The same key for the same capability however it is cased, spaced or quoted."""
    unquoted = re.sub(r"[\"'`\\]", "", str(text))
    return " ".join(unquoted.lower().split()).rstrip(" .")


def _fabrication_outcomes(orchestration: Orchestration) -> tuple[set[str], dict[str, str]]:
    """The capabilities whose ``fabricate`` call in this orchestration failed, and those that gave a worker (its name).

    Read from the conversation: the calls and their results.
    """
    failed: set[str] = set()
    made: dict[str, str] = {}
    for use, result in _answered(orchestration):
        if use.get("name") != FABRICATE_TOOL["name"]:
            continue
        capability = _capability_key(use.get("input", {}).get("capability", ""))
        texts = [str(item.get("text", "")) for item in result.get("content", [])]
        if result.get("status") == "error":
            if any("FabricationFailed:" in text for text in texts):
                failed.add(capability)
            continue
        for text in texts:
            try:
                output = json.loads(text)
            except ValueError:
                continue
            if isinstance(output, dict) and isinstance(output.get("agent"), str):
                made[capability] = output["agent"]
    return failed, made


def fabrication_refusal(
    orchestration: Orchestration, call_input: Mapping[str, Any], agents: Mapping[str, AgentManifest] | None = None
) -> str | None:
    """Why a ``fabricate`` call is refused before it costs a fabrication, or ``None``.

    Refused: a capability that is the tool's own description (small models copy it), a capability whose
    fabrication already failed in this orchestration (the same request would fail the same way and spend minutes),
    one that already gave a worker in this orchestration or that a worker of ``agents`` this orchestration called
    with success does (a small model that has done every step of its runbook asks for the first one's worker
    again), and examples whose input holds a value seen neither in the event nor in earlier results.

    ``call_input`` may hold only the call's first fields (the planner's model checks the call as it writes it,
    see :mod:`wrapper.call_checks`): each rule judges only the fields it needs, when they are there.
    """
    if "capability" in call_input:
        refused = _capability_refusal(orchestration, str(call_input["capability"]), agents or {})
        if refused is not None:
            return refused
    return _invented_example_input(orchestration, call_input.get("examples"))


def _capability_refusal(orchestration: Orchestration, text: str, agents: Mapping[str, AgentManifest]) -> str | None:
    capability = _capability_key(text)
    if capability == _capability_key(FABRICATE_TOOL["description"]):
        return "`capability` repeats the description of the fabricate tool: describe the missing step instead"
    failed, made = _fabrication_outcomes(orchestration)
    if capability in made:
        return (
            f"the worker `{made[capability]}` was made for this capability earlier for this event: call it instead "
            "if you still need it, or answer"
        )
    if capability in failed:
        return (
            "a worker for this capability could not be written earlier for this event; do not ask again: "
            "go on with the workers you have, then answer"
        )
    used = [agents[name] for name in sorted(_succeeded_tools(orchestration)) if name in agents]
    scored = [(lexical_similarity(text, agent.description), agent.name) for agent in used]
    score, name = max(scored, default=(0.0, ""))
    if score >= REUSE_THRESHOLD:
        return (
            f"the worker `{name}` does this and was called for this event with success: use its result (or call it "
            "again with other inputs), then go on or answer"
        )
    return None


def _succeeded_tools(orchestration: Orchestration) -> set[str]:
    """The tools whose calls in this orchestration have a successful result."""
    return {str(use.get("name")) for use, result in _answered(orchestration) if result.get("status") == "success"}


#: A string of fewer words is a value an instruction may name (``high``, ``checkout-api``), not a description.
_PHRASE_WORDS = 3


def copied_phrase(orchestration: Orchestration, instructions: str, call_input: dict[str, Any]) -> str | None:
    """Why a worker call is refused: an input holds a phrase of the planner's instructions instead of a value.

    A small model told to pass "this alarm's reason text" passes those words. A string of three words or more
    that occurs in the instructions, but neither in the event nor in any result, and that the instructions do not
    quote whole (``"..."`` or a code span: a value they dictate), is such a copy; the call is sent back naming the
    input, before a worker runs on it.
    """
    phrases = [(name, leaf) for name, value in call_input.items() for leaf in string_values(value)]
    phrases = [(name, leaf) for name, leaf in phrases if len(leaf.split()) >= _PHRASE_WORDS]
    if not phrases:
        return None  # most calls: nothing to read the conversation for
    told = context_text([], instructions, [])
    dictated = {" ".join(a.casefold().split()) for pair in _QUOTED.findall(instructions) for a in pair if a}
    copied = [(n, leaf) for n, leaf in phrases if " ".join(leaf.casefold().split()) not in dictated]
    copied = [(n, leaf) for n, leaf in copied if not invented_values(leaf, told)]
    if copied:
        observed = context_text([m for m in orchestration.conversation if m.get("role") == "user"], None, [])
        for name, leaf in copied:
            if invented_values(leaf, observed):
                return (
                    f"`{name}`: {json.dumps(leaf)[:80]} is a phrase of your instructions, not a value: pass the "
                    "value itself, copied from the event or an earlier result"
                )
    return None


_QUOTED = re.compile(r'"([^"\n]+)"|`([^`\n]+)`')


def _invented_example_input(orchestration: Orchestration, examples: Any) -> str | None:
    """Why an example's input is not evidence: a value that occurs neither in the event nor in earlier results.

    A small model copies an input's *description* from its instructions (``"the state reason text"``) where the
    value belongs; a worker checked against that example is checked against nothing, and one that refuses it is
    refused for it. Such an example is sent back, naming the field, before it costs a fabrication.
    """
    if not isinstance(examples, list):
        return None
    context = context_text(orchestration.conversation, None, [])
    for index, example in enumerate(examples):
        inputs = example.get("input") if isinstance(example, dict) else None
        if not isinstance(inputs, dict):
            continue  # the schema check reports it
        for name, value in inputs.items():
            invented = invented_values(value, context)
            if invented:
                shown = json.dumps(invented[0])[:80]
                return (
                    f"example[{index}].input.{name}: {shown} occurs neither in the event nor in earlier results; "
                    "an example's input must hold values copied from them (the value itself, not its description)"
                )
    return None


def observed_examples(orchestration: Orchestration, examples: Sequence[Any]) -> tuple[list[Any], list[str]]:
    """The planner's acceptance examples, less the expected values it worked out instead of reading them.

    An example is evidence where its values come from the event or earlier results; a value the planner computed
    itself is a guess (a small model writes ``66 - 25`` as ``15``), and a worker that computes it right would be
    refused for it. So an expected field (or a whole non-object expected value) with a value that occurs neither
    in the conversation nor in the example's input is left out, and an example with nothing left is dropped.

    Returns:
        The examples to check, and a line for each left-out part (``example[0].expected.excess``).
    """
    context = context_text(orchestration.conversation, None, [])
    kept: list[Any] = []
    removed: list[str] = []
    for index, example in enumerate(examples):
        if not isinstance(example, dict):
            kept.append(example)  # the schema check reports it
            continue
        seen = f"{context}\n{context_text([{'content': [{'text': json.dumps(example.get('input'))}]}], None, [])}"
        expected = example.get("expected")
        if isinstance(expected, dict):
            fields = {k: v for k, v in expected.items() if not invented_values(v, seen)}
            removed += [f"example[{index}].expected.{k}" for k in expected if k not in fields]
            if fields:
                kept.append({**example, "expected": fields})
            elif expected:
                removed.append(f"example[{index}]")
        elif invented_values(expected, seen):
            removed.append(f"example[{index}]")
        else:
            kept.append(example)
    return kept, removed
