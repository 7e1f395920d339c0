"""Exclusive leases on sandbox user ids, so that "kill every process of the uid" only ever hits our own leftovers.

Two pools on one machine (two wrapper processes, a test run next to a benchmark) must never share a uid: after each
task a zygote kills every process of its uid. A lease is an ``flock`` on ``<lock dir>/uid-<n>.lock``; the kernel drops
it when the holder dies, so a crashed pool never leaks one.
"""

from __future__ import annotations

import fcntl
import grp
import os
import pwd
import stat
import tempfile

from wrapper.exceptions import SandboxError

#: How many uids above the base a pool may try.
UID_RANGE = 1024
_RUN_DIR = "/run/arbiter-sandbox"


class UidLease:
    """A uid held for as long as this object is not released."""

    def __init__(self, uid: int, fd: int) -> None:
        self.uid = uid
        self._fd: int | None = fd

    def release(self) -> None:
        """Give the uid back (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None


def _safe_dir(path: str) -> bool:
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError:
        return False
    # Someone else's directory, or one others can write to, could hand us a forged lock file.
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o022


def _lock_dir() -> str:
    for path in (_RUN_DIR, os.path.join(tempfile.gettempdir(), f"arbiter-sandbox-{os.geteuid()}")):
        if _safe_dir(path):
            return path
    raise SandboxError("no safe directory for the sandbox uid locks")


def _known(uid: int) -> bool:
    """A uid (or gid) that belongs to a real account must not be borrowed."""
    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(uid)
        except KeyError:
            continue
        return True
    return False


def lease_uid(base: int) -> UidLease:
    """Lease the first free uid at or above ``base``.

    Raises:
        SandboxError: every uid of the range is taken or there is nowhere safe to keep the locks.
    """
    directory = _lock_dir()
    for uid in range(base, base + UID_RANGE):
        if _known(uid):
            continue
        fd = os.open(os.path.join(directory, f"uid-{uid}.lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return UidLease(uid, fd)
    raise SandboxError(f"no free sandbox uid in {base}..{base + UID_RANGE - 1}")
