"""Prints 50 MB."""

import sys


def handler():
    chunk = "x" * (1024 * 1024 - 1) + "\n"
    for _ in range(50):
        sys.stdout.write(chunk)
    print("the end")
    return {"printed": 50}
