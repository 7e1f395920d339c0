"""Returns a value that is not JSON."""


def handler():
    return {"items": {1, 2, 3}}
