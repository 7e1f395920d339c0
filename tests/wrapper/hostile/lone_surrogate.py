"""Returns text decoded with ``surrogateescape`` from bytes that are not UTF-8: it holds a lone surrogate."""


def handler():
    return {"name": "ok", "text": b"caf\xe9".decode("utf-8", "surrogateescape")}
