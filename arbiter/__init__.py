"""Arbiter: event-driven multi-agent systems on the Arbiter pattern.

- :class:`LocalRuntime` runs the whole system in this process, with its state in ``ARBITER_HOME``; its agents can be
  given up front as :class:`AgentDefinition` entries or functions decorated with :func:`agent`; where it runs is a
  :class:`Deployment`, how the engine behaves an :class:`EngineSettings`.
- :class:`Coordinator` and :class:`Sweeper` are the engine (the same on every backend); :class:`Planner` is one model
  turn per wave.
- :mod:`arbiter.testing` has :class:`~arbiter.testing.ScriptedModel`, a deterministic model for tests.

Layering: ``arbiter`` builds on ``fabricator``, ``wrapper`` and ``blackboard``; nothing below imports it.
"""

from importlib.metadata import PackageNotFoundError, version

from arbiter.agents import AgentDefinition, AgentFunction, agent
from arbiter.config import Deployment
from arbiter.coordinator import Coordinator, EngineSettings
from arbiter.exceptions import ArbiterError, PlannerError, UsageError
from arbiter.planner import Planner
from arbiter.reflection import ReflectionPolicy, Reflector
from arbiter.runtime import LocalRuntime, OrchestrationView, RunResult
from arbiter.sweeper import Sweeper

try:
    __version__ = version("arbiter-agents")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = [
    "AgentDefinition",
    "AgentFunction",
    "ArbiterError",
    "Coordinator",
    "Deployment",
    "EngineSettings",
    "LocalRuntime",
    "OrchestrationView",
    "Planner",
    "PlannerError",
    "ReflectionPolicy",
    "Reflector",
    "RunResult",
    "Sweeper",
    "UsageError",
    "__version__",
    "agent",
]
