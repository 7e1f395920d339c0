"""The dashboard's pages, streams and actions through the ASGI test client."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from arbiter import LocalRuntime
from arbiter.config import Deployment
from arbiter.decisions import decision_history
from arbiter.exceptions import UsageError
from arbiter.inputs import load_event_text
from arbiter.testing import ScriptedModel
from blackboard import AgentState, StoreUnavailableError
from tests.arbiter.conftest import FAST
from tests.arbiter.report_scenario import run_scenario
from tests.arbiter.ui_support import GATE, client, home_runtime
from wrapper import SandboxPool

RAW_SCRIPT = "<script>window.__pwned"


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory, pool: SandboxPool) -> tuple[Path, str]:
    """A home holding the report's scenario: a retried task, a fabrication, hostile text everywhere."""
    home = tmp_path_factory.mktemp("ui") / "home"
    return home, run_scenario(home, pool)


@pytest.fixture
def scenario_runtime(scenario: tuple[Path, str]) -> Iterator[LocalRuntime]:
    rt = LocalRuntime(scenario[0], start=False)
    yield rt
    rt.close()


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[LocalRuntime]:
    rt = home_runtime(tmp_path / "home")
    yield rt
    rt.close()


def test_orchestrations_list_filters_by_status_and_text(scenario: tuple[Path, str], scenario_runtime: Any) -> None:
    web = client(scenario_runtime)
    _, orchestration_id = scenario
    page = web.get("/").text
    assert f'data-id="{orchestration_id}"' in page and 'data-status="completed"' in page
    assert "test.report / Hostile" in page and "data-stream=" in page  # the list is live
    assert orchestration_id not in web.get("/?status=failed").text
    assert orchestration_id in web.get("/?status=completed&q=HOSTILE").text
    assert orchestration_id not in web.get("/?q=nothing-like-it").text
    assert web.get("/?status=bogus").status_code == 400


def test_orchestration_page_draws_planner_turns_and_every_attempt_escaped(
    scenario: tuple[Path, str], scenario_runtime: LocalRuntime
) -> None:
    _, orchestration_id = scenario
    page = client(scenario_runtime).get(f"/orchestrations/{orchestration_id}").text
    tasks = scenario_runtime.orchestration(orchestration_id).tasks
    bars = re.findall(r'data-task-id="([^"]+)" data-attempt="(\d+)"', page)
    assert sorted((t, int(a)) for t, a in bars if 'class="bar' in page) == sorted(
        (t.task_id, n) for t in tasks for n in range(1, t.attempt + 1)
    )
    assert re.findall(r'class="bar turn"[^>]*data-turn="(\d+)"', page) == ["1", "2", "3"]  # two waves, then the answer
    assert RAW_SCRIPT not in page and "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page
    assert 'id="answer"' in page and "data-stream" not in page  # finished: nothing to follow


def test_the_stream_of_a_finished_orchestration_sends_its_body_then_ends(
    scenario: tuple[Path, str], scenario_runtime: LocalRuntime
) -> None:
    _, orchestration_id = scenario
    with client(scenario_runtime).stream("GET", f"/orchestrations/{orchestration_id}/stream") as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        body = "".join(answer.iter_text())
    assert body.index("event: fragment") < body.index("event: end")
    assert 'class="bar turn"' in body and RAW_SCRIPT not in body
    with client(scenario_runtime).stream("GET", "/orchestrations/nope/stream") as answer:
        assert "event: gone" in "".join(answer.iter_text())


def test_agents_page_shows_states_and_reflection_figures(runtime: LocalRuntime) -> None:
    web = client(runtime)
    page = web.get("/agents").text
    row = page[page.index('data-agent="counter@1"') :].split("</tr>")[0]
    assert "active" in row and "<td>4</td>" in row and "25%" in row and "ms" in row
    assert 'data-agent="counter@2" data-state="pending_approval"' in page
    assert 'data-agent="counter@1"' not in web.get("/agents?state=pending_approval").text
    queue = web.get("/approvals").text
    assert 'data-agent="counter@2"' in queue and 'data-agent="counter@1"' not in queue


def test_version_page_shows_code_schemas_checks_examples_and_actions(runtime: LocalRuntime) -> None:
    page = client(runtime).get("/agents/counter/2").text
    assert '<div class="code">' in page and '<span class="k">def</span>' in page  # highlighted
    assert RAW_SCRIPT not in page and "&lt;/pre&gt;&lt;script&gt;" in page
    assert "&#34;required&#34;: [" in page  # the input schema, indented
    assert 'data-check="policy"' in page and "imports ok &lt;script&gt;" in page
    assert 'id="examples"' in page and "example[0]" in page
    assert 'id="approve-button"' in page and 'id="reject-button"' in page and 'id="quarantine-button"' not in page
    assert f'name="csrf" value="{GATE.csrf}"' in page


def test_approving_from_the_page_activates_records_and_a_second_approval_is_told(runtime: LocalRuntime) -> None:
    web = client(runtime)
    form = {"csrf": GATE.csrf, "reason": "read the code and the report", "who": "ada"}
    answer = web.post("/agents/counter/2/approve", data=form)
    assert answer.status_code == 303 and answer.headers["location"] == "/agents/counter/2?done=approve"
    assert runtime.backends.registry.get("counter", 2).state is AgentState.ACTIVE
    page = web.get(answer.headers["location"]).text
    assert 'id="message"' in page and "ada via ui" in page and "read the code and the report" in page
    again = web.post("/agents/counter/2/approve", data={"csrf": GATE.csrf, "who": "bob"})
    assert again.status_code == 409 and "already approved" in again.text
    assert [d.by for d in decision_history(runtime.backends, "counter")] == ["ada via ui"]


def test_reject_needs_a_reason_and_the_other_actions_work_from_the_page(runtime: LocalRuntime) -> None:
    web = client(runtime)
    refused = web.post("/agents/counter/2/reject", data={"csrf": GATE.csrf, "reason": ""})
    assert refused.status_code == 409 and "needs a reason" in refused.text
    assert runtime.backends.registry.get("counter", 2).state is AgentState.PENDING_APPROVAL
    assert web.post("/agents/counter/2/reject", data={"csrf": GATE.csrf, "reason": "eval"}).status_code == 303
    for action in ("quarantine", "release", "retire"):
        assert web.post(f"/agents/counter/1/{action}", data={"csrf": GATE.csrf}).status_code == 303, action
    assert web.post("/agents/counter/1/rollback", data={"csrf": GATE.csrf}).status_code == 409  # nothing active
    assert web.post("/agents/counter/1/frobnicate", data={"csrf": GATE.csrf}).status_code == 404
    actions = [(d.action, d.version) for d in decision_history(runtime.backends, "counter")]
    assert actions == [("reject", 2), ("quarantine", 1), ("release", 1), ("retire", 1)]


def test_a_bad_event_gets_the_cli_error_and_nothing_is_written(runtime: LocalRuntime) -> None:
    web = client(runtime, can_run=True)
    for text in ('{"source": "arbiter", "detail-type": "x", "detail": {}}', '{"source": "a"', "[1, 2]"):
        with pytest.raises(UsageError) as expected:
            load_event_text(text.encode(), what="pasted event")
        answer = web.post("/run", data={"csrf": GATE.csrf, "event": text})
        assert answer.status_code == 400 and str(escape(str(expected.value))) in answer.text
    assert runtime.backends.blackboard.list_orchestrations(None, limit=10) == []


def test_a_read_only_dashboard_checks_but_does_not_run(runtime: LocalRuntime) -> None:
    answer = client(runtime).post(
        "/run", data={"csrf": GATE.csrf, "event": '{"source": "s", "detail-type": "d", "detail": {}}'}
    )
    assert answer.status_code == 409 and "--model" in answer.text
    assert runtime.backends.blackboard.list_orchestrations(None, limit=10) == []


def test_an_uploaded_event_runs_and_the_page_follows_it(tmp_path: Path, pool: SandboxPool) -> None:
    with LocalRuntime(
        tmp_path / "home",
        model=ScriptedModel([{"text": "nothing to do"}]),
        settings=FAST,
        deployment=Deployment(sandbox=pool, sweep_interval=0.1),
    ) as rt:
        web = client(rt, can_run=True)
        event = b'{"source": "shop", "detail-type": "Order", "detail": {"id": 7}}'
        answer = web.post("/run", data={"csrf": GATE.csrf}, files={"file": ("order.json", event, "application/json")})
        assert answer.status_code == 303
        orchestration_id = answer.headers["location"].rsplit("/", 1)[1]
        assert rt.wait(orchestration_id, timeout=30).output == "nothing to do"
        assert "nothing to do" in web.get(answer.headers["location"]).text


def test_a_store_that_goes_away_is_reported_and_the_server_recovers(
    runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    web = client(runtime)
    outage = [1]
    real = runtime.backends.blackboard.list_orchestrations

    def fake_outage(*args: Any, **kwargs: Any) -> Any:
        if outage:
            outage.pop()
            raise StoreUnavailableError("database is locked")
        return real(*args, **kwargs)

    monkeypatch.setattr(runtime.backends.blackboard, "list_orchestrations", fake_outage)
    down = web.get("/")
    assert down.status_code == 503 and "not answering" in down.text and "database is locked" in down.text
    assert web.get("/").status_code == 200
    assert web.get("/orchestrations/no-such-id").status_code == 404
    assert web.get("/agents/nobody/1").status_code == 404


def test_the_live_list_is_pushed_and_its_stream_ends_for_the_browser_to_reconnect(runtime: LocalRuntime) -> None:
    web = client(runtime, poll_seconds=0.05, stream_seconds=0.3)
    with web.stream("GET", "/orchestrations/stream?status=running") as answer:
        body = "".join(answer.iter_text())
    assert body.count("event: fragment") == 1 and "No orchestrations yet." in body  # unchanged: sent once


def test_a_stream_says_when_the_store_is_away_and_recovers(
    runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    outage = [1, 2]
    real = runtime.backends.blackboard.list_orchestrations

    def fake_outage(*args: Any, **kwargs: Any) -> Any:
        if outage:
            outage.pop()
            raise StoreUnavailableError("throttled past the retries")
        return real(*args, **kwargs)

    monkeypatch.setattr(runtime.backends.blackboard, "list_orchestrations", fake_outage)
    web = client(runtime, poll_seconds=0.05, stream_seconds=1.0)
    with web.stream("GET", "/orchestrations/stream") as answer:
        body = "".join(answer.iter_text())
    assert body.index("event: unavailable") < body.index("event: fragment")
    assert "throttled past the retries" in body and not outage
