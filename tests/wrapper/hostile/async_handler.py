"""An ``async def handler``: what it returns is a coroutine, never the value."""


async def handler():
    return {"ok": True}
