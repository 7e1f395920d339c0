"""One zygote process as the pool sees it: start it, send it a request with a deadline, kill and replace it."""

from __future__ import annotations

import logging
import os
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import ValidationError

from wrapper.exceptions import SandboxError
from wrapper.sandbox import _isolation
from wrapper.sandbox._outcome import crashed, failed, from_report
from wrapper.sandbox._protocol import Control, FrameError, Payload, Ready, Report, frame, receive, send
from wrapper.sandbox._types import SandboxLimits, SandboxOutcome, SandboxRequest

logger = logging.getLogger(__name__)

#: Time a zygote gets to answer beyond the request's own timeout (forking, cleaning up, writing the result).
GRACE_SECONDS = 5.0
#: Time a zygote gets to import its preloaded modules and say it is ready.
STARTUP_SECONDS = 120.0
#: Time a zygote gets to exit after its input is closed.
STOP_SECONDS = 5.0
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def zygote_environment() -> dict[str, str]:
    """The zygote's whole environment: enough to find Python and this package, nothing of the application's."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "TZ", "VIRTUAL_ENV") or k.startswith("LC_")}
    env.setdefault("PATH", os.defpath)
    paths = [_PACKAGE_ROOT, *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in paths if p))
    env["HOME"] = "/nonexistent"
    return env


def encode(request: SandboxRequest) -> bytes:
    """The two frames of a request.

    Raises:
        ValueError: the input, context or env cannot be sent as JSON.
    """
    control = Control(limits=request.limits)
    payload = Payload(
        code=request.code.decode("latin-1"),
        module_name=request.module_name,
        entrypoint=request.entrypoint,
        input=dict(request.input),
        context=dict(request.context),
        env=dict(request.env),
    )
    try:
        return frame(control.model_dump_json().encode()) + frame(payload.model_dump_json().encode())
    except TypeError as exc:
        raise ValueError(str(exc)) from exc


def with_limits(frames: bytes, limits: SandboxLimits) -> bytes:
    """The frames of :func:`encode` with the control frame (the first) replaced by one carrying ``limits``."""
    (size,) = struct.unpack(">I", frames[:4])
    return frame(Control(limits=limits).model_dump_json().encode()) + frames[4 + size :]


def protect_host() -> None:
    """Make this process non-dumpable, before it starts any zygote (idempotent; Linux only).

    A process may read ``/proc/PID/environ`` and ``/proc/PID/mem`` of every *dumpable* process of its uid. Without
    root the children share our uid, so our exec-time environment (on Lambda: the function role's credentials) would
    be theirs to read. Non-dumpable, it is refused to every process without ``CAP_SYS_PTRACE``: the cost is that a
    debugger or profiler (``py-spy``) needs root to attach to us, and we write no core dumps.
    """
    if sys.platform.startswith("linux"):
        _isolation.prctl(_isolation.PR_SET_DUMPABLE, 0)


def kill_uid_processes(uid: int) -> None:
    """Kill every process of ``uid`` (from a fresh single-threaded helper interpreter: killing them means forking)."""
    try:
        subprocess.run(
            [sys.executable, "-I", "-S", _isolation.__file__, "kill-uid", str(uid)],
            env=zygote_environment(),
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        logger.warning("uid=<%s> | could not kill the processes left under the sandbox uid", uid, exc_info=True)


class Zygote:
    """A zygote process and its pipes. Used by one thread at a time, except for :meth:`interrupt`."""

    def __init__(
        self, slot: int, uid: int | None, preload: Sequence[str], *, one_shot: bool = False, unprivileged: bool = False
    ) -> None:
        self.slot = slot
        self.uid = uid
        self.ready: Ready | None = None
        self._preload = tuple(preload)
        self._options = (["--one-shot"] if one_shot else []) + (["--unprivileged"] if unprivileged else [])
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # guards _proc against interrupt() from a closing thread

    @property
    def pid(self) -> int | None:
        """The zygote's process id while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self) -> None:
        """Spawn and wait until ready."""
        self.spawn()
        self.wait_ready()

    def spawn(self) -> None:
        """Start the process (without waiting for it to be ready)."""
        uid = str(-1 if self.uid is None else self.uid)
        argv = [
            sys.executable,
            "-s",
            "-m",
            "wrapper.sandbox._zygote",
            "--uid",
            uid,
            "--preload",
            ",".join(self._preload),
        ]
        argv += self._options
        protect_host()
        # Its own session: a terminal's signals are for the application, and the pool decides when zygotes end.
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=zygote_environment(),
            cwd="/",
            bufsize=0,
            start_new_session=True,
        )
        assert proc.stdin is not None and proc.stdout is not None
        os.set_blocking(proc.stdin.fileno(), False)
        os.set_blocking(proc.stdout.fileno(), False)
        with self._lock:
            self._proc = proc
        logger.debug("slot=<%s>, pid=<%s>, uid=<%s> | started zygote", self.slot, proc.pid, self.uid)

    def wait_ready(self) -> Ready:
        """Wait for the ready frame.

        Raises:
            SandboxError: the zygote did not start.
        """
        proc = self._running()
        try:
            assert proc.stdout is not None
            self.ready = Ready.model_validate_json(receive(proc.stdout.fileno(), time.monotonic() + STARTUP_SECONDS))
        except (FrameError, ValidationError, OSError) as exc:
            self.kill()
            raise SandboxError(f"sandbox zygote {self.slot} did not start: {exc}") from None
        return self.ready

    def run(self, request: SandboxRequest, frames: bytes, *, may_restart: Callable[[], bool]) -> SandboxOutcome:
        """Execute one request; restart the zygote if it dies or hangs (when ``may_restart()``)."""
        for _ in range(2):
            if self.pid is None:
                if not may_restart():
                    return crashed("the sandbox process is gone and is not being replaced (the pool is closed)")
                self.restart()
            try:
                report, raw = self._exchange(frames, request.limits.timeout_seconds)
            except BrokenPipeError:
                # It died before reading the whole request, so nothing ran: send it again to a fresh zygote.
                logger.debug("slot=<%s> | zygote gone before the request; restarting", self.slot)
                self.kill()
                continue
            except (FrameError, ValidationError, OSError) as exc:
                logger.warning("slot=<%s>, reason=<%s> | zygote died or hung; replacing it", self.slot, exc)
                self.kill()
                if may_restart():
                    self.restart()
                return crashed(f"the sandbox process died or stopped answering: {exc}")
            if not report.clean:
                logger.warning("slot=<%s> | zygote could not clean up after a task; replacing it", self.slot)
                self.kill()
                if may_restart():
                    self.restart()
            return from_report(report, raw, request.limits)
        return failed("SandboxCrashed", "the sandbox process kept dying before it read the request", retryable=True)

    def _exchange(self, frames: bytes, timeout: float) -> tuple[Report, bytes]:
        proc = self._running()
        assert proc.stdin is not None and proc.stdout is not None
        deadline = time.monotonic() + timeout + GRACE_SECONDS
        send(proc.stdin.fileno(), frames, deadline)
        report = Report.model_validate_json(receive(proc.stdout.fileno(), deadline))
        return report, receive(proc.stdout.fileno(), deadline)

    def _running(self) -> subprocess.Popen[bytes]:
        proc = self._proc
        if proc is None:
            raise FrameError("the zygote is not running")
        return proc

    def restart(self) -> None:
        """Replace the process.

        Raises:
            SandboxError: the new zygote did not start.
        """
        self.kill()
        self.start()

    def interrupt(self) -> None:
        """SIGKILL the process from another thread (the thread using it then sees it die)."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()

    def kill(self) -> None:
        """SIGKILL the process, reap it, and kill what its children left under the sandbox uid."""
        self._end(graceful=False)

    def stop(self) -> None:
        """Close its input so that it exits on its own; kill it if it does not."""
        self._end(graceful=True)

    def _end(self, *, graceful: bool) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None:
            return
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.close()
        try:
            if graceful:
                proc.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            graceful = False
        if not graceful and proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
        # Its child died with it (parent-death signal); grandchildren that escaped went to init.
        if not graceful and self.uid is not None:
            kill_uid_processes(self.uid)
        logger.debug("slot=<%s>, pid=<%s>, graceful=<%s> | stopped zygote", self.slot, proc.pid, graceful)
