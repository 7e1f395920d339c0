"""Arbiter: event-driven multi-agent systems on the Arbiter pattern.

Layering: ``arbiter`` builds on ``fabricator``, ``wrapper`` and ``blackboard``; nothing below imports it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("arbiter-agents")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
