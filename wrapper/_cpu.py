"""How many CPU cores are free right now: the local model's thread count is chosen from it before each call.

llama.cpp's threads wait for each other by spinning, so a thread on a core that another process is using slows
every token down: on 2 cores, the 1.5B model wrote ~25 tok/s with 2 threads on an idle machine, ~15 tok/s with 1,
and ~8 tok/s with 2 threads while another process kept one core busy. The count of free cores is measured over a
short window from ``/proc/stat``, less this process's own use in that window.
"""

from __future__ import annotations

import os
import time

__all__ = ["free_cores", "usable_cores"]

_PROC_STAT = "/proc/stat"


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _busy_and_total() -> tuple[int, int] | None:
    try:
        with open(_PROC_STAT, encoding="ascii") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 5:
        return None
    ticks = [int(v) for v in fields[1:] if v.isdigit()]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return sum(ticks) - idle, sum(ticks)


def free_cores(window: float = 0.05) -> int:
    """The usable cores that other processes left idle during the last ``window`` seconds (at least one).

    Without ``/proc/stat`` (not Linux), half the usable cores.
    """
    cores = usable_cores()
    before = _busy_and_total()
    own_before = time.process_time()
    if before is None:
        return max(1, cores // 2)
    time.sleep(window)
    after = _busy_and_total()
    own = time.process_time() - own_before
    if after is None or after[1] <= before[1]:
        return max(1, cores // 2)
    machine = os.cpu_count() or cores
    busy = (after[0] - before[0]) / (after[1] - before[1]) * machine  # cores busy, machine-wide
    others = max(0.0, busy - own / window)
    return max(1, min(cores, cores - round(others)))
