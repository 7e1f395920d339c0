"""Allocates (and touches) memory until it cannot: RLIMIT_AS must stop it with a MemoryError."""


def handler():
    hoard = []
    while True:
        hoard.append(bytearray(32 * 1024 * 1024))
