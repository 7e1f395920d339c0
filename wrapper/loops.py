"""Running a coroutine to its end from synchronous code, whether or not the calling thread runs an event loop.

``asyncio.run`` refuses to start inside a running loop (a notebook, an async web handler, an ``async def`` that calls
a sync API). There the coroutine runs in a fresh loop on a worker thread, and the caller's thread waits for it, as
Strands does for its own sync facade. The model calls of the planner and the Fabricator go through here.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["run_coroutine"]

T = TypeVar("T")


def run_coroutine(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine ``make()`` returns in a loop of its own and return its result (or raise its exception).

    ``make`` is called in the thread that runs the loop, so that a coroutine is never created in one loop's thread
    and left unawaited when the other path is taken. The worker thread runs in a copy of the caller's context, so
    the caller's context variables (a sampling block, say) hold there too.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    context = contextvars.copy_context()
    with ThreadPoolExecutor(1, thread_name_prefix="arbiter-own-loop") as thread:
        return thread.submit(context.run, lambda: asyncio.run(make())).result()
