"""The fork server: imports the heavy modules once, then runs each request in a fresh isolated child it supervises.

Run as ``python -m wrapper.sandbox._zygote`` by the pool, with a scrubbed environment (so no child can inherit a
secret from the application), over its stdin/stdout pipes (see ``_protocol``).

The zygote is trusted code and keeps every decision that matters out of the child's reach: it enforces the wall-clock
timeout (``killpg`` with SIGKILL), caps what it reads from the result pipe, and after every request kills whatever the
child left behind before it starts another. It is a *child subreaper*, so every orphan of the child's tree is
re-parented to it and can be found and reaped however it tried to escape (``setsid``, double fork); under a dedicated
uid, ``kill(-1)`` as that uid ends a fork bomb at once. If it cannot clean up it exits, and the pool starts a fresh one.
It also exits, with its task's tree, when the process that started it is gone: it watches that process itself (a pidfd)
rather than trust the end of file of its request pipe, which any process that inherited a copy of the pipe (a fork of
the application) would hold open.

Speed: the next child is forked ahead of its request (the "spare"), and a complete result is answered as soon as the
child closes its result pipe, before the kernel has torn the child down; the teardown, the clean-up and the next fork
then overlap with the pool's own work. Leftovers of a task are therefore killed a few milliseconds *after* its outcome
is returned, but always before the next task of this zygote starts.

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
from dataclasses import dataclass, field

from wrapper.sandbox import _child, _isolation, _landlock, _reaper
from wrapper.sandbox._protocol import RESULT_OVERHEAD, Control, Ready, Report, frame, header, read_frame, write_all

#: Time allowed to kill and reap what a child left behind before the zygote gives up and exits.
CLEANUP_SECONDS = 3.0
_CHUNK = 1024**2


@dataclass
class _Spare:
    pid: int
    go: int
    result: int
    workdir: str | None


@dataclass
class _Watch:
    result: bytearray = field(default_factory=bytearray)
    exited: bool = False
    eof: bool = False
    timed_out: bool = False
    overflow: bool = False
    abandoned: bool = False


def _read_some(fd: int, watch: _Watch, cap: int) -> None:
    try:
        chunk = os.read(fd, _CHUNK)
    except BlockingIOError:
        return
    if not chunk:
        watch.eof = True
        return
    watch.result += chunk
    watch.overflow = len(watch.result) > cap


def _watch(pid: int, result_fd: int, deadline: float, cap: int, owner: int) -> _Watch:
    """Collect the result until the child closes the pipe or exits, the deadline passes, or ``owner`` (a pidfd) ends."""
    watch = _Watch()
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    poller.register(result_fd, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    poller.register(owner, select.POLLIN)
    try:
        # An empty pipe closed early is no result: keep waiting for the exit (or the deadline) then.
        while not (watch.exited or (watch.eof and watch.result) or watch.overflow or watch.abandoned):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                watch.timed_out = True
                break
            for fd, _ in poller.poll(math.ceil(remaining * 1000)):
                if fd == pidfd:
                    watch.exited = True
                elif fd == owner:
                    watch.abandoned = True
                else:
                    _read_some(result_fd, watch, cap)
                    if watch.eof:
                        poller.unregister(result_fd)
    finally:
        os.close(pidfd)
    return watch


def _drain(result_fd: int, watch: _Watch, cap: int) -> None:
    """Read what the child wrote before it exited (a grandchild may hold the pipe open: never block)."""
    os.set_blocking(result_fd, False)
    while not (watch.eof or watch.overflow):
        before = len(watch.result)
        _read_some(result_fd, watch, cap)
        if len(watch.result) == before and not watch.eof:
            return


def _kill_tree(pid: int) -> None:
    for kill in (os.killpg, os.kill):  # the child leads its own group; it is unreaped, so neither id is reused yet
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _open_owner() -> int | None:
    """A pidfd of the process that started us, or ``None`` if it has already gone (we are init's or a subreaper's)."""
    owner = os.getppid()
    try:
        pidfd = os.pidfd_open(owner)
    except ProcessLookupError:
        return None
    if os.getppid() != owner:  # it died between the two calls, and its pid may already be another process's
        os.close(pidfd)
        return None
    return pidfd


class Server:
    """Serves requests one at a time, each in a fresh child, for as long as its owner (a pidfd) lives."""

    def __init__(self, plan: _isolation.Plan, requests: int, replies: int, owner: int) -> None:
        self.plan = plan
        self.requests = requests
        self.replies = replies
        self.owner = owner
        self.pid = os.getpid()
        self.spare: _Spare | None = None

    def next_request(self) -> tuple[bytearray, bytearray] | None:
        """Wait for a request; ``None`` at the end of the requests or when the owner is gone."""
        poller = select.poll()
        poller.register(self.requests, select.POLLIN)
        poller.register(self.owner, select.POLLIN)
        ready = {fd for fd, _ in poller.poll()}
        if self.owner in ready:
            return None
        control = read_frame(self.requests)
        payload = read_frame(self.requests) if control is not None else None
        if control is None or payload is None:
            return None
        return control, payload

    def prefork(self) -> None:
        """Fork the child of the next request (it waits for it on a pipe)."""
        if self.spare is not None:
            return
        workdir = None
        if not self.plan.mount_namespace:
            workdir = tempfile.mkdtemp(prefix="arbiter-sandbox-")
            if self.plan.uid is not None:
                os.chown(workdir, self.plan.uid, self.plan.uid)
        go_read, go_write = os.pipe2(os.O_CLOEXEC)
        result_read, result_write = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            os.close(go_write)
            os.close(result_read)
            inherited = (self.requests, self.replies)
            _child.run(_child.Spare(go_read, result_write, self.plan, self.pid, workdir, inherited))
        os.close(go_read)
        os.close(result_write)
        self.spare = _Spare(pid, go_write, result_read, workdir)

    def discard_spare(self) -> None:
        """Let the waiting child go (it sees end of file and exits) and reap it."""
        spare, self.spare = self.spare, None
        if spare is not None:
            os.close(spare.go)
            os.close(spare.result)
            _reaper.wait_exit(spare.pid, time.monotonic() + CLEANUP_SECONDS)
            if spare.workdir is not None:
                shutil.rmtree(spare.workdir, ignore_errors=True)

    def _reply(self, report: Report, result: bytearray) -> None:
        write_all(self.replies, frame(report.model_dump_json().encode()) + frame(result))
        result[:] = bytes(len(result))  # best effort: the next child should not find this task's output in memory

    def serve(self, control: bytearray, payload: bytearray) -> bool:
        """Run one request, reply, clean up. ``False`` if what the child left behind could not be killed."""
        limits = Control.model_validate_json(control).limits
        self.prefork()
        spare, self.spare = self.spare, None
        assert spare is not None
        cap = limits.output_bytes + RESULT_OVERHEAD
        started = time.monotonic()
        try:
            write_all(spare.go, frame(control))
            write_all(spare.go, header(len(payload)))
            write_all(spare.go, payload)  # straight from the buffer: no copy of the request's env lingers here
        except BrokenPipeError:
            pass  # the spare died: it is reported below like any child that ended without a result
        finally:
            os.close(spare.go)
            payload[:] = bytes(len(payload))
        try:
            timeout = limits.timeout_seconds
            if limits.deadline is not None:  # an absolute end: whatever time the request spent getting here counts
                timeout = max(0.0, min(timeout, limits.deadline - time.time()))
            watch = _watch(spare.pid, spare.result, started + timeout, cap, self.owner)
            _kill_tree(spare.pid)  # done, out of time or over the cap: in every case nothing of it may go on
            # A complete result: answer now; how the process ended no longer matters.
            early = watch.eof and bool(watch.result) and not watch.overflow
            if early:
                self._reply(Report(duration_ms=(time.monotonic() - started) * 1000), watch.result)
            _, status, usage = os.wait4(spare.pid, 0)
            report = Report(
                exit_code=os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                signal=os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                timed_out=watch.timed_out,
                overflow=watch.overflow,
                duration_ms=(time.monotonic() - started) * 1000,
                cpu_seconds=usage.ru_utime + usage.ru_stime,
            )
            if not (early or watch.timed_out or watch.overflow):
                _drain(spare.result, watch, cap)
        finally:
            os.close(spare.result)
        report.clean = _reaper.reap_descendants(self.plan.uid, time.monotonic() + CLEANUP_SECONDS)
        if spare.workdir is not None:
            shutil.rmtree(spare.workdir, ignore_errors=True)  # fd-based: a planted symlink cannot redirect it
        if watch.abandoned:
            return False  # nobody to answer: the caller exits
        if not early:
            self._reply(report, watch.result)
        return report.clean


def _preload(names: list[str]) -> list[str]:
    loaded = []
    for name in names:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name not in (name, name.split(".")[0]):
                raise
            continue  # not installed here: the workers that need it will fail to import it, clearly
        loaded.append(name)
    return loaded


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
    # Behave as without root (no namespaces, no uid): how the fallback is exercised on a machine that has root.
    parser.add_argument("--unprivileged", action="store_true")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the pool stops us; a terminal's Ctrl-C is for the application
    _isolation.prctl(_isolation.PR_SET_CHILD_SUBREAPER, 1)
    _isolation.prctl(_isolation.PR_SET_DUMPABLE, 0)  # same-uid processes cannot ptrace us or read our memory
    os.chdir("/")
    requests, replies = _private_pipes()
    if args.unprivileged:
        found = {"separate_user": False, "network_namespace": False, "mount_namespace": False}
    else:
        found = _isolation.probe(args.uid if args.uid >= 0 else _isolation.DEFAULT_UID_BASE)
    separate_user = found["separate_user"] and args.uid >= 0
    # Without a uid of their own, children share ours: Landlock (where the kernel has it) is what keeps them off
    # our ancestors, our files and the network.
    landlock = 0 if separate_user else _landlock.abi()
    plan = _isolation.Plan(
        uid=args.uid if separate_user else None,
        mount_namespace=found["mount_namespace"],
        network_namespace=found["network_namespace"],
        expose=_isolation.unreachable([sys.base_prefix, sys.prefix, *sys.path]) if separate_user else (),
        keep=_isolation.in_scratch([sys.base_prefix, sys.prefix, *sys.path]) if found["mount_namespace"] else (),
        landlock=landlock > 0,
        readable=_landlock.readable_paths() if landlock else (),
    )
    owner = _open_owner()
    if owner is None:
        return 1
    # What a previous holder of the uid left (its zygote died, its orphans went to init) must not meet our tasks.
    if plan.uid is not None and not _isolation.clear_uid(plan.uid, CLEANUP_SECONDS):
        return 1
    preloaded = _preload([name for name in args.preload.split(",") if name])
    gc.freeze()  # keep the preloaded objects out of the collector's sight: children then share their pages
    server = Server(plan, requests, replies, owner)
    if not args.one_shot:
        server.prefork()
    ready = Ready(
        pid=server.pid,
        separate_user=separate_user,
        network_namespace=plan.network_namespace,
        mount_namespace=plan.mount_namespace,
        landlock=landlock,
        preloaded=preloaded,
    )
    write_all(replies, frame(ready.model_dump_json().encode()))
    try:
        while (request := server.next_request()) is not None:
            if not server.serve(*request) or args.one_shot:
                return 0
            server.prefork()
        return 0
    finally:
        server.discard_spare()


if __name__ == "__main__":
    sys.exit(main())
