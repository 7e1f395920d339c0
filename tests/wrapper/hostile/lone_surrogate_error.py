"""Fails with an error message that holds a lone surrogate."""


def handler():
    raise ValueError("cannot read " + b"caf\xe9".decode("utf-8", "surrogateescape"))
