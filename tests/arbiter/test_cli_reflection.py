"""``arbiter agents quarantine|release|retire`` and the stats in ``agents list`` / ``agents show``."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from arbiter.cli import app
from blackboard import AgentManifest, AgentState, TaskState, local_backends

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _home(tmp_path: Path) -> str:
    """A home with parser@1 (active, 20 runs: 19 fast successes, one slow failure) and parser@2 (active)."""
    home = tmp_path / "home"
    backends = local_backends(home)
    code = backends.code_store.put(b"def handler(**kw):\n    return 1\n")
    for version in (1, 2):
        backends.registry.put(AgentManifest(name="parser", version=version, description="Parses.", code=code))
    for _ in range(19):
        backends.registry.record_completion("parser", 1, TaskState.SUCCEEDED, 12.0, 10)
    backends.registry.record_completion("parser", 1, TaskState.FAILED, 3000.0, 0)
    backends.close()
    return str(home)


def test_list_shows_runs_success_p95_and_tokens(tmp_path: Path) -> None:
    home = _home(tmp_path)
    code, out, _ = invoke("agents", "list", "--home", home)
    first, second = out.splitlines()
    assert code == 0
    assert first.startswith("parser@1") and "runs=20" in first and "ok=95%" in first and "p95=16ms" in first
    assert "tokens=190" in first
    assert "runs=0" in second and "p95=-" in second
    code, out, _ = invoke("agents", "list", "--home", home, "--json")
    stats = json.loads(out)[0]["stats"]
    assert (stats["p95_ms"], stats["failure_rate"], sum(stats["duration_buckets"])) == (16.0, 0.05, 20)


def test_show_lists_every_version_with_state_and_stats(tmp_path: Path) -> None:
    home = _home(tmp_path)
    code, out, _ = invoke("agents", "show", "parser", "--home", home)
    assert code == 0
    assert "parser@1  active" in out and "parser@2  active" in out
    assert "20 invocations: 19 succeeded, 1 failed, 0 timed out (5% failures); mean 161ms, p95 16ms" in out


def test_quarantine_release_and_retire(tmp_path: Path) -> None:
    home = _home(tmp_path)
    code, out, _ = invoke("agents", "quarantine", "parser", "--home", home, "--reason", "wrong totals")
    assert code == 0 and "quarantined parser@2; parser@1 stays active" in out
    code, out, _ = invoke("agents", "quarantine", "parser", "--version", "1", "--home", home, "--json")
    assert code == 0 and json.loads(out)["version"] == 1
    code, _, err = invoke("agents", "quarantine", "parser", "--home", home)
    assert code == 2 and "no active version" in err
    code, out, _ = invoke("agents", "list", "--state", "active", "--home", home)
    assert code == 0 and out == ""  # nothing left to offer the planner
    code, _, err = invoke("agents", "release", "parser", "--version", "7", "--home", home)
    assert code == 2 and "has no version 7" in err
    code, out, _ = invoke("agents", "release", "parser", "--home", home)
    assert code == 0 and "released parser@2" in out
    code, _, err = invoke("agents", "release", "parser", "--version", "2", "--home", home)
    assert code == 2 and "is active, not quarantined" in err
    code, out, _ = invoke("agents", "retire", "parser", "--home", home)
    assert code == 0 and "retired parser@1, parser@2" in out  # the quarantined one too
    backends = local_backends(home)
    assert [m.state for m in backends.registry.versions("parser")] == [AgentState.RETIRED, AgentState.RETIRED]
    backends.close()
    assert invoke("agents", "quarantine", "nobody", "--home", home)[0] == 2


def test_retire_one_version(tmp_path: Path) -> None:
    home = _home(tmp_path)
    code, out, _ = invoke("agents", "retire", "parser", "--version", "2", "--home", home)
    assert code == 0 and "retired parser@2" in out
    code, out, _ = invoke("agents", "show", "parser", "--home", home, "--json")
    assert [v["state"] for v in json.loads(out)] == ["active", "retired"]
    assert invoke("agents", "retire", "parser", "--version", "2", "--home", home)[0] == 2
