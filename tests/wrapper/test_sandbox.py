"""The sandbox pool: results and errors, concurrency, zygote restarts, shutdown, cold runs and capabilities."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from wrapper.exceptions import SandboxError
from wrapper.sandbox import (
    SandboxLimits,
    SandboxOutcome,
    SandboxPool,
    SandboxRequest,
    run_cold,
    sandbox_capabilities,
)
from wrapper.sandbox._handle import Zygote, encode
from wrapper.sandbox._isolation import in_scratch

CONTEXT: dict[str, Any] = {
    "orchestration_id": "o-1",
    "task_id": "t-7",
    "attempt": 2,
    "agent": "cook",
    "notes": {"menu": {"value": ["burger", "fries"], "version": 3}},
}
OK_CODE = "def handler(**kwargs):\n    return {'ok': True, **kwargs}\n"
SLEEP_CODE = "import time\ndef handler():\n    time.sleep(60)\n"
DAEMON_CODE = """
import os, time

def handler():
    read, write = os.pipe()
    if os.fork() == 0:
        os.setsid()
        daemon = os.fork()
        if daemon == 0:
            while True:
                time.sleep(3600)
        os.write(write, str(daemon).encode())
        os._exit(0)
    os.wait()
    return {"daemon": int(os.read(read, 32)), "cwd": os.getcwd()}
"""
CAPABILITIES = sandbox_capabilities()
needs_separate_user = pytest.mark.skipif(
    not CAPABILITIES.separate_user, reason="children share our uid: needs root (a dedicated uid per zygote)"
)
needs_full_isolation = pytest.mark.skipif(
    not (CAPABILITIES.separate_user and CAPABILITIES.mount_namespace and CAPABILITIES.network_namespace),
    reason="needs root with working mount and network namespaces",
)


# ------------------------------------------------------------------ helpers (also used by test_hostile)


def request(
    code: str,
    input: Mapping[str, Any] | None = None,
    *,
    entrypoint: str = "handler",
    env: Mapping[str, str] | None = None,
    **limits: Any,
) -> SandboxRequest:
    return SandboxRequest(
        code=code.encode(),
        module_name="agent_under_test",
        input=dict(input or {}),
        context=CONTEXT,
        entrypoint=entrypoint,
        env=dict(env or {}),
        limits=SandboxLimits(**{"timeout_seconds": 20.0, **limits}),
    )


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def _status(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/status") as status:
            return dict(line.split(":", 1) for line in status.read().splitlines() if ":" in line)
    except OSError:
        return {}


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def live_processes_of(uid: int) -> list[int]:
    """Processes (zombies excluded: their parent reaps them) whose real uid is ``uid``."""
    found = []
    for pid in _pids():
        status = _status(pid)
        if status and int(status["Uid"].split()[0]) == uid and not status["State"].strip().startswith("Z"):
            found.append(pid)
    return found


def zygotes() -> set[int]:
    """The zygote processes this test process started that are still alive (of every pool)."""
    found = set()
    for pid in _pids():
        status = _status(pid)
        if not status or int(status["PPid"]) != os.getpid() or status["State"].strip().startswith("Z"):
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if b"wrapper.sandbox._zygote" in cmdline.read():
                    found.add(pid)
        except OSError:
            continue
    return found


def zygotes_of(pool: SandboxPool) -> set[int]:
    return {pid for pid in (zygote.pid for zygote in pool._zygotes) if pid is not None}


def descendants(pid: int) -> set[int]:
    found = set()
    for child in _pids():
        status = _status(child)
        if status and int(status["PPid"]) == pid:
            found |= {child, *descendants(child)}
    return found


def alive(pid: int) -> bool:
    status = _status(pid)
    return bool(status) and not status["State"].strip().startswith("Z")


def assert_serves(pool: SandboxPool) -> None:
    outcome = pool.run(request(OK_CODE, {"n": 1}))
    assert outcome.status == "succeeded", outcome
    assert outcome.output == {"ok": True, "n": 1}


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def pool() -> Iterator[SandboxPool]:
    with SandboxPool(size=2) as sandbox:
        yield sandbox


# ------------------------------------------------------------------ results


def test_success_carries_output_notes_usage_and_printed_text(pool: SandboxPool) -> None:
    code = """
from wrapper import sdk

def handler(item, count=1):
    task = sdk.context()
    sdk.note("cooked", {"item": item, "count": count})
    print("cooking", item)
    return {"item": item, "task": task.task_id, "attempt": task.attempt, "menu": sdk.notes()["menu"]}
"""
    outcome = pool.run(request(code, {"item": "burger", "count": 2}))
    assert outcome.status == "succeeded", outcome
    assert outcome.output == {"item": "burger", "task": "t-7", "attempt": 2, "menu": ["burger", "fries"]}
    assert outcome.notes == (("cooked", {"item": "burger", "count": 2}),)
    assert outcome.usage == {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    assert outcome.stdout_tail == "cooking burger\n"
    assert outcome.error_type is None and outcome.duration_ms > 0


def test_stdout_tail_keeps_the_last_four_kib(pool: SandboxPool) -> None:
    code = "import sys\ndef handler():\n    for i in range(5000):\n        print('line', i)\n"
    code += "    print('last', file=sys.stderr)\n"
    outcome = pool.run(request(code))
    assert outcome.status == "succeeded", outcome
    assert outcome.stdout_tail.endswith("line 4999\nlast\n")
    assert 4000 < len(outcome.stdout_tail) <= 4096


def test_environment_is_an_allow_list_plus_request_env(pool: SandboxPool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBITER_TEST_LEAK", "must-not-cross")
    code = "import os\ndef handler():\n    return {'env': dict(os.environ), 'cwd': os.getcwd()}\n"
    outcome = pool.run(request(code, env={"AWS_ACCESS_KEY_ID": "scoped-key"}))
    assert outcome.status == "succeeded", outcome
    env, cwd = outcome.output["env"], outcome.output["cwd"]
    assert env["AWS_ACCESS_KEY_ID"] == "scoped-key"
    assert env["HOME"] == env["TMPDIR"] == cwd
    allowed = {"PATH", "LANG", "LC_ALL", "TZ", "HOME", "TMPDIR", "AWS_ACCESS_KEY_ID"}
    assert {key for key in env if not key.startswith("LC_")} <= allowed
    assert "ARBITER_TEST_LEAK" not in env


def test_limits_become_rlimits(pool: SandboxPool) -> None:
    code = """
import resource

def handler():
    names = ["RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_FSIZE", "RLIMIT_CORE"]
    return {name: resource.getrlimit(getattr(resource, name))[0] for name in names}
"""
    limits = {"cpu_seconds": 7, "memory_bytes": 1024**3, "open_files": 64, "file_size_bytes": 1024**2}
    outcome = pool.run(request(code, **limits))
    assert outcome.status == "succeeded", outcome
    expected = {"RLIMIT_CPU": 7, "RLIMIT_AS": 1024**3, "RLIMIT_NOFILE": 64, "RLIMIT_FSIZE": 1024**2, "RLIMIT_CORE": 0}
    assert {k: v for k, v in outcome.output.items() if k != "RLIMIT_NPROC"} == expected
    if CAPABILITIES.separate_user:
        assert outcome.output["RLIMIT_NPROC"] == SandboxLimits().processes


def test_cpu_limit_defaults_to_the_timeout_plus_one(pool: SandboxPool) -> None:
    code = "import resource\ndef handler():\n    return resource.getrlimit(resource.RLIMIT_CPU)[0]\n"
    outcome = pool.run(request(code, timeout_seconds=4.2))
    assert outcome.output == 6


def test_oversized_file_write_raises_in_the_worker(pool: SandboxPool) -> None:
    code = "def handler():\n    with open('big', 'wb') as f:\n        f.write(b'x' * 4096)\n"
    outcome = pool.run(request(code, file_size_bytes=1024))
    assert outcome.status == "failed" and outcome.error_type == "OSError", outcome
    assert "too large" in (outcome.error_message or "")


# ------------------------------------------------------------------ errors


def test_import_error_at_load_is_not_retryable(pool: SandboxPool) -> None:
    outcome = pool.run(request("import no_such_module_anywhere\n\ndef handler():\n    return 1\n"))
    assert (outcome.status, outcome.error_type, outcome.retryable) == ("failed", "ModuleNotFoundError", False)
    assert "no_such_module_anywhere" in (outcome.error_message or "")


def test_syntax_error_is_not_retryable(pool: SandboxPool) -> None:
    outcome = pool.run(request("def handler(:\n    pass\n"))
    assert (outcome.status, outcome.error_type, outcome.retryable) == ("failed", "SyntaxError", False)


def test_handler_exception_is_retryable_and_shows_the_traceback(pool: SandboxPool) -> None:
    code = "def cook(item):\n    raise ValueError(f'burnt {item}')\n\ndef handler(item):\n    cook(item)\n"
    outcome = pool.run(request(code, {"item": "burger"}))
    assert (outcome.status, outcome.error_type, outcome.retryable) == ("failed", "ValueError", True)
    message = outcome.error_message or ""
    assert message.startswith("burnt burger")
    assert "Traceback" in message and "raise ValueError(f'burnt {item}')" in message and "in cook" in message


def test_non_retryable_error_is_not_retried(pool: SandboxPool) -> None:
    code = "from wrapper.sdk import NonRetryableError\ndef handler():\n    raise NonRetryableError('no such dish')\n"
    outcome = pool.run(request(code))
    assert (outcome.status, outcome.error_type, outcome.retryable) == ("failed", "NonRetryableError", False)
    assert "no such dish" in (outcome.error_message or "")


def test_missing_entrypoint_is_not_retryable(pool: SandboxPool) -> None:
    outcome = pool.run(request(OK_CODE, entrypoint="main"))
    assert (outcome.status, outcome.error_type, outcome.retryable) == ("failed", "AttributeError", False)
    assert "'main'" in (outcome.error_message or "")


def test_bad_keyword_arguments_are_not_retryable(pool: SandboxPool) -> None:
    outcome = pool.run(request("def handler(item):\n    return item\n", {"colour": "red"}))
    assert (outcome.status, outcome.error_type, outcome.retryable) == ("failed", "TypeError", False)
    assert "colour" in (outcome.error_message or "")


def test_output_over_the_limit_fails(pool: SandboxPool) -> None:
    outcome = pool.run(request("def handler():\n    return 'x' * 5000\n", output_bytes=1000))
    assert (outcome.status, outcome.error_type, outcome.retryable) == ("failed", "OutputTooLarge", False)


def test_nan_is_not_json(pool: SandboxPool) -> None:
    outcome = pool.run(request("def handler():\n    return float('nan')\n"))
    assert (outcome.status, outcome.error_type) == ("failed", "OutputNotSerializable")


def test_input_that_is_not_json_is_an_invalid_request(pool: SandboxPool) -> None:
    outcome = pool.run(request(OK_CODE, {"thing": object()}))
    assert (outcome.status, outcome.error_type, outcome.retryable) == ("failed", "InvalidRequest", False)


def test_notes_of_a_failed_task_are_dropped_but_usage_is_kept(pool: SandboxPool) -> None:
    code = "from wrapper import sdk\ndef handler():\n    sdk.note('half', 1)\n    raise RuntimeError('later')\n"
    outcome = pool.run(request(code))
    assert outcome.status == "failed" and outcome.notes == ()
    assert outcome.usage == {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}


# ------------------------------------------------------------------ concurrency and lifecycle


def test_concurrent_requests_from_many_threads(pool: SandboxPool) -> None:
    code = "import os\ndef handler(n):\n    return {'n': n, 'square': n * n, 'pid': os.getpid()}\n"
    with ThreadPoolExecutor(max_workers=10) as threads:
        outcomes = list(threads.map(lambda n: pool.run(request(code, {"n": n})), range(30)))
    assert [o.status for o in outcomes] == ["succeeded"] * 30
    assert [(o.output["n"], o.output["square"]) for o in outcomes] == [(n, n * n) for n in range(30)]
    assert len({o.output["pid"] for o in outcomes}) == 30  # a fresh child every time


def test_zygote_killed_while_idle_is_replaced_transparently() -> None:
    with SandboxPool(size=1, preload=()) as pool:
        assert_serves(pool)
        (old,) = zygotes_of(pool)
        os.kill(old, signal.SIGKILL)
        assert wait_until(lambda: not alive(old))
        assert_serves(pool)
        (new,) = zygotes_of(pool)
        assert new != old and alive(new)


@needs_separate_user
def test_zygote_killed_during_a_task_fails_it_and_is_replaced() -> None:
    with SandboxPool(size=1, preload=()) as pool:
        (uid,) = pool.uids
        (old,) = zygotes_of(pool)
        outcomes: list[SandboxOutcome] = []
        runner = threading.Thread(target=lambda: outcomes.append(pool.run(request(SLEEP_CODE))))
        runner.start()
        assert wait_until(lambda: bool(live_processes_of(uid)))  # the task's child runs under the uid
        os.kill(old, signal.SIGKILL)
        runner.join(30)
        (outcome,) = outcomes
        assert (outcome.status, outcome.error_type, outcome.retryable) == ("failed", "SandboxCrashed", True)
        assert wait_until(lambda: not live_processes_of(uid))
        assert_serves(pool)
        assert old not in zygotes_of(pool) and not alive(old)


def test_hung_zygote_is_killed_and_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("wrapper.sandbox._handle.GRACE_SECONDS", 0.5)
    with SandboxPool(size=1, preload=()) as pool:
        (old,) = zygotes_of(pool)
        os.kill(old, signal.SIGSTOP)
        outcome = pool.run(request(OK_CODE, timeout_seconds=0.5))
        assert (outcome.status, outcome.error_type, outcome.retryable) == ("failed", "SandboxCrashed", True)
        assert not alive(old) and old not in zygotes_of(pool)
        assert_serves(pool)


def test_close_leaves_no_process_behind() -> None:
    pool = SandboxPool(size=2, preload=())
    try:
        pool.start()
        assert_serves(pool)
        started = zygotes_of(pool)
        # Each zygote keeps a spare child forked (the one that just served forks its next one meanwhile).
        assert wait_until(lambda: all(len(descendants(pid)) == 1 for pid in started))
        processes = started | {child for pid in started for child in descendants(pid)}
        assert len(started) == 2 and len(processes) == 4
        uids = pool.uids
    finally:
        pool.close()
    assert [pid for pid in processes if alive(pid)] == []
    for uid in uids:
        assert live_processes_of(uid) == []
    pool.close()  # idempotent
    with pytest.raises(SandboxError):
        pool.run(request(OK_CODE))


def test_close_ends_a_running_task() -> None:
    pool = SandboxPool(size=1, preload=())
    outcomes: list[SandboxOutcome] = []
    with pool:
        (zygote,) = zygotes_of(pool)
        runner = threading.Thread(target=lambda: outcomes.append(pool.run(request(SLEEP_CODE))))
        runner.start()
        assert wait_until(lambda: not pool._idle)  # checked out: the task is on its way or running
    runner.join(30)
    (outcome,) = outcomes
    assert (outcome.status, outcome.error_type) == ("failed", "SandboxCrashed")
    assert not alive(zygote)


@needs_separate_user
def test_close_kills_what_a_running_task_left_behind() -> None:
    # The zygote is killed mid-task, so its own clean-up never runs: the daemon is init's now, and the pool kills it.
    code = DAEMON_CODE.replace("    return {", "    time.sleep(60)\n    return {")
    pool = SandboxPool(size=1, preload=())
    outcomes: list[SandboxOutcome] = []
    with pool:
        (uid,) = pool.uids
        runner = threading.Thread(target=lambda: outcomes.append(pool.run(request(code))))
        runner.start()
        assert wait_until(lambda: len(live_processes_of(uid)) == 2)  # the task's child and its daemon
    runner.join(30)
    assert [o.error_type for o in outcomes] == ["SandboxCrashed"]
    assert live_processes_of(uid) == []


def test_pool_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SandboxPool(size=0)


def test_preloading_a_missing_module_is_skipped() -> None:
    with SandboxPool(size=1, preload=("json", "no_such_module_for_preload")) as pool:
        assert_serves(pool)
        assert pool._zygotes[0].ready is not None
        assert pool._zygotes[0].ready.preloaded == ["json"]


def test_run_cold() -> None:
    before = zygotes()
    code = "from wrapper import sdk\ndef handler(item):\n    sdk.note('k', item)\n    return {'item': item}\n"
    outcome = run_cold(request(code, {"item": "fries"}))
    assert outcome.status == "succeeded", outcome
    assert outcome.output == {"item": "fries"} and outcome.notes == (("k", "fries"),)
    failed = run_cold(request("def handler():\n    raise KeyError('x')\n"))
    assert (failed.status, failed.error_type) == ("failed", "KeyError")
    assert zygotes() == before


# ------------------------------------------------------------------ isolation on this machine


def _unshare_works() -> bool:
    tool = shutil.which("unshare")
    if tool is None:
        return False
    return subprocess.run([tool, "--net", "--mount", "true"], capture_output=True, check=False).returncode == 0


def test_capabilities_of_this_machine(pool: SandboxPool) -> None:
    assert pool.capabilities == CAPABILITIES
    if os.geteuid() != 0:
        assert not (CAPABILITIES.separate_user or CAPABILITIES.network_namespace or CAPABILITIES.mount_namespace)
        return
    if not _unshare_works():
        pytest.skip("root, but unshare(1) fails here (a restricted container): capabilities may be partial")
    assert CAPABILITIES.separate_user and CAPABILITIES.network_namespace and CAPABILITIES.mount_namespace


@needs_full_isolation
def test_child_runs_under_its_own_uid_without_network_or_descriptors(pool: SandboxPool) -> None:
    code = """
import os, socket

def handler():
    fds = []
    for fd in range(64):
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            pass
    return {
        "ids": [os.getuid(), os.geteuid(), os.getgid()],
        "groups": os.getgroups(),
        "interfaces": [name for _, name in socket.if_nameindex()],
        "fds": fds,
        "tmp": os.listdir("/tmp"),
        "cwd": os.getcwd(),
    }
"""
    outcome = pool.run(request(code))
    assert outcome.status == "succeeded", outcome
    uid = outcome.output["ids"][0]
    assert uid in pool.uids and outcome.output["ids"] == [uid, uid, uid]
    assert outcome.output["groups"] == []
    assert outcome.output["interfaces"] == ["lo"]
    assert outcome.output["fds"] == [0, 1, 2, 3]
    # Its private /tmp holds its working directory, and nothing else but the interpreter's or the project's own
    # directories when they live under /tmp (a checkout there), bound back read-only.
    kept = {path.split("/")[2] for path in in_scratch([sys.base_prefix, sys.prefix, *sys.path])}
    assert "task" in outcome.output["tmp"] and set(outcome.output["tmp"]) - {"task"} <= kept
    assert outcome.output["cwd"] == "/tmp/task"


def test_network_allowed_reaches_the_loopback(pool: SandboxPool) -> None:
    code = (
        "import socket\ndef handler(port):\n"
        "    socket.create_connection(('127.0.0.1', port), timeout=5).close()\n    return True\n"
    )
    with socket.create_server(("127.0.0.1", 0)) as listener:
        outcome = pool.run(request(code, {"port": listener.getsockname()[1]}, network=True))
        assert outcome.status == "succeeded", outcome
        listener.settimeout(5)
        listener.accept()[0].close()


def test_fallback_without_root_still_cleans_up() -> None:
    # What a machine without root gets (forced here): no namespaces and no uid, but a temporary working directory
    # that is removed afterwards, a scrubbed environment, and the process tree killed after each task.
    zygote = Zygote(0, None, (), unprivileged=True)
    zygote.start()
    try:
        assert zygote.ready is not None
        assert not (zygote.ready.separate_user or zygote.ready.network_namespace or zygote.ready.mount_namespace)
        task = request(DAEMON_CODE, env={"SCOPED": "1"})
        outcome = zygote.run(task, encode(task), may_restart=lambda: False)
        assert outcome.status == "succeeded", outcome
        daemon, cwd = outcome.output["daemon"], outcome.output["cwd"]
        assert os.path.dirname(cwd) == tempfile.gettempdir() and "arbiter-sandbox-" in cwd
        assert wait_until(lambda: not alive(daemon) and not os.path.exists(cwd))
        task = request("import os\ndef handler():\n    return sorted(os.environ)\n", env={"SCOPED": "1"})
        outcome = zygote.run(task, encode(task), may_restart=lambda: False)
        assert set(outcome.output) <= {"PATH", "LANG", "LC_ALL", "TZ", "HOME", "TMPDIR", "SCOPED"}
    finally:
        zygote.stop()


ORPHAN_OWNER = """
import os, sys, threading, time
from wrapper.sandbox import SandboxPool
from wrapper.sandbox import SandboxLimits, SandboxRequest

pool = SandboxPool(size=1, preload=())
pool.start()
holder = os.fork()  # a forked process keeps a copy of the zygote's request pipe: no end of file when we die
if holder == 0:
    time.sleep(120)
    os._exit(0)
if sys.argv[1] == "busy":
    context = {"orchestration_id": "o-1", "task_id": "t-1", "attempt": 1, "agent": "a", "notes": {}}
    code = "import os, time\\ndef handler():\\n    os.fork()\\n    time.sleep(120)\\n"  # a child and a grandchild
    task = SandboxRequest(
        code=code.encode(), module_name="m", input={}, context=context, limits=SandboxLimits(timeout_seconds=120)
    )
    threading.Thread(target=pool.run, args=(task,), daemon=True).start()
print(*[zygote.pid for zygote in pool._zygotes], holder, flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("state", ["idle", "busy"])
def test_zygote_exits_when_its_owner_is_killed(state: str) -> None:
    # The pool's process killed with SIGKILL closes nothing itself: the zygotes must see it go, even when another
    # process holds their request pipe open, and take their task's child with them.
    owner = subprocess.Popen([sys.executable, "-c", ORPHAN_OWNER, state], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    zygote, holder = (int(pid) for pid in owner.stdout.readline().split())
    try:
        assert alive(zygote)
        if state == "busy":
            assert wait_until(lambda: len(descendants(zygote)) == 2)  # the task's child and grandchild
        children = descendants(zygote)
        owner.kill()
        owner.wait()
        assert wait_until(lambda: not alive(zygote))
        assert wait_until(lambda: not any(alive(child) for child in children))
    finally:
        owner.kill()
        owner.wait()
        owner.stdout.close()
        for pid in (zygote, holder):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(not CAPABILITIES.mount_namespace, reason="needs a private mount namespace (root)")
def test_a_package_under_tmp_stays_importable_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    # A checkout or a virtual environment in /tmp: the child's private tmpfs on /tmp must not hide it, or a module
    # that was not preloaded fails to import in the worker ("No module named ...").
    root = tempfile.mkdtemp(prefix="arbiter-lazy-")
    try:
        package = os.path.join(root, "lazy_package")
        os.mkdir(package)
        for name, text in (("__init__.py", ""), ("late.py", "VALUE = 'found'\n")):
            with open(os.path.join(package, name), "w") as handle:
                handle.write(text)
            os.chmod(os.path.join(package, name), 0o644)
        for directory in (root, package):
            os.chmod(directory, 0o755)
        monkeypatch.setenv("PYTHONPATH", root)
        code = "def handler():\n    from lazy_package import late\n    return late.VALUE\n"
        with SandboxPool(size=1, preload=()) as pool:
            outcome = pool.run(request(code))
            assert outcome.status == "succeeded", outcome
            assert outcome.output == "found"
            probe = f"/tmp/arbiter-probe-{os.getpid()}"
            written = pool.run(request(f"def handler():\n    open({probe!r}, 'w').write('1')\n    return 1\n"))
            assert written.status == "succeeded", written  # its /tmp is still a private, writable tmpfs
            assert not os.path.exists(probe)
            refused = pool.run(request(f"def handler():\n    open({root!r} + '/planted.py', 'w')\n"))
            assert refused.status == "failed"  # the code is bound back read-only
        assert not os.path.exists(os.path.join(root, "planted.py"))
    finally:
        shutil.rmtree(root, ignore_errors=True)
