"""Linux isolation primitives for sandbox children: namespaces, a dedicated user id, rlimits and process cleanup.

Why each layer is there:

- **A dedicated unprivileged user id per pool slot** (root only). Under it the child cannot read the parent's
  ``/proc/PID/environ`` or memory, cannot signal root processes, cannot write root-owned files (the blackboard and
  registry files among them), and ``RLIMIT_NPROC`` becomes a real bound because the kernel counts processes per
  user. Every uid is leased exclusively (see ``pool``) so that killing "every process of the uid" after a task only
  ever hits that slot's own leftovers.
- **A private mount namespace** with fresh size-limited tmpfs on ``/tmp``, ``/var/tmp`` and ``/dev/shm``: whatever the
  child writes to the usual scratch places vanishes with it and never shows up on the host.
- **A private network namespace** (unless the request allows the network): it has no interface up, not even loopback,
  so nothing can be reached. Where namespaces are unavailable the child is *not* cut off the network; it then only
  lacks credentials, because its environment is scrubbed down to ``request.env``.
- ``PR_SET_NO_NEW_PRIVS`` so that no set-uid binary can give root back; ``PR_SET_PDEATHSIG`` so that a child never
  outlives its zygote.

This module uses the standard library only, so that ``python -I -S _isolation.py`` can probe a machine cheaply
without importing the package.
"""

from __future__ import annotations

import ctypes
import errno
import json
import math
import os
import resource
import select
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38

#: Scratch directories that get a private tmpfs in the mount namespace.
SCRATCH_DIRS = ("/tmp", "/var/tmp", "/dev/shm")
#: The child's working directory inside its private ``/tmp``.
NAMESPACE_WORKDIR = "/tmp/task"
#: Room above ``RLIMIT_AS`` that the child may claim back to report a ``MemoryError`` (the hard limit).
MEMORY_HEADROOM = 64 * 1024**2
DEFAULT_UID_BASE = 61000

_libc: ctypes.CDLL | None = None


class IsolationError(OSError):
    """A namespace, mount or privilege operation failed."""


@dataclass(frozen=True, slots=True)
class Plan:
    """How a zygote isolates its children, decided once from the probe.

    Attributes:
        uid: the dedicated user (and group) id, or ``None`` to stay under the zygote's own.
        mount_namespace: give each child a private mount namespace with fresh scratch tmpfs.
        network_namespace: give each child a private network namespace (unless the request allows the network).
    """

    uid: int | None
    mount_namespace: bool
    network_namespace: bool


def _c() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise IsolationError(code, f"{what}: {os.strerror(code)}")


def prctl(option: int, value: int) -> None:
    """Call ``prctl(option, value, 0, 0, 0)``."""
    libc = _c()
    _check(libc.prctl(ctypes.c_int(option), ctypes.c_ulong(value), 0, 0, 0), f"prctl({option})")


def unshare(flags: int) -> None:
    """Call ``unshare(flags)`` (Python 3.11 has no ``os.unshare``)."""
    _check(_c().unshare(ctypes.c_int(flags)), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    """Call ``mount(2)``."""

    def enc(value: str | None) -> bytes | None:
        return None if value is None else value.encode()

    libc = _c()
    result = libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data))
    _check(result, f"mount {target}")


def tie_to_parent(parent_pid: int) -> None:
    """Die with SIGKILL when the parent dies; exit now if it already has (the race the signal cannot cover)."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(1)


def enter_namespaces(*, mount_namespace: bool, network_namespace: bool, tmpfs_bytes: int) -> None:
    """Move the calling process into new mount and/or network namespaces and give it private scratch tmpfs."""
    flags = (CLONE_NEWNS if mount_namespace else 0) | (CLONE_NEWNET if network_namespace else 0)
    if not flags:
        return
    unshare(flags)
    if not mount_namespace:
        return
    # Without this, mounts made below would propagate back to the host where "/" is a shared mount (systemd).
    mount(None, "/", None, MS_REC | MS_PRIVATE, None)
    size = max(tmpfs_bytes, 1024**2)
    for path in SCRATCH_DIRS:
        if os.path.isdir(path):
            mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777")


def drop_privileges(uid: int) -> None:
    """Become ``uid:uid`` with no supplementary groups, irreversibly."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (uid, uid, uid):
        raise IsolationError(errno.EPERM, "the user id did not change")
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise IsolationError(errno.EPERM, "root could be regained after dropping privileges")


def _set_limit(which: int, soft: int, hard: int) -> None:
    # An unprivileged process may only lower a hard limit: clamp instead of failing where it is already lower.
    _, current_hard = resource.getrlimit(which)
    if current_hard != resource.RLIM_INFINITY:
        hard = min(hard, current_hard)
    resource.setrlimit(which, (min(soft, hard), hard))


def cpu_limit(timeout_seconds: float, cpu_seconds: int | None) -> int:
    """The ``RLIMIT_CPU`` soft limit of a request."""
    return cpu_seconds if cpu_seconds is not None else math.ceil(timeout_seconds) + 1


def set_limits(limits: Any, *, separate_user: bool) -> None:
    """Apply a ``SandboxLimits`` as rlimits to the calling process."""
    cpu = cpu_limit(limits.timeout_seconds, limits.cpu_seconds)
    _set_limit(resource.RLIMIT_CPU, cpu, cpu + 1)
    _set_limit(resource.RLIMIT_AS, limits.memory_bytes, limits.memory_bytes + MEMORY_HEADROOM)
    _set_limit(resource.RLIMIT_NOFILE, limits.open_files, limits.open_files)
    _set_limit(resource.RLIMIT_FSIZE, limits.file_size_bytes, limits.file_size_bytes)
    _set_limit(resource.RLIMIT_CORE, 0, 0)
    # RLIMIT_NPROC counts every process of the real uid: under a shared uid it must leave room for the others.
    processes = limits.processes if separate_user else len(uid_processes(os.getuid())) + limits.processes
    _set_limit(resource.RLIMIT_NPROC, processes, processes)


def claim_memory_headroom() -> None:
    """Raise the address-space soft limit to the hard limit, to report a ``MemoryError``."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))


def close_fds_except(keep: int) -> int:
    """Point 0/1/2 at /dev/null, move ``keep`` to fd 3 and close everything else. Returns the new fd."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    if devnull > 2 and devnull != keep:
        os.close(devnull)
    if keep != 3:
        os.dup2(keep, 3)  # dup2 clears close-on-exec on the copy, which is what a plain fd should look like
    os.closerange(4, max(resource.getrlimit(resource.RLIMIT_NOFILE)[0], 4096))
    return 3


def uid_processes(uid: int) -> list[int]:
    """Ids of the processes whose real user id is ``uid`` (read from ``/proc/*/status``)."""
    found: list[int] = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status", "rb") as status:
                for line in status:
                    if line.startswith(b"Uid:"):
                        if int(line.split()[1]) == uid:
                            found.append(int(name))
                        break
        except (OSError, ValueError):
            continue  # gone meanwhile
    return found


def children() -> list[int]:
    """Ids of the calling (single-threaded) process's children, zombies included."""
    pid = os.getpid()
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as listing:
            return [int(p) for p in listing.read().split()]
    except FileNotFoundError:  # kernel without CONFIG_PROC_CHILDREN
        kids = []
        for name in os.listdir("/proc"):
            try:
                with open(f"/proc/{name}/stat", "rb") as stat:
                    # The command name may contain spaces and parentheses: fields start after the last ")".
                    if int(stat.read().rsplit(b")", 1)[1].split()[1]) == pid:
                        kids.append(int(name))
            except (OSError, ValueError, IndexError):
                continue
        return kids


def kill_uid(uid: int) -> None:
    """SIGKILL every process of ``uid`` at once, from a short-lived helper that becomes ``uid``.

    ``kill(-1)`` from that uid reaches exactly the processes of the uid, and the kernel delivers it under the task list
    lock: a fork bomb cannot fork its way out of it, as it could out of a scan-then-kill loop. Only call this from a
    single-threaded process (it forks).
    """
    helper = os.fork()
    if helper == 0:
        try:
            drop_privileges(uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(helper, 0)


def wait_exit(pid: int, deadline: float) -> int | None:
    """Wait for our child ``pid`` to exit (until ``deadline``) and reap it; its wait status, or ``None``."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        while not poller.poll(max(0, math.ceil((deadline - time.monotonic()) * 1000))):
            if time.monotonic() >= deadline:
                return None
        return os.waitpid(pid, 0)[1]
    finally:
        os.close(pidfd)


def reap_descendants(uid: int | None, deadline: float) -> bool:
    """Kill and reap every remaining descendant (the caller is a child subreaper); ``False`` past ``deadline``.

    Orphans of a subreaper are re-parented to it, so "no children left" means "no descendants left", whatever
    ``setsid`` or double-forks they tried.
    """
    kids = children()
    while kids:
        if time.monotonic() >= deadline:
            return False
        if uid is not None:
            kill_uid(uid)
        for kid in kids:
            # Safe by pid: an unreaped child's pid cannot be reused. Its group may hold more of the tree.
            for kill in (os.killpg, os.kill):
                try:
                    kill(kid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        for kid in kids:
            wait_exit(kid, deadline)
        kids = children()
    return True


def _probe_child(uid: int) -> int:
    found = 0
    try:
        enter_namespaces(mount_namespace=True, network_namespace=False, tmpfs_bytes=1024**2)
        found |= 4
    except OSError:
        pass
    try:
        enter_namespaces(mount_namespace=False, network_namespace=True, tmpfs_bytes=0)
        found |= 2
    except OSError:
        pass
    try:
        drop_privileges(uid)
        found |= 1
    except OSError:
        pass
    return found


def probe(uid: int = DEFAULT_UID_BASE) -> dict[str, bool]:
    """What this machine grants, tried for real in a throw-away child. Only call from a single-threaded process."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return {"separate_user": False, "network_namespace": False, "mount_namespace": False}
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            code = _probe_child(uid)
        finally:
            os._exit(code)
    found = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    found = found if found >= 0 else 0
    return {"separate_user": bool(found & 1), "network_namespace": bool(found & 2), "mount_namespace": bool(found & 4)}


if __name__ == "__main__":
    print(json.dumps(probe(int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_UID_BASE)))
