"""Finding and killing what a sandbox child left behind: the zygote's clean-up after every task.

The zygote is a child subreaper, so every orphan of a child's process tree is re-parented to it: "the zygote has no
children left" means "nothing of the task is left", whatever ``setsid`` or double-forks it tried. Under a dedicated
uid, ``kill(-1)`` as that uid ends the whole tree at once, fork bomb included. Only call these from the zygote: they
fork, and it is single-threaded.
"""

from __future__ import annotations

import math
import os
import select
import signal
import time

from wrapper.sandbox._isolation import kill_uid


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
