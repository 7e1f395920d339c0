"""Fry cook: fries one portion (a sandboxed worker agent)."""


def handler(table: int, portion: str = "regular") -> dict:
    return {"table": table, "fried": f"{portion} fries"}
