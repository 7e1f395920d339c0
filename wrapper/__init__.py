"""The generic wrapper: runs worker agents from the registry (verified hot-loading, sandboxed execution).

Layering: ``wrapper`` builds on ``blackboard`` only.
"""

__all__: list[str] = []
