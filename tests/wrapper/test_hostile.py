"""Hostile workers (the corpus in ``hostile/``): each ends as a failed or timed-out outcome with a clear error, does
not reach what it was after, and the pool keeps serving afterwards.

The corpus runs in every mode the machine offers: as root (dedicated uid, namespaces) in the plain run, and without
root (the application's own uid, no namespaces: Lambda's situation) through ``test_hostile_unprivileged``. What each
mode guarantees differs, and so do a few expected errors; a test skipped here names the protection it needs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
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
    descendants,
    live_processes_of,
    wait_until,
    zygotes_of,
)
from wrapper.sandbox import SandboxLimits, SandboxPool, SandboxRequest

CORPUS = Path(__file__).parent / "hostile"
APP = Path(__file__).with_name("hostile_app.py")
ROOT = Path(__file__).resolve().parents[2]
#: Children confined by Landlock (no uid of their own, a kernel that has it): files, processes, signals, TCP.
LANDLOCK = CAPABILITIES.landlock if not CAPABILITIES.separate_user else 0
needs_file_isolation = pytest.mark.skipif(
    not (LANDLOCK or (CAPABILITIES.separate_user and CAPABILITIES.mount_namespace)),
    reason="needs a dedicated uid with a mount namespace (root), or Landlock",
)
needs_process_isolation = pytest.mark.skipif(
    not (LANDLOCK or CAPABILITIES.separate_user),
    reason="without a dedicated uid (root) or Landlock, a child may read every dumpable process of its uid",
)


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
    pytest.param("exit_silently", {}, "failed", "Crashed", True),  # no result: a crash, retried like a SIGKILL
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


# Bad input a worker hands back: refused with a message that names what is wrong, where, and what to write instead.
WORDED = [
    pytest.param("async_handler", "TypeError", False, ["handler is an async def", "plain `def handler(**input)`"]),
    pytest.param("nan_result", "OutputNotSerializable", False, ["nan at $.stats[1].mean", "no NaN or Infinity"]),
    pytest.param(
        "lone_surrogate", "OutputNotSerializable", False, ["$.text is not valid Unicode", "'\\udce9' at index 3"]
    ),
    pytest.param("lone_surrogate_error", "ValueError", True, ["cannot read caf\\udce9"]),  # its own error, kept
]


@pytest.mark.parametrize(("name", "error_type", "retryable", "words"), WORDED)
def test_bad_results_are_named_for_what_they_are(
    served: SandboxPool, name: str, error_type: str, retryable: bool, words: list[str]
) -> None:
    outcome = served.run(hostile(name))
    assert (outcome.status, outcome.error_type, outcome.retryable) == ("failed", error_type, retryable), outcome
    for word in words:
        assert word in (outcome.error_message or ""), outcome.error_message
    assert "coroutine" not in (outcome.error_message or "") and "ProtocolError" not in repr(outcome)


def _nothing_left(pool: SandboxPool) -> bool:
    """No process of the sandbox uids; without them, nothing under a zygote but its next child (the spare)."""
    if pool.uids:
        return all(not live_processes_of(uid) for uid in pool.uids)
    return all(len(descendants(pid)) <= 1 for pid in zygotes_of(pool))


def test_fork_bomb_is_contained_and_cleaned_up(served: SandboxPool) -> None:
    outcome = served.run(hostile("fork_bomb", timeout_seconds=2.0, processes=16))
    assert outcome.status in ("failed", "timed_out"), outcome
    assert wait_until(lambda: _nothing_left(served))


def test_a_daemon_left_behind_is_killed(served: SandboxPool) -> None:
    outcome = served.run(hostile("escape_daemon"))
    assert outcome.status == "succeeded", outcome  # it returned normally; what it left running is the point
    # A complete result is answered before the clean-up, which follows within milliseconds.
    assert wait_until(lambda: _nothing_left(served))


@needs_file_isolation
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


def run_app(name: str, *, launch: bool = False) -> tuple[str, dict[str, Any]]:
    """Run ``hostile_app.py`` with a fresh secret in its exec-time environment (and its launcher's)."""
    secret = f"wJalrXUtnFEMI-K7MDENG-{uuid.uuid4().hex}"
    env = {**os.environ, "AWS_SECRET_ACCESS_KEY": secret, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, str(APP), *(["--launch"] if launch else []), name]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return secret, json.loads(done.stdout.strip().splitlines()[-1])


def test_the_environment_of_the_application_never_reaches_the_child() -> None:
    # In every mode: the application is non-dumpable before it starts a zygote, its uid no longer opens its environ.
    secret, outcome = run_app("read_secrets")
    assert outcome["dumpable"] == 0
    assert (outcome["status"], outcome["error_type"]) == ("failed", "PermissionError"), outcome
    assert "no secret found" in outcome["error_message"] and secret not in json.dumps(outcome)
    assert f"environ of {outcome['pids'][0]}" in outcome["error_message"]  # it did try the application


@needs_process_isolation
def test_no_ancestor_nor_init_gives_its_environment_away() -> None:
    # The launcher holds the same secret and stays dumpable (a shell that exported it): only a dedicated uid or
    # Landlock keeps the child off it, and off PID 1.
    secret, outcome = run_app("read_secrets", launch=True)
    assert (outcome["status"], outcome["error_type"]) == ("failed", "PermissionError"), outcome
    assert secret not in json.dumps(outcome)
    assert len(outcome["pids"]) >= 3 and outcome["pids"][-1] == 1
    for pid in outcome["pids"]:
        assert f"environ of {pid}" in outcome["error_message"]


@needs_file_isolation
def test_the_aws_credentials_of_the_application_are_out_of_reach(served: SandboxPool, tmp_path: Path) -> None:
    secret = uuid.uuid4().hex
    credentials = tmp_path / ".aws" / "credentials"
    credentials.parent.mkdir()
    credentials.write_text(f"[default]\naws_secret_access_key = {secret}\n")
    credentials.chmod(0o600)
    paths = [str(credentials), str(Path.home() / ".aws" / "credentials"), str(Path.home() / ".aws" / "config")]
    outcome = served.run(hostile("read_aws_credentials", {"paths": paths}))
    assert outcome.status == "failed", outcome
    assert outcome.error_type in ("FileNotFoundError", "PermissionError")
    assert secret not in repr(outcome)


def test_no_descriptor_of_the_application_is_inherited(tmp_path: Path) -> None:
    secret = uuid.uuid4().hex
    leaked = tmp_path / "credentials"
    leaked.write_text(secret)
    fd = os.open(leaked, os.O_RDONLY)
    os.set_inheritable(fd, True)  # the kind of descriptor a careless application leaves open
    try:
        with SandboxPool(size=1, preload=()) as pool:
            outcome = pool.run(hostile("inherited_descriptors"))
    finally:
        os.close(fd)
    assert outcome.status == "succeeded", outcome
    assert outcome.output == {"open": [0, 1, 2, 3], "null": [0, 1, 2], "read": {}}  # 3: its result pipe
    assert secret not in repr(outcome)


@pytest.mark.skipif(
    not (LANDLOCK >= 4 or (CAPABILITIES.separate_user and CAPABILITIES.network_namespace)),
    reason="needs a network namespace (root) or Landlock ABI 4 (TCP)",
)
def test_network_is_unreachable(served: SandboxPool) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        outcome = served.run(hostile("network", {"port": listener.getsockname()[1]}))
        assert outcome.status == "failed", outcome
        if LANDLOCK:  # TCP connect refused by Landlock
            assert outcome.error_type == "PermissionError", outcome
        else:  # no interface up in its namespace
            assert outcome.error_type == "OSError" and "unreachable" in (outcome.error_message or "").lower()
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever connected


def test_killing_its_parent_fails_the_task_only(served: SandboxPool) -> None:
    outcome = served.run(hostile("kill_parent"))
    assert outcome.status == "failed", outcome
    # Under its own uid, or with Landlock's signal scope, it may not signal the zygote; otherwise it kills it, and
    # the pool replaces it.
    contained = CAPABILITIES.separate_user or LANDLOCK >= 6
    assert outcome.error_type == ("PermissionError" if contained else "SandboxCrashed")


@pytest.mark.skipif(
    not (CAPABILITIES.separate_user or CAPABILITIES.mount_namespace or LANDLOCK),
    reason="needs a dedicated uid, a mount namespace or Landlock",
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
        # Hidden (namespace), not ours (uid) or refused (Landlock: the blackboard cannot open its files).
        refused = ("FileNotFoundError", "PermissionError", "OperationalError", "StoreCorruptError")
        assert outcome.error_type in refused, outcome
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
