"""Resource limits of a sandbox child, and the descriptors it keeps.

Limits are set last, just before the worker's module is loaded: everything the sandbox itself needs (its imports,
the payload, the namespaces) is in place by then, so a tight limit only ever constrains the worker.
"""

from __future__ import annotations

import math
import os
import resource
from typing import Any

from wrapper.sandbox._isolation import uid_processes

#: Room above ``RLIMIT_AS`` that the child may claim back to report a ``MemoryError`` (the hard limit).
MEMORY_HEADROOM = 64 * 1024**2


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
