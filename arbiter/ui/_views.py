"""What the dashboard's pages show, read from the backends: plain data for the templates (which escape every text).

The orchestration page draws :func:`arbiter.report.build_report`'s document (the same data as ``arbiter report``);
:func:`timeline` only lays it out: one lane for the planner's turns, then one lane per task, grouped by wave.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from arbiter._cli_reflection import stats_dict
from arbiter.decisions import Decision, decision_history
from arbiter.report import build_report, neutralise_bidi
from blackboard import AgentManifest, AgentState, Backends, OrchestrationStatus

__all__ = [
    "CODE_CSS",
    "AgentVersion",
    "agent_rows",
    "agent_version",
    "orchestration_rows",
    "orchestration_view",
    "pretty",
    "timeline",
]

_FORMATTER = HtmlFormatter(cssclass="code", linenos="table")
#: The syntax colours of the code view, served as a file (the CSP allows no inline style).
CODE_CSS = _FORMATTER.get_style_defs(".code")
_WIDTH, _LABEL, _ROW = 960, 240, 22


def pretty(value: Any) -> str:
    """A value as indented JSON (a string as itself), bidirectional controls made visible."""
    text = value if isinstance(value, str) else json.dumps(value, indent=2, default=str, ensure_ascii=False)
    return neutralise_bidi(text)


def orchestration_rows(
    backends: Backends, status: OrchestrationStatus | None, search: str, limit: int
) -> list[dict[str, Any]]:
    """The newest orchestrations (in ``status``; whose id, source or detail type contains ``search``)."""
    needle = search.strip().lower()
    rows = []
    for o in backends.blackboard.list_orchestrations(status, limit=limit):
        haystack = f"{o.id} {o.event.source} {o.event.detail_type}".lower()
        if needle and needle not in haystack:
            continue
        rows.append(
            {
                "id": o.id,
                "status": o.status.value,
                "wave": o.wave,
                "waves": o.usage.waves,
                "tasks": o.usage.tasks,
                "tokens": o.usage.tokens,
                "fabrications": o.usage.fabrications,
                "source": neutralise_bidi(o.event.source),
                "detail_type": neutralise_bidi(o.event.detail_type),
                "created_at": f"{o.created_at:%Y-%m-%d %H:%M:%S}",
            }
        )
    return rows


def orchestration_view(backends: Backends, orchestration_id: str) -> dict[str, Any]:
    """The report document of one orchestration, its notes and its timeline layout.

    Raises:
        OrchestrationNotFoundError: there is no such orchestration.
    """
    orchestration = backends.blackboard.get_orchestration(orchestration_id)
    tasks = backends.blackboard.list_tasks(orchestration_id)
    report = build_report(orchestration, tasks)
    notes = [
        {"key": n.key, "value": pretty(n.value), "author": n.author, "version": n.version}
        for n in backends.blackboard.notes(orchestration_id)
    ]
    return {
        "report": report,
        "finished": orchestration.finished,
        "notes": notes,
        "timeline": timeline(report),
        "event": pretty(report["event"]),
        "answer": None if report["output"] is None else pretty(report["output"]),
        "signature": (orchestration.version, tuple((t.task_id, t.state.value, t.attempt) for t in tasks), len(notes)),
    }


def timeline(report: dict[str, Any]) -> dict[str, Any]:
    """Lay the report out as bars: x and width in pixels for every planner turn and every task attempt."""
    times = [datetime.fromisoformat(report["created_at"])]
    spans = [*report["planner_turns"], *(a for row in report["rows"] for a in row["attempts"])]
    for span in spans:
        times += [datetime.fromisoformat(span["start"]), datetime.fromisoformat(span["end"])]
    origin = min(times)
    total_ms = max((max(times) - origin).total_seconds() * 1000, 1.0)
    scale = (_WIDTH - _LABEL - 20) / total_ms

    def bar(span: dict[str, Any]) -> dict[str, float]:
        start = (datetime.fromisoformat(span["start"]) - origin).total_seconds() * 1000
        return {"x": round(_LABEL + start * scale, 1), "width": round(max(span["duration_ms"] * scale, 3.0), 1)}

    lanes: list[dict[str, Any]] = [
        {
            "label": "planner",
            "wave": 0,
            "planner": True,
            "bars": [
                {**bar(t), "state": "planning", "turn": t["turn"], "summary": _turn_summary(t)}
                for t in report["planner_turns"]
            ],
        }
    ]
    for row in report["rows"]:
        mark = "↳ " if row["reaction"] else ""
        lanes.append(
            {
                "label": f"{mark}{row['agent']} · {row['task_id']}"[:60],
                "wave": row["wave"],
                "planner": False,
                "bars": [
                    {
                        **bar(a),
                        "state": a["state"],
                        "task_id": row["task_id"],
                        "attempt": a["attempt"],
                        "reactive": row["reaction"] is not None,
                        "summary": f"{row['task_id']} attempt {a['attempt']} · {row['agent']} · {a['state']} · "
                        f"{a['duration_ms']:.0f} ms · {a['tokens']} tokens"
                        + (f" · {a['error']}" if a["error"] else ""),
                    }
                    for a in row["attempts"]
                ],
            }
        )
    for index, lane in enumerate(lanes):
        lane["y"] = _ROW * (index + 1)
    height = _ROW * (len(lanes) + 1) + 10
    return {"width": _WIDTH, "height": height, "lanes": lanes, "total_ms": round(total_ms), "row": _ROW}


def _turn_summary(turn: dict[str, Any]) -> str:
    what = f"planned wave {turn['wave']}" if turn["wave"] is not None else "answered"
    return f"planner turn {turn['turn']} · {what} · {turn['duration_ms']:.0f} ms"


def agent_rows(backends: Backends, state: AgentState | None) -> list[dict[str, Any]]:
    """Every agent version (in ``state``) with its stats and the figures reflection derives from them."""
    return [
        {"manifest": m, "description": neutralise_bidi(m.description[:120]), "stats": stats_dict(m.stats)}
        for m in backends.registry.list_agents(state)
    ]


@dataclass(frozen=True)
class AgentVersion:
    """One agent version as its page shows it."""

    manifest: AgentManifest
    versions: list[AgentManifest]
    code: Markup
    stats: dict[str, Any]
    report: dict[str, Any] | None
    examples: list[dict[str, Any]]
    history: list[Decision]


def agent_version(backends: Backends, name: str, version: int) -> AgentVersion:
    """Read one version: its code (highlighted), stats, validation report, the examples it passed and its history.

    Raises:
        AgentNotFoundError: there is no such version.
    """
    manifest = backends.registry.get(name, version)
    source = backends.code_store.get(manifest.code.sha256).decode("utf-8", errors="replace")
    # Pygments escapes the source; its markup is the only HTML the page takes from stored text.
    code = Markup(highlight(neutralise_bidi(source), PythonLexer(), _FORMATTER))
    report = None
    if manifest.validation_report is not None:
        report = backends.code_store.get_json(manifest.validation_report)
    checks = report.get("checks", []) if isinstance(report, dict) else []
    examples = [c for c in checks if str(c.get("name", "")).startswith(("example[", "test[")) and c.get("passed")]
    history = [d for d in decision_history(backends, name) if d.version == version]
    return AgentVersion(
        manifest=manifest,
        versions=backends.registry.versions(name),
        code=code,
        stats=stats_dict(manifest.stats),
        report=report if isinstance(report, dict) else None,
        examples=examples,
        history=history,
    )
