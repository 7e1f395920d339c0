"""The fork server: imports the heavy modules once, then forks one isolated child per request and supervises it.

Run as ``python -m wrapper.sandbox._zygote`` by the pool, with a scrubbed environment (so no child can inherit a
secret from the application), over its stdin/stdout pipes (see ``_protocol``).

The zygote is trusted code and keeps every decision that matters out of the child's reach: it enforces the wall-clock
timeout (``killpg`` with SIGKILL), caps what it reads from the result pipe, and after every request kills whatever the
child left behind. It is a *child subreaper*, so every orphan of the child's tree is re-parented to it and can be
found and reaped however it tried to escape (``setsid``, double fork); under a dedicated uid, ``kill(-1)`` as that uid
ends a fork bomb at once. If it cannot clean up it says so and exits, and the pool starts a fresh one.

It is single-threaded on purpose: it forks.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import math
import os
import select
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass

from wrapper.sandbox import _child, _isolation
from wrapper.sandbox._protocol import RESULT_OVERHEAD, Control, Ready, Report, frame, read_frame, write_all

#: Time allowed to kill and reap what a child left behind before the zygote gives up and exits.
CLEANUP_SECONDS = 3.0
_CHUNK = 1024**2


@dataclass
class _Supervision:
    result: bytearray
    exited: bool = False
    timed_out: bool = False
    overflow: bool = False


def _preload(names: list[str]) -> list[str]:
    loaded = []
    for name in names:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name.split(".")[0] and exc.name != name:
                raise
            continue  # not installed here: the workers that need it will fail to import it, clearly
        loaded.append(name)
    return loaded


def _supervise(pid: int, read_end: int, deadline: float, cap: int) -> _Supervision:
    """Collect the result while waiting for the child to exit or the deadline to pass."""
    state = _Supervision(bytearray())
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    poller.register(read_end, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    try:
        while not state.exited:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                state.timed_out = True
                break
            for fd, _ in poller.poll(math.ceil(remaining * 1000)):
                if fd == pidfd:
                    state.exited = True
                elif not _read_some(read_end, state, cap):
                    poller.unregister(read_end)
            if state.overflow:
                break
    finally:
        os.close(pidfd)
    return state


def _read_some(read_end: int, state: _Supervision, cap: int) -> bool:
    """Read what is there; ``False`` at end of file or past the cap."""
    try:
        chunk = os.read(read_end, _CHUNK)
    except BlockingIOError:
        return True
    if not chunk:
        return False
    state.result += chunk
    if len(state.result) > cap:
        state.overflow = True
        return False
    return True


def _drain(read_end: int, state: _Supervision, cap: int) -> None:
    """Read what the child wrote before it exited (a grandchild may hold the pipe open: never block)."""
    os.set_blocking(read_end, False)
    while True:
        try:
            chunk = os.read(read_end, _CHUNK)
        except BlockingIOError:
            return
        if not chunk:
            return
        state.result += chunk
        if len(state.result) > cap:
            state.overflow = True
            return


def _kill_tree(pid: int) -> None:
    for kill in (os.killpg, os.kill):  # the child leads its own group; it is unreaped, so neither id is reused yet
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def serve(control: Control, payload: bytearray, plan: _isolation.Plan) -> tuple[Report, bytearray]:
    """Run one request in a fresh child and report how it ended."""
    limits = control.limits
    workdir = None
    if not plan.mount_namespace:
        workdir = tempfile.mkdtemp(prefix="arbiter-sandbox-")
        if plan.uid is not None:
            os.chown(workdir, plan.uid, plan.uid)
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    started = time.monotonic()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _child.run(_child.Request(payload, write_end, limits, plan, parent, workdir))
    os.close(write_end)
    payload[:] = bytes(len(payload))  # the next child must not find this request (its env, its input) in memory
    try:
        state = _supervise(pid, read_end, started + limits.timeout_seconds, limits.output_bytes + RESULT_OVERHEAD)
        _kill_tree(pid)
        _, status, usage = os.wait4(pid, 0)
        duration_ms = (time.monotonic() - started) * 1000
        if not (state.timed_out or state.overflow):
            _drain(read_end, state, limits.output_bytes + RESULT_OVERHEAD)
    finally:
        os.close(read_end)
    clean = _isolation.reap_descendants(plan.uid, time.monotonic() + CLEANUP_SECONDS)
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)  # fd-based: a planted symlink cannot redirect it
    report = Report(
        exit_code=os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        signal=os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        timed_out=state.timed_out,
        overflow=state.overflow,
        duration_ms=duration_ms,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        clean=clean,
    )
    return report, state.result


def _clear_uid(uid: int) -> bool:
    """Kill what a previous holder of the uid left (its zygote died, its orphans went to init)."""
    deadline = time.monotonic() + CLEANUP_SECONDS
    while _isolation.uid_processes(uid):
        if time.monotonic() >= deadline:
            return False
        _isolation.kill_uid(uid)
        time.sleep(0.01)  # they are init's to reap now: give it a moment
    return True


def _private_pipes() -> tuple[int, int]:
    """Move the protocol off fds 0/1, so that a stray ``print`` (a preloaded module's, say) goes to stderr."""
    requests, replies = os.dup(0), os.dup(1)  # non-inheritable copies
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    return requests, replies


def main(argv: list[str] | None = None) -> int:
    """Serve requests from stdin until end of file."""
    parser = argparse.ArgumentParser(prog="wrapper.sandbox._zygote")
    parser.add_argument("--uid", type=int, default=-1)
    parser.add_argument("--preload", default="")
    parser.add_argument("--one-shot", action="store_true")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the pool stops us; a terminal's Ctrl-C is for the application
    _isolation.prctl(_isolation.PR_SET_CHILD_SUBREAPER, 1)
    _isolation.prctl(_isolation.PR_SET_DUMPABLE, 0)  # same-uid processes cannot ptrace us or read our memory
    os.chdir("/")
    requests, replies = _private_pipes()
    found = _isolation.probe(args.uid if args.uid >= 0 else _isolation.DEFAULT_UID_BASE)
    separate_user = found["separate_user"] and args.uid >= 0
    plan = _isolation.Plan(
        uid=args.uid if separate_user else None,
        mount_namespace=found["mount_namespace"],
        network_namespace=found["network_namespace"],
    )
    if plan.uid is not None and not _clear_uid(plan.uid):
        return 1
    preloaded = _preload([name for name in args.preload.split(",") if name])
    gc.freeze()  # keep the preloaded objects out of the collector's sight: children then share their pages
    ready = Ready(
        pid=os.getpid(),
        separate_user=separate_user,
        network_namespace=plan.network_namespace,
        mount_namespace=plan.mount_namespace,
        preloaded=preloaded,
    )
    write_all(replies, frame(ready.model_dump_json().encode()))
    while True:
        control_frame = read_frame(requests)
        if control_frame is None:
            return 0
        payload = read_frame(requests)
        if payload is None:
            return 0
        report, result = serve(Control.model_validate_json(control_frame), payload, plan)
        write_all(replies, frame(report.model_dump_json().encode()) + frame(result))
        result[:] = bytes(len(result))
        if args.one_shot or not report.clean:
            return 0


if __name__ == "__main__":
    sys.exit(main())
