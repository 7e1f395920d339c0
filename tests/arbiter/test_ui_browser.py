"""The dashboard in a real browser (headless Chromium over the DevTools protocol) against a served runtime."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from arbiter import LocalRuntime
from arbiter.config import Deployment
from arbiter.testing import ScriptedModel
from arbiter.ui import Dashboard, create_app, new_gate
from arbiter.ui.server import UiServer
from blackboard import AgentState
from tests.arbiter.cdp import Browser
from tests.arbiter.conftest import FAST
from tests.arbiter.ui_support import HOSTILE, seed
from wrapper import SandboxPool

pytestmark = pytest.mark.browser


def call(name: str, **data: Any) -> dict[str, Any]:
    return {"name": name, "input": data}


def until(condition: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def browser() -> Iterator[Browser]:
    opened = Browser()
    yield opened
    opened.close()


def test_a_live_orchestration_grows_on_the_page_and_hostile_text_stays_inert(
    tmp_path: Path, pool: SandboxPool, browser: Browser
) -> None:
    released = {1: threading.Event(), 2: threading.Event()}

    def step(n: int, note: str) -> str:
        """Waits until the test lets step ``n`` finish."""
        assert released[n].wait(60), "the test never released the step"
        return f"step {n} done {note}"

    turns = [
        {"tool_calls": [call("step", n=1, note=HOSTILE)], "usage": {"input_tokens": 20, "output_tokens": 5}},
        {"tool_calls": [call("step", n=2, note="plain")]},
        {"text": f"all done {HOSTILE}"},
    ]
    with LocalRuntime(
        tmp_path / "home",
        model=ScriptedModel(turns),
        settings=FAST,
        matching="all",
        deployment=Deployment(sandbox=pool, sweep_interval=0.1),
    ) as rt:
        rt.register_agent("step", "Does one step of the work.", step)
        dashboard = Dashboard(runtime=rt, can_run=True, gate=new_gate(), poll_seconds=0.1)
        with UiServer(create_app(dashboard), port=0) as server:
            orchestration_id = rt.submit({"source": "test.ui", "detail-type": "Work", "detail": {"text": HOSTILE}})
            until(lambda: rt.orchestration(orchestration_id).tasks, "the first wave")
            browser.open(server.login_url)
            browser.open(f"{server.url}orchestrations/{orchestration_id}")
            bars = "document.querySelectorAll('rect.bar:not(.turn)').length"
            assert browser.evaluate(bars) == 1
            assert browser.evaluate("document.querySelectorAll('rect.bar.turn').length") == 1
            released[1].set()
            until(lambda: browser.evaluate(bars) == 2, "the second wave on the page")
            released[2].set()
            until(lambda: browser.evaluate("document.body.getAttribute('data-finished')"), "the end on the page")
            answer = browser.evaluate("document.getElementById('answer').textContent")
            turns_drawn = browser.evaluate("document.querySelectorAll('rect.bar.turn').length")
            updates = browser.evaluate("Number(document.body.getAttribute('data-updates'))")
            pwned = browser.evaluate("typeof window.__pwned")
            event_text = browser.evaluate("document.getElementById('event').textContent")
            browser.evaluate(
                "document.querySelector('rect.bar').dispatchEvent(new MouseEvent('click', {bubbles: true}))"
            )
            detail = browser.evaluate("document.getElementById('detail').textContent")
            errors = list(browser.errors)
    assert "all done <script>window.__pwned = 1</script>" in answer and "<img src=x" in event_text
    assert pwned == "undefined", "text from the event or the model ran as script"
    assert turns_drawn == 3 and updates >= 2
    assert "step" in detail or "planner turn" in detail
    assert errors == []


def test_approving_a_pending_version_from_the_page_makes_it_active(tmp_path: Path, browser: Browser) -> None:
    with LocalRuntime(tmp_path / "home", start=False) as rt:
        seed(rt.backends)
        with UiServer(create_app(Dashboard(runtime=rt, can_run=False, gate=new_gate())), port=0) as server:
            browser.open(server.login_url)
            browser.open(f"{server.url}approvals")
            assert browser.evaluate("document.querySelectorAll('#agents tr[data-agent]').length") == 1
            browser.evaluate("document.querySelector('#agents a').click()")
            browser.wait_for("Page.loadEventFired")
            code_lines = browser.evaluate("document.querySelectorAll('#code .k').length")
            browser.evaluate("document.querySelector('#approve-form input[name=reason]').value = 'read it all'")
            browser.evaluate("document.getElementById('approve-button').click()")
            browser.wait_for("Page.loadEventFired")
            message = browser.evaluate("document.getElementById('message').textContent")
            state = browser.evaluate("document.getElementById('state').textContent")
            history = browser.evaluate("document.getElementById('history').textContent")
            pwned = browser.evaluate("typeof window.__pwned")
            errors = list(browser.errors)
        stored = rt.backends.registry.get("counter", 2).state
    assert stored is AgentState.ACTIVE and state == "active" and "Approved" in message
    assert "read it all" in history and "via ui" in history
    assert code_lines >= 1 and pwned == "undefined"
    assert errors == []


def test_a_browser_without_the_token_is_refused(tmp_path: Path, browser: Browser) -> None:
    with LocalRuntime(tmp_path / "home", start=False) as rt:
        seed(rt.backends)
        with UiServer(create_app(Dashboard(runtime=rt, can_run=False, gate=new_gate())), port=0) as server:
            browser.open(f"{server.url}agents/counter/2")
            title = browser.evaluate("document.title")
            has_code = browser.evaluate("document.getElementById('code') !== null")
            browser.open(f"{server.url}?token=wrong")
            title_wrong = browser.evaluate("document.title")
    assert title == title_wrong == "Arbiter: token required" and not has_code
