"""The Fabricator: writes, validates and registers new worker agents.

Layering: ``fabricator`` builds on ``wrapper`` and ``blackboard``.
"""

__all__: list[str] = []
