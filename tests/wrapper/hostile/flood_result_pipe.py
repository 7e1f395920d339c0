"""Floods its result pipe (fd 3) with far more than any result may be, then lingers."""

import os
import time


def handler():
    chunk = b"{" * (1024 * 1024)
    for _ in range(64):
        os.write(3, chunk)
    time.sleep(3600)
