"""Linux isolation primitives for sandbox children: namespaces and a dedicated user id.

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
- **Python stays importable under the dedicated uid.** Where the interpreter lives in a directory other users cannot
  enter (``/root/.pyenv``, say), the child's private mount namespace gets a tmpfs over the closed ancestor and a
  read-only bind mount of just the interpreter's directories: the worker can import the standard library lazily
  and sees nothing else of that home directory. Without a mount namespace such a layout breaks lazy imports.
  Likewise the interpreter's and the package's directories that lie under a scratch directory (a checkout or a
  virtual environment in ``/tmp``) are bound back, read-only, over the child's private tmpfs, which would hide them.
- ``PR_SET_NO_NEW_PRIVS`` so that no set-uid binary can give root back; ``PR_SET_PDEATHSIG`` so that a child never
  outlives its zygote.

This module uses the standard library only, so that ``python -I -S _isolation.py`` can probe a machine cheaply
without importing the package.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import signal
import sys
import time
from dataclasses import dataclass

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REMOUNT = 0x20
MS_BIND = 0x1000
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
        expose: directories of the interpreter that other users cannot reach, to bind into the mount namespace.
        keep: directories of the interpreter and the package under a scratch directory, bound back read-only over
            the child's private tmpfs.
        landlock: confine each child in a Landlock domain (where there is no dedicated uid; see ``_landlock``).
        readable: what a Landlock-confined child may read, besides its working directory.
    """

    uid: int | None
    mount_namespace: bool
    network_namespace: bool
    expose: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()
    landlock: bool = False
    readable: tuple[str, ...] = ()


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


def _closed_ancestor(path: str) -> str | None:
    """The first strict ancestor of ``path`` that other users cannot enter, if any."""
    parts = path.strip("/").split("/")
    for depth in range(1, len(parts)):
        ancestor = "/" + "/".join(parts[:depth])
        if not os.stat(ancestor).st_mode & 0o001:
            return ancestor
    return None


def unreachable(paths: list[str]) -> tuple[str, ...]:
    """The directories among ``paths`` that other users cannot reach only because of a closed ancestor."""
    found: list[str] = []
    for path in sorted({os.path.realpath(p) for p in paths if p}, key=len):  # parents first: they cover children
        if os.path.isdir(path) and os.stat(path).st_mode & 0o005 == 0o005 and _closed_ancestor(path):
            if not any(path == f or path.startswith(f + "/") for f in found):
                found.append(path)
    return tuple(found)


def in_scratch(paths: list[str]) -> tuple[str, ...]:
    """The directories among ``paths`` under a scratch directory, which the child's private tmpfs would hide."""
    found: list[str] = []
    for path in sorted({os.path.realpath(p) for p in paths if p}, key=len):  # parents first: they cover children
        if os.path.isdir(path) and any(path.startswith(scratch + "/") for scratch in SCRATCH_DIRS):
            if not any(path == f or path.startswith(f + "/") for f in found):
                found.append(path)
    return tuple(found)


def _opened(paths: tuple[str, ...]) -> dict[str, int]:
    return {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in paths}


def _bind_read_only(handles: dict[str, int]) -> None:
    """Bind each opened directory back at its own path, read-only (it was hidden meanwhile)."""
    for path, handle in handles.items():
        os.makedirs(path, mode=0o755, exist_ok=True)
        mount(f"/proc/self/fd/{handle}", path, None, MS_BIND | MS_REC, None)
        mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None)


def _close(handles: dict[str, int]) -> None:
    for handle in handles.values():
        os.close(handle)


def _expose(paths: tuple[str, ...]) -> None:
    """Hide each closed ancestor under a tmpfs and bind just ``paths`` back, read-only, at the same place."""
    handles = _opened(paths)  # before they are hidden
    try:
        covered: list[str] = []
        for path in paths:
            ancestor = _closed_ancestor(path)
            if ancestor is not None and ancestor not in covered:
                mount("tmpfs", ancestor, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
                covered.append(ancestor)
        _bind_read_only(handles)
    finally:
        _close(handles)


def enter_namespaces(
    *,
    mount_namespace: bool,
    network_namespace: bool,
    tmpfs_bytes: int,
    expose: tuple[str, ...] = (),
    keep: tuple[str, ...] = (),
) -> None:
    """Move the calling process into new mount and/or network namespaces and give it private scratch tmpfs.

    ``expose`` and ``keep``: see :class:`Plan`.
    """
    flags = (CLONE_NEWNS if mount_namespace else 0) | (CLONE_NEWNET if network_namespace else 0)
    if not flags:
        return
    unshare(flags)
    if not mount_namespace:
        return
    # Without this, mounts made below would propagate back to the host where "/" is a shared mount (systemd).
    mount(None, "/", None, MS_REC | MS_PRIVATE, None)
    size = max(tmpfs_bytes, 1024**2)
    kept = _opened(keep)  # before the scratch tmpfs hides them
    try:
        for path in SCRATCH_DIRS:
            if os.path.isdir(path):
                mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777")
        _bind_read_only(kept)
    finally:
        _close(kept)
    _expose(expose)


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


def clear_uid(uid: int, timeout: float = 3.0) -> bool:
    """Kill every process of ``uid`` and wait until none is left (orphans may be init's to reap); ``False`` on timeout.

    Only call this from a single-threaded process (it forks).
    """
    deadline = time.monotonic() + timeout
    while uid_processes(uid):
        if time.monotonic() >= deadline:
            return False
        kill_uid(uid)
        time.sleep(0.01)  # init reaps them in its own time
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


def _main(argv: list[str]) -> int:
    """``probe [uid]`` prints what the machine grants as JSON; ``kill-uid UID`` kills every process of a uid."""
    if argv[:1] == ["kill-uid"] and len(argv) == 2:
        return 0 if clear_uid(int(argv[1])) else 1
    if argv[:1] == ["probe"] and len(argv) <= 2:
        print(json.dumps(probe(int(argv[1]) if len(argv) == 2 else DEFAULT_UID_BASE)))
        return 0
    print("usage: _isolation.py probe [UID] | kill-uid UID", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
