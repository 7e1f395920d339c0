"""Hostile workers (the corpus in ``hostile/``): each ends as a failed or timed-out outcome with a clear error, does
not reach what it was after, and the pool keeps serving afterwards."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from blackboard import AgentManifest, AgentState, local_backends
from blackboard.ports.code_store import sha256_hex
from blackboard.records import CodeRef
from tests.wrapper.test_sandbox import (
    CAPABILITIES,
    CONTEXT,
    assert_serves,
    live_processes_of,
    needs_full_isolation,
    needs_separate_user,
    wait_until,
)
from wrapper.sandbox import SandboxLimits, SandboxPool, SandboxRequest

CORPUS = Path(__file__).parent / "hostile"


def hostile(name: str, input: Mapping[str, Any] | None = None, **limits: Any) -> SandboxRequest:
    return SandboxRequest(
        code=(CORPUS / f"{name}.py").read_bytes(),
        module_name=f"hostile_{name}",
        input=dict(input or {}),
        context=CONTEXT,
        limits=SandboxLimits(**{"timeout_seconds": 20.0, **limits}),
    )


@pytest.fixture(scope="module")
def pool() -> Iterator[SandboxPool]:
    with SandboxPool(size=2) as sandbox:
        yield sandbox


@pytest.fixture
def served(pool: SandboxPool) -> Iterator[SandboxPool]:
    """The shared pool, checked to still serve a normal request after the hostile one."""
    yield pool
    assert_serves(pool)
    assert_serves(pool)  # both zygotes (they are used in turn)


SIMPLE = [
    pytest.param("sleep_forever", {"timeout_seconds": 1.0}, "timed_out", "Timeout", True, id="infinite-loop"),
    pytest.param("cpu_burn", {"cpu_seconds": 1, "timeout_seconds": 20.0}, "failed", "CpuLimitExceeded", False),
    pytest.param(
        "cpu_burn_ignoring_sigxcpu", {"cpu_seconds": 1, "timeout_seconds": 20.0}, "failed", "CpuLimitExceeded", False
    ),
    pytest.param("memory_bomb", {"memory_bytes": 256 * 1024**2}, "failed", "MemoryLimitExceeded", False),
    pytest.param("unserializable", {}, "failed", "OutputNotSerializable", False),
    pytest.param("exit_silently", {}, "failed", "NoResult", False),
    pytest.param("garbage_result", {}, "failed", "ProtocolError", False),
    pytest.param("flood_result_pipe", {"output_bytes": 1000}, "failed", "ProtocolError", False),
    pytest.param("segfault", {}, "failed", "Crashed", True),
]


@pytest.mark.parametrize(("name", "limits", "status", "error_type", "retryable"), SIMPLE)
def test_hostile_handler_fails_cleanly(
    served: SandboxPool, name: str, limits: dict[str, Any], status: str, error_type: str, retryable: bool
) -> None:
    outcome = served.run(hostile(name, **limits))
    assert (outcome.status, outcome.error_type, outcome.retryable) == (status, error_type, retryable), outcome
    assert outcome.error_message
    assert outcome.output is None and outcome.notes == ()


@needs_separate_user
def test_fork_bomb_is_contained_and_cleaned_up(served: SandboxPool) -> None:
    outcome = served.run(hostile("fork_bomb", timeout_seconds=2.0, processes=16))
    assert outcome.status in ("failed", "timed_out"), outcome
    for uid in served.uids:
        assert live_processes_of(uid) == []  # killed before the outcome was returned


@needs_separate_user
def test_a_daemon_left_behind_is_killed(served: SandboxPool) -> None:
    outcome = served.run(hostile("escape_daemon"))
    assert outcome.status == "succeeded", outcome  # it returned normally; what it left running is the point
    for uid in served.uids:
        # A complete result is answered before the clean-up, which follows within milliseconds.
        assert wait_until(lambda uid=uid: not live_processes_of(uid))


@needs_full_isolation
def test_writes_outside_the_working_directory_never_reach_the_host(served: SandboxPool, tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    paths = [
        str(tmp_path / "pwned.txt"),
        f"/tmp/arbiter-pwned-{token}",
        f"/var/tmp/arbiter-pwned-{token}",
        f"/dev/shm/arbiter-pwned-{token}",
    ]
    try:
        outcome = served.run(hostile("write_outside", {"paths": paths}))
        assert outcome.status == "failed", outcome  # tmp_path is not even visible
        assert outcome.error_type in ("FileNotFoundError", "PermissionError")
        assert [p for p in paths if Path(p).exists()] == []
    finally:
        for path in paths:
            Path(path).unlink(missing_ok=True)


@needs_separate_user
def test_secrets_of_the_application_never_reach_the_child(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"wJalrXUtnFEMI-K7MDENG-{uuid.uuid4().hex}"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    with SandboxPool(size=1, preload=()) as pool:  # started after the secret is in our environment
        outcome = pool.run(hostile("read_secrets"))
        assert (outcome.status, outcome.error_type) == ("failed", "PermissionError"), outcome
        assert "no secret found" in (outcome.error_message or "")
        assert secret not in repr(outcome)
        assert_serves(pool)


@needs_full_isolation
def test_network_is_unreachable(served: SandboxPool) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        outcome = served.run(hostile("network", {"port": listener.getsockname()[1]}))
        assert (outcome.status, outcome.error_type) == ("failed", "OSError"), outcome
        assert "unreachable" in (outcome.error_message or "").lower()
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever connected


def test_killing_its_parent_fails_the_task_only(served: SandboxPool) -> None:
    outcome = served.run(hostile("kill_parent"))
    assert outcome.status == "failed", outcome
    # Under its own uid it may not signal the zygote; under ours it kills it, and the pool replaces it.
    assert outcome.error_type == ("PermissionError" if CAPABILITIES.separate_user else "SandboxCrashed")


@pytest.mark.skipif(
    not (CAPABILITIES.separate_user or CAPABILITIES.mount_namespace),
    reason="needs a dedicated uid or a mount namespace",
)
def test_the_store_of_the_application_is_out_of_reach(served: SandboxPool, tmp_path: Path) -> None:
    home = tmp_path / "home"
    backends = local_backends(home)
    try:
        code = b"def handler(**kw):\n    return kw\n"
        ref = CodeRef(sha256=sha256_hex(code), key=sha256_hex(code))
        manifest = AgentManifest(name="victim", version=1, description="the target", code=ref)
        backends.registry.put(manifest)
        before = backends.registry.versions("victim")
        outcome = served.run(hostile("overwrite_registry", {"home": str(home), "name": "victim"}))
        assert outcome.status == "failed", outcome
        assert outcome.error_type in ("FileNotFoundError", "PermissionError", "OperationalError")
        assert backends.registry.versions("victim") == before
        assert backends.registry.active("victim").state is AgentState.ACTIVE
    finally:
        backends.close()


def test_printing_fifty_megabytes_is_harmless(served: SandboxPool) -> None:
    outcome = served.run(hostile("print_flood"))
    assert outcome.status == "succeeded", outcome
    assert outcome.output == {"printed": 50}
    assert outcome.stdout_tail.endswith("x\nthe end\n") and len(outcome.stdout_tail) <= 4096


def test_every_handler_of_the_corpus_has_a_test() -> None:
    source = Path(__file__).read_text()
    assert [p.stem for p in sorted(CORPUS.glob("*.py")) if f'"{p.stem}"' not in source] == []
