"""Leaves a daemon behind (double fork, new session) and returns at once, as if nothing happened."""

import os
import time


def handler():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            while True:
                time.sleep(3600)
        os._exit(0)
    os.wait()
    return {"ok": True}
