"""The HTML report in a real browser (headless Chromium over the DevTools protocol)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from arbiter import LocalRuntime
from arbiter.cli import app
from tests.arbiter.cdp import Browser
from tests.arbiter.report_scenario import run_scenario
from wrapper import SandboxPool

pytestmark = pytest.mark.browser


def test_report_renders_one_bar_per_attempt_without_errors(tmp_path: Path, pool: SandboxPool) -> None:
    home = tmp_path / "home"
    orchestration_id = run_scenario(home, pool)
    with LocalRuntime(home, start=False) as rt:
        tasks = rt.orchestration(orchestration_id).tasks
    expected = sorted((t.task_id, n) for t in tasks for n in range(1, t.attempt + 1))
    assert any(t.attempt > 1 for t in tasks), "the scenario should retry a task"
    page = tmp_path / "report.html"
    out = CliRunner().invoke(app, ["report", orchestration_id, "--html", str(page), "--home", str(home)])
    assert out.exit_code == 0, out.output

    browser = Browser()
    try:
        browser.open(page.as_uri())
        bars = browser.evaluate(
            "Array.from(document.querySelectorAll('rect.bar'))"
            ".map(b => [b.getAttribute('data-task-id'), Number(b.getAttribute('data-attempt'))])"
        )
        size = browser.evaluate("[document.querySelector('svg.gantt').getBoundingClientRect().width, document.title]")
        pwned = browser.evaluate("typeof window.__pwned")
        event_text = browser.evaluate("document.getElementById('event').textContent")
        answer = browser.evaluate("document.getElementById('answer').textContent")
        browser.evaluate("document.querySelector('rect.bar').dispatchEvent(new MouseEvent('click'))")
        detail = browser.evaluate("document.getElementById('detail').textContent")
        errors = list(browser.errors)
    finally:
        browser.close()

    assert sorted((task_id, attempt) for task_id, attempt in bars) == expected
    assert size[0] > 0 and orchestration_id in size[1]
    assert pwned == "undefined", "text from the event or an output ran as script"
    assert "<script>window.__pwned = 1</script>" in event_text and "<script>" in answer
    assert "attempt 1" in detail
    assert errors == []
