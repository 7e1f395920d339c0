"""What the planning model is told: the system prompt, the first message, tool specs and tool results.

Kept short and explicit so that small local models follow it, and schema-first so that large ones do not guess.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from blackboard import AgentManifest, Event, Note, Task, TaskState
from blackboard.messages import MAX_EXAMPLES

__all__ = [
    "FABRICATE_TOOL",
    "SYSTEM_PROMPT",
    "agent_tool_spec",
    "event_message",
    "system_prompt",
    "tool_results_message",
]

SYSTEM_PROMPT = """You are the Arbiter: you coordinate a team of worker agents to handle an incoming event.
- Call workers as tools. All calls you make in one turn run at the same time; results come back together.
- Give every call exactly the inputs its schema asks for. Do not invent results.
- While steps remain, reply with tool calls only; write text only for the final answer.
- If a needed step has no worker, call `fabricate` with a clear description of the missing capability and the inputs
  it needs, and, when the event or earlier results show concrete values, `examples`: inputs taken from them with
  the output you expect; the new worker is available in your next turn.
- When the work is done, answer with a short final summary and call no tools."""


def system_prompt(instructions: str | None = None) -> str:
    """The Arbiter's system prompt, followed by the deployment's own instructions (a runbook) when there are any."""
    if not instructions or not instructions.strip():
        return SYSTEM_PROMPT
    return f"{SYSTEM_PROMPT}\n\nInstructions for this deployment:\n{instructions.strip()}"


FABRICATE_TOOL: dict[str, Any] = {
    "name": "fabricate",
    "description": (
        "Create a new worker agent when no available worker can do a needed step. Describe the capability in one or "
        "two sentences and list the inputs it needs. Give examples whose answer you know: the new worker must "
        "reproduce them. The new worker can be called in the next turn."
    ),
    "inputSchema": {
        "json": {
            "type": "object",
            "properties": {
                "capability": {
                    "type": "string",
                    "description": "A full sentence: what the new worker computes from its inputs and returns.",
                },
                "inputs": {
                    "type": "object",
                    "description": "The inputs it takes: input name -> description. You pass their values when you "
                    "call the new worker.",
                    "additionalProperties": {"type": "string"},
                },
                "examples": {
                    "type": "array",
                    "description": f"Up to {MAX_EXAMPLES} examples: an input (the same names as `inputs`, values from "
                    "the event or earlier results) and the output expected for it (for an object, the fields you "
                    "need).",
                    "maxItems": MAX_EXAMPLES,
                    "items": {
                        "type": "object",
                        "properties": {"input": {"type": "object"}, "expected": {}},
                        "required": ["input", "expected"],
                    },
                },
            },
            "required": ["capability"],
        }
    },
}

#: The largest tool result put into the conversation; bigger outputs are cut (the full one stays on the blackboard).
MAX_RESULT_CHARS = 16_000


def agent_tool_spec(manifest: AgentManifest) -> dict[str, Any]:
    """The Strands/Converse tool spec of an agent."""
    return {"name": manifest.name, "description": manifest.description, "inputSchema": {"json": manifest.input_schema}}


def event_message(event: Event) -> dict[str, Any]:
    """The first user message: the event, as JSON."""
    body = json.dumps(event.to_dict(), default=str)  # compact: indentation costs a small model's prompt time
    return {
        "role": "user",
        "content": [
            {"text": f"An event arrived:\n```json\n{body}\n```\nHandle it: call the tools for the first steps now."}
        ],
    }


def _ready_worker(task: Task) -> bool:
    """Whether the task is a ``fabricate`` call that produced a worker the planner can call now."""
    output = task.result.output if task.result is not None else None
    return (
        task.agent.name == FABRICATE_TOOL["name"]
        and isinstance(output, dict)
        and isinstance(output.get("agent"), str)
        and output.get("state") == "active"
    )


def tool_results_message(tasks: Sequence[Task], notes: Iterable[Note] = ()) -> dict[str, Any]:
    """The user message that answers a wave: one tool result per task (and the blackboard's notes).

    A reactive task answers no tool use of the model: its output reaches the model as the note it wrote, and a
    failure of one as a line of text.
    """
    content: list[dict[str, Any]] = []
    reactive_failures: list[str] = []
    for task in tasks:
        if task.reaction is not None:
            if task.state is not TaskState.SUCCEEDED:
                error = task.result.error if task.result is not None else None
                why = f"{error.type}: {error.message}" if error is not None else task.state.value
                reactive_failures.append(
                    f"`{task.agent.name}` (triggered by note {task.reaction.note_key!r}) {task.state.value}: {why}"
                )
            continue
        result = task.result
        if result is not None and task.state is TaskState.SUCCEEDED:
            output = result.output
            if result.output_ref is not None:
                output = {"stored": result.output_ref, "note": "the output was too large to show"}
            text = json.dumps(output, default=str)
            status = "success"
        else:
            error = result.error if result is not None else None
            kind = error.type if error is not None else task.state.value
            message = error.message if error is not None else ""
            attempts = len(task.attempts) + 1
            text = f"{task.state.value} after {attempts} attempt(s): {kind}: {message}".rstrip(": ")
            status = "error"
        if len(text) > MAX_RESULT_CHARS:
            text = text[:MAX_RESULT_CHARS] + " …(cut)"
        parts = [{"text": text}]
        if status == "success" and _ready_worker(task):
            # Said in words too: small models do not read "call it next turn" out of the JSON.
            agent = task.result.output["agent"]  # type: ignore[union-attr]
            parts.append({"text": f"The new worker `{agent}` is ready. Call `{agent}` now with its inputs."})
        content.append({"toolResult": {"toolUseId": task.task_id, "status": status, "content": parts}})
    if reactive_failures:
        content.append({"text": ("Reactive tasks that failed: " + "; ".join(reactive_failures))[:MAX_RESULT_CHARS]})
    shown = {note.key: note.value for note in notes}
    if shown:
        content.append({"text": "Blackboard notes: " + json.dumps(shown, default=str)[:MAX_RESULT_CHARS]})
    return {"role": "user", "content": content}


#: How the coordinator's reminder about an unused fabricated worker starts (it is given once per orchestration).
REMINDER_PREFIX = "Reminder:"


def unused_reminder(names: Sequence[str]) -> dict[str, Any]:
    """The user message that reminds the model of workers written for this event that it never called."""
    listed = ", ".join(f"`{name}`" for name in names)
    text = (
        f"{REMINDER_PREFIX} {listed} {'was' if len(names) == 1 else 'were'} written for this event because you asked "
        "for it, but you have not called it. Call it now with the inputs it needs, then answer. If it is not needed, "
        "give your answer again."
    )
    return {"role": "user", "content": [{"text": text}]}
