"""The dashboard's gate: the token on every request, CSRF on every change, strict headers, loopback by default."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from arbiter import LocalRuntime
from arbiter.exceptions import UsageError
from arbiter.ui import Dashboard, create_app
from arbiter.ui.server import UiServer, is_loopback
from blackboard import AgentState
from tests.arbiter.test_cli import invoke
from tests.arbiter.ui_support import GATE, client, home_runtime

PATHS = ["/", "/agents", "/approvals", "/run", "/agents/counter/2", "/static/ui.js", "/code.css", "/orchestrations/x"]


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[LocalRuntime]:
    rt = home_runtime(tmp_path / "home")
    yield rt
    rt.close()


@pytest.mark.parametrize("path", PATHS)
def test_every_request_without_the_token_is_refused(runtime: LocalRuntime, path: str) -> None:
    anonymous = client(runtime, login=False)
    answer = anonymous.get(path)
    assert answer.status_code == 401 and "token required" in answer.text.lower()
    anonymous.cookies.set(GATE.cookie, "not-the-token")
    assert anonymous.get(path).status_code == 401
    assert anonymous.get(path, headers={"Authorization": f"Bearer {GATE.token}"}).status_code != 401


def test_the_token_in_the_address_becomes_a_cookie_and_leaves_the_address(runtime: LocalRuntime) -> None:
    anonymous = client(runtime, login=False)
    answer = anonymous.get(f"/agents?state=active&token={GATE.token}")
    assert answer.status_code == 303 and answer.headers["location"] == "/agents?state=active"
    cookie = answer.headers["set-cookie"]
    assert f"{GATE.cookie}={GATE.token}" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert anonymous.get("/agents?state=active").status_code == 200
    assert client(runtime, login=False).get("/?token=wrong").status_code == 401


def test_pages_carry_a_strict_content_security_policy(runtime: LocalRuntime) -> None:
    answer = client(runtime).get("/agents/counter/2")
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert answer.headers["x-content-type-options"] == "nosniff" and answer.headers["referrer-policy"] == "same-origin"
    assert "<script>" not in answer.text.replace('<script src="/static/ui.js" defer></script>', "")


def test_a_change_without_the_csrf_token_or_from_another_site_is_refused(runtime: LocalRuntime) -> None:
    web = client(runtime)
    assert web.post("/agents/counter/2/approve", data={"reason": "x"}).status_code == 403
    assert web.post("/agents/counter/2/approve", data={"csrf": "guess"}).status_code == 403
    other_site = {"Origin": "http://evil.example"}
    assert web.post("/agents/counter/2/approve", data={"csrf": GATE.csrf}, headers=other_site).status_code == 403
    assert web.get("/agents/counter/2/approve").status_code in (404, 405)  # state changes are POST only
    assert runtime.backends.registry.get("counter", 2).state is AgentState.PENDING_APPROVAL


def test_a_non_loopback_address_needs_allow_remote(runtime: LocalRuntime) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    app = create_app(Dashboard(runtime=runtime, can_run=False, gate=GATE))
    with pytest.raises(UsageError, match="--allow-remote"):
        UiServer(app, "0.0.0.0", 0)
    code, _, err = invoke("ui", "--host", "0.0.0.0", "--port", "0", "--home", str(runtime.deployment.home))
    assert code == 2 and "--allow-remote" in err
