"""A fake model provider that fails the first calls with a given error, then plays another model's turns."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from strands.models import Model


class FakeFailingModel(Model):
    """Raises ``error`` on the first ``failures`` calls, then delegates to ``model``; ``calls`` counts every call."""

    def __init__(self, model: Model, error: Exception, failures: int) -> None:
        self.model = model
        self.error = error
        self.failures = failures
        self.calls = 0

    def update_config(self, **config: Any) -> None:
        return None

    def get_config(self) -> Any:
        return self.model.get_config()

    async def structured_output(self, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        raise NotImplementedError
        yield

    async def stream(self, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        async for event in self.model.stream(*args, **kwargs):
            yield event
