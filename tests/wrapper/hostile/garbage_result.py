"""Writes garbage to every descriptor it finds (its result pipe among them), then returns normally."""

import os


def handler():
    for fd in range(3, 64):
        try:
            os.write(fd, b"\x00garbage{{{")
        except OSError:
            pass
    return {"ok": True}
