"""Returns NaN deep in its result (and Infinity after it): JSON has neither."""


def handler():
    return {"stats": [{"mean": 1.5}, {"mean": float("nan")}], "max": float("inf")}
