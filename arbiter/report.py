"""The report of one orchestration: what happened, when, at what cost — as data, text, or a self-contained page.

:func:`build_report` reads the records (orchestration, tasks with their attempt history) into a JSON-compatible
document, with the planner's turns as spans (:func:`planner_turns`, which ``arbiter ui`` draws);
:func:`render_text` and :func:`render_html` present it. The HTML page has no external resource (inline
CSS, SVG and one small script, allowed by its hash in the page's Content-Security-Policy): a Gantt timeline with one
bar per task attempt (``data-task-id``, ``data-attempt``), grouped by wave and colored by state, then the tasks,
fabrications, tokens, the triggering event and the final answer. Reactive tasks (added because a note fired an
agent's trigger) are drawn as such: a dashed bar marked ``data-reactive``, a ``↳`` before the label, and the note
that fired them. Every text is escaped, and its bidirectional controls are shown as ``<U+202E>``: event and output
text is untrusted.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import datetime, timedelta
from html import escape as _html_escape
from typing import Any

from blackboard import Orchestration, Task, TaskResult

__all__ = ["build_report", "neutralise_bidi", "planner_turns", "render_html", "render_text"]

_PREVIEW = 400
_STATE_COLORS = {
    "succeeded": "#2e9d5b",
    "failed": "#d64545",
    "timed_out": "#e8912d",
    "cancelled": "#8c8c8c",
    "running": "#3b7dd8",
    "dispatched": "#9fbce6",
    "pending": "#c9d3df",
}
_FABRICATE = "fabricate"
#: Bidirectional controls (embeddings, overrides, isolates, marks): in untrusted text they reorder what a reader sees
#: ("Trojan Source"), so the page shows each as a visible ``<U+202E>`` instead.
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def neutralise_bidi(text: str) -> str:
    """``text`` with every bidirectional control written as a visible ``<U+XXXX>``."""
    return _BIDI.sub(lambda found: f"<U+{ord(found.group()):04X}>", text)


def escape(text: str) -> str:
    """``text`` for HTML: markup escaped, bidirectional controls made visible."""
    return _html_escape(neutralise_bidi(text))


def _preview(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= _PREVIEW else text[:_PREVIEW] + "…"


def _attempt(task: Task, number: int, result: TaskResult | None) -> dict[str, Any]:
    if result is None:  # the attempt in flight
        start, end, state = task.updated_at, task.updated_at, task.state.value
        return {
            "task_id": task.task_id,
            "attempt": number,
            "wave": task.wave,
            "agent": str(task.agent),
            "state": state,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "duration_ms": 0.0,
            "tokens": 0,
            "output": "",
            "error": "",
        }
    end = result.finished_at
    start = end - timedelta(milliseconds=result.duration_ms)
    error = f"{result.error.type}: {result.error.message}" if result.error is not None else ""
    return {
        "task_id": task.task_id,
        "attempt": number,
        "wave": task.wave,
        "agent": str(task.agent),
        "state": result.status.value,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "duration_ms": round(result.duration_ms, 3),
        "tokens": result.usage.total_tokens,
        "output": _preview(result.output if result.output_ref is None else f"(stored: {result.output_ref})"),
        "error": _preview(error),
    }


def _attempts(task: Task) -> list[dict[str, Any]]:
    """One entry per attempt, 1 to ``task.attempt``: earlier ones from the history, the last from the result."""
    known = {r.attempt: r for r in task.attempts}
    if task.result is not None:
        known[task.result.attempt] = task.result
    return [_attempt(task, n, known.get(n)) for n in range(1, task.attempt + 1)]


def _reaction(task: Task) -> dict[str, Any] | None:
    reaction = task.reaction
    if reaction is None:
        return None
    return {
        "note_key": reaction.note_key,
        "note_version": reaction.note_version,
        "depth": reaction.depth,
        "cause_task_id": reaction.cause_task_id,
    }


def _fired_by(row: dict[str, Any]) -> str:
    """How a row's task came to be: ``reacts to note 'k' v1 (depth 1, from t1)``, or ``""`` for a planned one."""
    reaction = row["reaction"]
    if reaction is None:
        return ""
    return (
        f"reacts to note {reaction['note_key']!r} v{reaction['note_version']} "
        f"(depth {reaction['depth']}, from {reaction['cause_task_id']})"
    )


def _turn(number: int, wave: int | None, start: datetime, end: datetime) -> dict[str, Any]:
    end = max(end, start)
    return {
        "turn": number,
        "wave": wave,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "duration_ms": round((end - start).total_seconds() * 1000, 3),
    }


def planner_turns(orchestration: Orchestration, tasks: list[Task]) -> list[dict[str, Any]]:
    """The planner's model calls as spans: turn n ran from the end of wave n-1 (or the start) until wave n was stored.

    The last turn, the one that answered without tool calls, ends when the orchestration did. A wave whose start
    cannot be told (the previous wave has no finished attempt yet) has no span.
    """
    planned: dict[int, list[Task]] = {}
    for task in tasks:
        if task.reaction is None:
            planned.setdefault(task.wave, []).append(task)
    ends: dict[int, datetime] = {}
    for task in tasks:
        finished = [r.finished_at for r in [*task.attempts, *([task.result] if task.result else [])]]
        if finished:
            ends[task.wave] = max([*finished, ends.get(task.wave, finished[0])])
    turns: list[dict[str, Any]] = []
    for wave in sorted(planned):
        start = orchestration.created_at if wave == 1 else ends.get(wave - 1)
        if start is not None:
            turns.append(_turn(len(turns) + 1, wave, start, min(t.created_at for t in planned[wave])))
    last = max(planned, default=0)
    start = orchestration.created_at if last == 0 else ends.get(last)
    if orchestration.finished and start is not None and orchestration.output is not None:
        turns.append(_turn(len(turns) + 1, None, start, orchestration.updated_at))
    return turns


def build_report(orchestration: Orchestration, tasks: list[Task]) -> dict[str, Any]:
    """The report of ``orchestration`` as a JSON-compatible document."""
    ordered = sorted(tasks, key=lambda t: (t.wave, t.created_at, t.task_id))
    rows = []
    for task in ordered:
        attempts = _attempts(task)
        rows.append(
            {
                "task_id": task.task_id,
                "wave": task.wave,
                "agent": str(task.agent),
                "state": task.state.value,
                "attempts": attempts,
                "retries": task.attempt - 1,
                "tokens": sum(a["tokens"] for a in attempts),
                "duration_ms": round(sum(a["duration_ms"] for a in attempts), 3),
                "input": _preview(task.input),
                "reaction": _reaction(task),
            }
        )
    fabrications = []
    for task in ordered:
        if task.agent.name != _FABRICATE:
            continue
        output = task.result.output if task.result is not None and isinstance(task.result.output, dict) else {}
        produced = f"{output['agent']}@{output.get('version')}" if output.get("agent") else None
        fabrications.append(
            {
                "task_id": task.task_id,
                "capability": _preview(task.input.get("capability", "")),
                "state": task.state.value,
                "agent": produced,
                "reused": bool(output.get("reused")),
            }
        )
    event = orchestration.event
    return {
        "orchestration_id": orchestration.id,
        "status": orchestration.status.value,
        "created_at": orchestration.created_at.isoformat(),
        "updated_at": orchestration.updated_at.isoformat(),
        "waves": orchestration.usage.waves,
        "tasks": len(rows),
        "reactive_tasks": sum(1 for r in rows if r["reaction"] is not None),
        "attempts": sum(len(r["attempts"]) for r in rows),
        "tokens": {"total": orchestration.usage.tokens, "tasks": sum(r["tokens"] for r in rows)},
        "fabrications": fabrications,
        "event": {"id": event.id, "source": event.source, "detail_type": event.detail_type, "detail": event.detail},
        "triggered_by": orchestration.triggered_by,
        "output": orchestration.output,
        "error": orchestration.error,
        "trace_id": orchestration.traceparent.split("-")[1] if orchestration.traceparent else None,
        "rows": rows,
        "planner_turns": planner_turns(orchestration, tasks),
    }


def render_text(report: dict[str, Any]) -> str:
    """A plain-text summary: status, counts, one line per attempt, then the answer or the error."""
    lines = [
        f"orchestration {report['orchestration_id']}: {report['status']}",
        f"waves {report['waves']}, tasks {report['tasks']}, attempts {report['attempts']}, "
        f"tokens {report['tokens']['total']}",
    ]
    if report.get("triggered_by"):
        lines.append(f"standing: bus triggers fired by event {report['triggered_by']} (no planner)")
    for row in report["rows"]:
        for attempt in row["attempts"]:
            lines.append(
                f"  wave {row['wave']}  {row['task_id']}#{attempt['attempt']}  {row['agent']}  {attempt['state']}"
                f"  {attempt['duration_ms']:.0f} ms  {attempt['tokens']} tokens"
                + (f"  {attempt['error'].splitlines()[0]}" if attempt["error"] else "")
                + (f"  {_fired_by(row)}" if row["reaction"] else "")
            )
    for fabrication in report["fabrications"]:
        made = fabrication["agent"] or "nothing"
        lines.append(f"  fabrication {fabrication['task_id']}: {fabrication['state']} -> {made}")
    if report["error"]:
        lines.append(f"error: {report['error']}")
    if report["output"] is not None:
        lines.append(f"answer: {_preview(report['output'])}")
    return "\n".join(lines)


# ---------------------------------------------------------------- HTML

_SCRIPT = """
document.querySelectorAll('.bar').forEach(function (bar) {
  bar.addEventListener('click', function () {
    var panel = document.getElementById('detail');
    panel.textContent = bar.getAttribute('data-summary');
  });
});
"""

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2733;background:#fafbfc}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.status{display:inline-block;padding:2px 8px;border-radius:10px;color:#fff;font-weight:600}
.meta{color:#55616e}.meta span{margin-right:16px}
table{border-collapse:collapse;width:100%;background:#fff}
td,th{border-bottom:1px solid #e3e7ec;padding:4px 8px;text-align:left;vertical-align:top}
pre{white-space:pre-wrap;word-break:break-word;background:#fff;border:1px solid #e3e7ec;padding:8px;margin:0}
.gantt{background:#fff;border:1px solid #e3e7ec}.bar{cursor:pointer}.wave{fill:#f1f4f8}
.legend span{display:inline-block;margin-right:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
#detail{min-height:1.5em;color:#1d2733;margin-top:6px}
"""

_ROW = 22
_LABEL = 220
_WIDTH = 900


def _gantt(report: dict[str, Any]) -> str:
    rows = report["rows"]
    times = [datetime.fromisoformat(report["created_at"])]
    for row in rows:
        for attempt in row["attempts"]:
            times += [datetime.fromisoformat(attempt["start"]), datetime.fromisoformat(attempt["end"])]
    origin, last = min(times), max(times)
    span_ms = max((last - origin).total_seconds() * 1000, 1.0)
    scale = (_WIDTH - _LABEL - 20) / span_ms
    height = _ROW * (len(rows) + 1) + 10
    parts = [
        f'<svg class="gantt" width="{_WIDTH}" height="{height}" viewBox="0 0 {_WIDTH} {height}" '
        'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="timeline of waves and tasks">'
    ]
    y = _ROW
    for wave in sorted({row["wave"] for row in rows}):
        members = [row for row in rows if row["wave"] == wave]
        band = len(members) * _ROW
        parts.append(f'<rect class="wave" x="0" y="{y - 4}" width="{_WIDTH}" height="{band}" data-wave="{wave}"/>')
        parts.append(f'<text x="4" y="{y + 10}" font-size="11" fill="#55616e">wave {wave}</text>')
        for row in members:
            mark = "↳ " if row["reaction"] else ""
            label = escape(f"{mark}{row['agent']} · {row['task_id']}")[:80]
            parts.append(f'<text x="56" y="{y + 10}" font-size="12">{label}</text>')
            for attempt in row["attempts"]:
                start = datetime.fromisoformat(attempt["start"])
                x = _LABEL + (start - origin).total_seconds() * 1000 * scale
                width = max(attempt["duration_ms"] * scale, 3.0)
                color = _STATE_COLORS.get(attempt["state"], "#999")
                summary = (
                    f"{row['task_id']} attempt {attempt['attempt']} · {row['agent']} · {attempt['state']} · "
                    f"{attempt['duration_ms']:.0f} ms · {attempt['tokens']} tokens"
                    + (f" · {attempt['error']}" if attempt["error"] else "")
                    + (f" · {_fired_by(row)}" if row["reaction"] else "")
                )
                reactive = ' data-reactive="true" stroke="#1d2733" stroke-dasharray="3 2"' if row["reaction"] else ""
                parts.append(
                    f'<rect class="bar" x="{x:.1f}" y="{y}" width="{width:.1f}" height="{_ROW - 8}" rx="2" '
                    f'fill="{color}"{reactive} data-task-id="{escape(row["task_id"])}" '
                    f'data-attempt="{attempt["attempt"]}" '
                    f'data-state="{escape(attempt["state"])}" data-summary="{escape(summary)}">'
                    f"<title>{escape(summary)}</title></rect>"
                )
            y += _ROW
    parts.append(
        f'<text x="{_LABEL}" y="{height - 2}" font-size="11" fill="#55616e">0 ms</text>'
        f'<text x="{_WIDTH - 80}" y="{height - 2}" font-size="11" fill="#55616e">{span_ms:.0f} ms</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: dict[str, Any]) -> str:
    """A self-contained HTML page (no external resource) of ``report``."""
    script_hash = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    csp = f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'"
    status = report["status"]
    task_rows = [
        [
            str(row["wave"]),
            row["task_id"],
            row["agent"],
            row["state"],
            str(row["retries"]),
            f"{row['duration_ms']:.0f} ms",
            str(row["tokens"]),
            _fired_by(row) or "planned",
            row["input"],
            next((a["output"] or a["error"] for a in reversed(row["attempts"]) if a["output"] or a["error"]), ""),
        ]
        for row in report["rows"]
    ]
    fabrication_rows = [
        [f["task_id"], f["capability"], f["state"], f["agent"] or "—", "reused" if f["reused"] else "new"]
        for f in report["fabrications"]
    ]
    legend = "".join(
        f'<span><i style="background:{color}"></i>{escape(state)}</span>' for state, color in _STATE_COLORS.items()
    )
    answer = report["output"]
    answer_text = answer if isinstance(answer, str) else json.dumps(answer, indent=2, default=str, ensure_ascii=False)
    sections = [
        f"<h1>Orchestration {escape(report['orchestration_id'])}</h1>",
        f'<p><span class="status" style="background:{_STATE_COLORS.get(status, "#3b7dd8")}">'
        f"{escape(status)}</span></p>",
        '<p class="meta">'
        f"<span>waves {report['waves']}</span><span>tasks {report['tasks']}</span>"
        f"<span>reactive {report['reactive_tasks']}</span>"
        + (f"<span>standing: event {escape(report['triggered_by'])}</span>" if report.get("triggered_by") else "")
        + f"<span>attempts {report['attempts']}</span><span>tokens {report['tokens']['total']}"
        f" (tasks {report['tokens']['tasks']})</span><span>fabrications {len(report['fabrications'])}</span>"
        + (f"<span>trace {escape(report['trace_id'])}</span>" if report["trace_id"] else "")
        + "</p>",
        "<h2>Timeline</h2>",
        f'<div class="legend">{legend}</div>',
        _gantt(report),
        '<div id="detail">Click a bar for its details.</div>',
    ]
    if report["error"]:
        sections += ["<h2>Error</h2>", f'<pre id="error">{escape(report["error"])}</pre>']
    if answer is not None:
        sections += ["<h2>Answer</h2>", f'<pre id="answer">{escape(answer_text)}</pre>']
    sections += [
        "<h2>Tasks</h2>",
        _table(
            ["wave", "task", "agent", "state", "retries", "time", "tokens", "how", "input", "output / error"], task_rows
        ),
    ]
    if fabrication_rows:
        sections += [
            "<h2>Fabrications</h2>",
            _table(["task", "capability", "state", "agent", "how"], fabrication_rows),
        ]
    event = json.dumps(report["event"], indent=2, default=str, ensure_ascii=False)
    sections += ["<h2>Event</h2>", f'<pre id="event">{escape(event)}</pre>']
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        f"<title>Arbiter · {escape(report['orchestration_id'])}</title><style>{_CSS}</style></head><body>"
        + "".join(sections)
        + f"<script>{_SCRIPT}</script></body></html>\n"
    )
