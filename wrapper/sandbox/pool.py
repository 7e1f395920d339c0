"""The warm pool of fork servers that runs untrusted worker code, and its cold (one interpreter per task) variant.

A fork server ("zygote") is a separate, long-lived Python process started with a scrubbed environment; it imports
the heavy modules (``strands``) once and forks one isolated child per task, so a task pays for a fork, not for an
interpreter and its imports. Why a separate process rather than forking the application: the application holds
secrets (environment, open store connections, credentials in memory) and threads; a zygote holds none of them.

What the child gets, and why, is described in ``_isolation`` (namespaces, dedicated uid, rlimits), ``_landlock``
(where there is no dedicated uid) and ``_child`` (scrubbed environment, closed descriptors). Before it starts any
zygote the application makes itself non-dumpable (see ``_handle``): a child that shares its uid cannot read its
environment or memory through ``/proc``. Nothing a worker does raises out of :meth:`SandboxPool.run`: it becomes a
failed or timed-out :class:`SandboxOutcome`.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import TracebackType

from wrapper.exceptions import SandboxError
from wrapper.sandbox import _isolation, _landlock
from wrapper.sandbox._handle import Zygote, encode, with_limits, zygote_environment
from wrapper.sandbox._leases import UidLease, lease_uid
from wrapper.sandbox._outcome import failed
from wrapper.sandbox._types import SandboxCapabilities, SandboxOutcome, SandboxRequest

__all__ = ["SandboxPool", "StartFence", "run_cold", "sandbox_capabilities"]

logger = logging.getLogger(__name__)

#: Returns the latest time (epoch seconds) a request may start, or ``None`` if it must not run; see ``SandboxPool.run``.
StartFence = Callable[[], float | None]
_NOT_STARTED = "NotStarted"

#: How long :meth:`SandboxPool.close` waits for interrupted tasks to hand their zygote back.
_CLOSE_SECONDS = 30.0


@functools.cache
def sandbox_capabilities() -> SandboxCapabilities:
    """Probe which protections this machine grants (root? namespaces?), once per process.

    The probe runs in a short-lived interpreter, because trying namespaces means forking and this process may have
    threads.
    """
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return SandboxCapabilities(
            separate_user=False, network_namespace=False, mount_namespace=False, landlock=_landlock.abi()
        )
    try:
        probe = subprocess.run(
            [sys.executable, "-I", "-S", _isolation.__file__, "probe", str(_isolation.DEFAULT_UID_BASE)],
            env=zygote_environment(),
            cwd="/",
            capture_output=True,
            timeout=60,
            check=True,
        )
        found = json.loads(probe.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        logger.warning("could not probe the sandbox capabilities; assuming none", exc_info=True)
        return SandboxCapabilities(
            separate_user=False, network_namespace=False, mount_namespace=False, landlock=_landlock.abi()
        )
    return SandboxCapabilities(
        separate_user=bool(found["separate_user"]),
        network_namespace=bool(found["network_namespace"]),
        mount_namespace=bool(found["mount_namespace"]),
        landlock=0 if found["separate_user"] else _landlock.abi(),
    )


def _lease(uid_base: int | None) -> UidLease | None:
    """A dedicated uid where we can switch to one (root), else ``None``."""
    if os.geteuid() != 0:
        return None
    return lease_uid(_isolation.DEFAULT_UID_BASE if uid_base is None else uid_base)


def _invalid(exc: Exception) -> SandboxOutcome:
    return failed("InvalidRequest", f"the request cannot be sent to the sandbox: {exc}", retryable=False)


class SandboxPool:
    """A warm pool of ``size`` zygotes; :meth:`run` is thread-safe and blocks while all of them are busy.

    Zygotes start on :meth:`start`, on entering the ``with`` block or on the first :meth:`run`.

    Args:
        size: number of zygotes, i.e. of tasks that run at the same time.
        preload: modules each zygote imports once (a module that is not installed is skipped).
        uid_base: first user id the children may run under (when the pool runs as root); each zygote leases its own
            free uid at or above it. Defaults to 61000.
    """

    def __init__(self, size: int = 2, *, preload: Sequence[str] = ("strands",), uid_base: int | None = None) -> None:
        if size < 1:
            raise ValueError("a sandbox pool needs at least one zygote")
        self._size = size
        self._preload = tuple(preload)
        self._uid_base = uid_base
        self._cond = threading.Condition()
        self._zygotes: list[Zygote] = []
        self._idle: list[Zygote] = []
        self._leases: list[UidLease] = []
        self._started = False
        self._closed = False

    def start(self) -> SandboxPool:
        """Start the zygotes (in parallel) and wait until they are ready; idempotent.

        Raises:
            SandboxError: a zygote did not start, or the pool is closed.
        """
        with self._cond:
            if self._closed:
                raise SandboxError("the sandbox pool is closed")
            if self._started:
                return self
            try:
                for slot in range(self._size):
                    lease = _lease(self._uid_base)
                    if lease is not None:
                        self._leases.append(lease)
                    self._zygotes.append(Zygote(slot, lease.uid if lease else None, self._preload))
                for zygote in self._zygotes:
                    zygote.spawn()
                for zygote in self._zygotes:
                    zygote.wait_ready()
            except BaseException:
                self._teardown()
                self._zygotes.clear()
                raise
            self._idle = list(self._zygotes)
            self._started = True
        return self

    @property
    def capabilities(self) -> SandboxCapabilities:
        """The protections the children get (as the zygotes found them, else as probed)."""
        ready = next((z.ready for z in self._zygotes if z.ready is not None), None)
        if ready is None:
            return sandbox_capabilities()
        return SandboxCapabilities(
            separate_user=ready.separate_user,
            network_namespace=ready.network_namespace,
            mount_namespace=ready.mount_namespace,
            landlock=ready.landlock,
        )

    @property
    def uids(self) -> tuple[int, ...]:
        """The user ids the children run under (empty unless the pool runs as root)."""
        return tuple(lease.uid for lease in self._leases)

    def run(self, request: SandboxRequest, *, fence: StartFence | None = None) -> SandboxOutcome:
        """Run one request in an isolated child of a free zygote.

        Args:
            request: what to run.
            fence: called once a zygote is free, right before the request is sent (starting the pool and waiting for
                a zygote may take seconds): returns the latest time the handler may start (seconds since the
                epoch, or ``math.inf``), or ``None`` when it must not run at all any more. The child checks that
                bound again right before it calls the handler.

        Returns:
            The outcome; ``timed_out`` with ``error_type="NotStarted"`` when the fence refused the request.

        Raises:
            SandboxError: the sandbox machinery failed (a zygote could not be restarted) or the pool is closed.
        """
        try:
            frames = encode(request)
        except (ValueError, UnicodeError) as exc:
            return _invalid(exc)
        self.start()
        with self._cond:
            self._cond.wait_for(lambda: self._idle or self._closed)
            if self._closed:
                raise SandboxError("the sandbox pool is closed")
            zygote = self._idle.pop(0)  # the longest idle: it has certainly finished cleaning up after its last task
        try:
            if fence is not None:
                bound = fence()
                if bound is None:
                    refused = "the start fence refused the request"
                    return failed(_NOT_STARTED, refused, retryable=True, status="timed_out")
                if bound != math.inf:
                    request = replace(request, limits=replace(request.limits, start_by=bound))
                    frames = with_limits(frames, request.limits)
            return zygote.run(request, frames, may_restart=lambda: not self._closed)
        finally:
            with self._cond:
                self._idle.append(zygote)
                self._cond.notify_all()

    def close(self) -> None:
        """Stop every zygote and everything they started; tasks still running end as failed. Idempotent."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            busy = [z for z in self._zygotes if z not in self._idle]
            self._cond.notify_all()
        for zygote in busy:
            zygote.interrupt()
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._idle) == len(self._zygotes), timeout=_CLOSE_SECONDS):
                logger.warning("busy=<%d> | sandbox tasks did not end after their zygotes were killed", len(busy))
            self._teardown()

    def _teardown(self) -> None:
        for zygote in self._zygotes:
            zygote.stop()
        for lease in self._leases:
            lease.release()
        self._leases.clear()

    def __enter__(self) -> SandboxPool:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def run_cold(request: SandboxRequest, *, uid_base: int | None = None) -> SandboxOutcome:
    """Run one request with the same isolation in a brand-new interpreter, nothing preloaded.

    The cold figure of the benchmark, and a fallback where a warm pool is not worth keeping.

    Raises:
        SandboxError: the interpreter could not be started.
    """
    try:
        frames = encode(request)
    except (ValueError, UnicodeError) as exc:
        return _invalid(exc)
    lease = _lease(uid_base)
    zygote = Zygote(-1, lease.uid if lease else None, (), one_shot=True)
    try:
        zygote.start()
        return zygote.run(request, frames, may_restart=lambda: False)
    finally:
        zygote.stop()
        if lease is not None:
            lease.release()
