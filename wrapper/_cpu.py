"""How many CPU cores are free right now: the local model's thread count is chosen from it before each call.

llama.cpp's threads wait for each other by spinning, so a thread on a core that another process is using slows
every token down: on 2 cores, the 1.5B model wrote ~25 tok/s with 2 threads on an idle machine, ~15 tok/s with 1,
and ~8 tok/s with 2 threads while another process kept one core busy. The count of free cores is measured over a
short window from ``/proc/stat`` and over the time since the previous measurement (the previous call included),
less this process's own use in each; a core counts as taken when other processes used more than a quarter of one:
a wrong guess of "free" costs far more (4x slower tokens) than a wrong guess of "busy" (1.6x).
"""

from __future__ import annotations

import math
import os
import threading
import time

__all__ = ["free_cores", "usable_cores"]

_PROC_STAT = "/proc/stat"
#: Other processes using more of a core than this leave it taken.
_TAKEN = 0.25
#: A reading older than this says nothing about now.
_LONGEST_WINDOW = 300.0

_last: tuple[tuple[int, int], float, float] | None = None  # (busy, total) ticks, own CPU seconds, monotonic time
_last_lock = threading.Lock()


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


def _others(before: tuple[int, int], after: tuple[int, int], own_seconds: float, seconds: float) -> float:
    """Cores other processes kept busy between two readings (``own_seconds`` of this process's CPU time)."""
    if after[1] <= before[1] or seconds <= 0:
        return 0.0
    machine = os.cpu_count() or usable_cores()
    busy = (after[0] - before[0]) / (after[1] - before[1]) * machine
    return max(0.0, busy - own_seconds / seconds)


def free_cores(window: float = 0.05) -> int:
    """The usable cores that other processes leave idle (at least one).

    Measured over the last ``window`` seconds and over the time since the previous call of this function; the
    busier of the two counts. Without ``/proc/stat`` (not Linux), half the usable cores.
    """
    global _last
    cores = usable_cores()
    before = _busy_and_total()
    own_before, started = time.process_time(), time.monotonic()
    if before is None:
        return max(1, cores // 2)
    time.sleep(window)
    after = _busy_and_total()
    own_after, now = time.process_time(), time.monotonic()
    if after is None:
        return max(1, cores // 2)
    others = _others(before, after, own_after - own_before, now - started)
    with _last_lock:
        if _last is not None and 0 < now - _last[2] <= _LONGEST_WINDOW:
            others = max(others, _others(_last[0], after, own_after - _last[1], now - _last[2]))
        _last = (after, own_after, now)
    return max(1, min(cores, cores - math.ceil(others - _TAKEN)))
