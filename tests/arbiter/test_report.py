"""The orchestration report as data, text and HTML (escaping, one bar per attempt), through the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from arbiter import LocalRuntime
from arbiter.cli import app
from arbiter.report import build_report, render_html, render_text
from tests.arbiter.report_scenario import HOSTILE, run_scenario
from wrapper import SandboxPool


def test_report_data_text_and_html(tmp_path: Path, pool: SandboxPool) -> None:
    home = tmp_path / "home"
    orchestration_id = run_scenario(home, pool)
    with LocalRuntime(home, start=False) as rt:
        view = rt.orchestration(orchestration_id)
    report = build_report(view.orchestration, view.tasks)

    assert report["status"] == "completed" and report["waves"] == 2
    assert report["attempts"] == sum(t.attempt for t in view.tasks) == 4  # flaky ran twice
    flaky = next(r for r in report["rows"] if r["agent"].startswith("flaky"))
    assert [a["state"] for a in flaky["attempts"]] == ["failed", "succeeded"] and flaky["retries"] == 1
    assert "first attempt fails" in flaky["attempts"][0]["error"]
    (fabrication,) = report["fabrications"]
    assert fabrication["agent"] == "word_counter@1" and fabrication["state"] == "succeeded"
    assert report["tokens"]["total"] == view.orchestration.usage.tokens >= 42
    assert report["trace_id"] is None or re.fullmatch(r"[0-9a-f]{32}", report["trace_id"])
    json.dumps(report)  # JSON-compatible as it is
    turns = report["planner_turns"]
    assert [(t["turn"], t["wave"]) for t in turns] == [(1, 1), (2, 2), (3, None)]  # two waves, then the answer
    wave_one_end = max(a["end"] for r in report["rows"] if r["wave"] == 1 for a in r["attempts"])
    assert turns[0]["start"] == report["created_at"] and turns[1]["start"] == wave_one_end
    assert turns[2]["end"] == report["updated_at"] and all(t["duration_ms"] >= 0 for t in turns)

    text = render_text(report)
    assert "flaky" in text and "fabrication" in text and "word_counter@1" in text and "answer: 3 words" in text

    page = render_html(report)
    assert HOSTILE not in page and "<script>window" not in page and "&lt;script&gt;" in page
    assert len(re.findall(r'<rect class="bar"', page)) == report["attempts"]
    assert re.search(r"(src|href)=\"(https?:)?//", page) is None, "the page must not load anything"


def test_cli_report_json_text_and_missing(tmp_path: Path, pool: SandboxPool) -> None:
    home = tmp_path / "home"
    orchestration_id = run_scenario(home, pool)
    runner = CliRunner()
    as_json = runner.invoke(app, ["report", orchestration_id, "--home", str(home), "--json"])
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["orchestration_id"] == orchestration_id
    text = runner.invoke(app, ["report", orchestration_id, "--home", str(home)])
    assert text.exit_code == 0 and f"orchestration {orchestration_id}: completed" in text.stdout
    missing = runner.invoke(app, ["report", "no-such-orchestration", "--home", str(home)])
    assert missing.exit_code == 2


def test_the_page_shows_bidi_controls_instead_of_obeying_them() -> None:
    from datetime import UTC, datetime

    from blackboard import Event, Orchestration, OrchestrationStatus

    trojan = "refund \u202eTXT.exe\u202c to \u2066admin\u2069 \u200f"
    now = datetime(2026, 1, 1, tzinfo=UTC)
    orchestration = Orchestration(
        event=Event.parse({"source": "acme", "detail-type": f"note {trojan}", "detail": {"memo": trojan}}),
        status=OrchestrationStatus.COMPLETED,
        output=trojan,
        created_at=now,
        updated_at=now,
    )
    page = render_html(build_report(orchestration, []))
    assert not re.search("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]", page)
    assert "refund &lt;U+202E&gt;TXT.exe&lt;U+202C&gt; to &lt;U+2066&gt;admin&lt;U+2069&gt; &lt;U+200F&gt;" in page
