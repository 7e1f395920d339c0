"""Ignores SIGXCPU and burns CPU: the hard CPU limit (SIGKILL) must end it."""

import signal


def handler():
    signal.signal(signal.SIGXCPU, signal.SIG_IGN)
    n = 0
    while True:
        n += 1
