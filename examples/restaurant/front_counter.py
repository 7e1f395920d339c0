"""Front counter: assembles the tray and calls the table (a sandboxed worker agent)."""


def handler(table: int, dishes: list) -> dict:
    return {"table": table, "tray": sorted(dishes), "announcement": f"Order for table {table} is ready!"}
