"""The generic wrapper: runs worker agents from the registry (verified hot-loading, sandboxed execution).

- :class:`Executor` runs one task message: claim, load the pinned agent (cached, SHA-256 verified), run it in the
  sandbox or, for trusted agents, in process, write the result, then emit the completion event.
- :class:`SandboxPool` is the warm pool of fork servers that runs untrusted code in isolated child processes.
- :class:`TrustedCalls` runs trusted (in-process) agents: bounded per agent, cancellable, results fenced.
- :func:`run_worker` pulls task messages from any ``TaskQueue``.
- :mod:`wrapper.sdk` is what worker code imports; :func:`resolve_model` turns a model spec into a Strands model.
- :class:`Matcher` picks the agents that fit a text (local embeddings or BM25), for the planner and the Fabricator.

Layering: ``wrapper`` builds on ``blackboard`` only.
"""

from typing import TYPE_CHECKING, Any

from wrapper import sdk
from wrapper.cache import CodeCache, ManifestCache
from wrapper.exceptions import ModelConfigurationError, NonRetryableError, SandboxError, WrapperError
from wrapper.executor import Executor
from wrapper.matching import Match, Matcher, default_matcher
from wrapper.sandbox import SandboxLimits, SandboxPool
from wrapper.trusted_calls import TrustedCalls
from wrapper.worker import WorkerStats, run_worker

if TYPE_CHECKING:
    from wrapper.models import resolve_model

__all__ = [
    "CodeCache",
    "Executor",
    "ManifestCache",
    "Match",
    "Matcher",
    "ModelConfigurationError",
    "NonRetryableError",
    "SandboxError",
    "SandboxLimits",
    "SandboxPool",
    "TrustedCalls",
    "WorkerStats",
    "WrapperError",
    "default_matcher",
    "resolve_model",
    "run_worker",
    "sdk",
]


def __getattr__(name: str) -> Any:
    # resolve_model is loaded on first use: it imports Strands, which running sandboxed agents does not need (the
    # Lambda function's cold start stays lean; the sandbox's own processes preload Strands for the workers).
    if name == "resolve_model":
        from wrapper.models import resolve_model

        return resolve_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
