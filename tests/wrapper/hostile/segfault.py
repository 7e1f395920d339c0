"""Dereferences a null pointer: the interpreter dies with SIGSEGV."""

import ctypes


def handler():
    return ctypes.string_at(0)
