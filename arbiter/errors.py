"""Every error root of the library in one place: ``from arbiter.errors import ArbiterError``.

:class:`ArbiterError` is the one root: every error Arbiter's packages raise on purpose derives from it, and
``retryable`` (whether repeating the same call may succeed) is defined on it once. Each package keeps its own root
below it, so that a caller can tell where a failure comes from:

- :class:`BlackboardError` (state, queues, the bus, the strict JSON boundary); :class:`ConfigurationError` is a setup
  mistake, :class:`StoreUnavailableError` an outage worth retrying;
- :class:`WrapperError` (running agents, the sandbox, model providers); :class:`ModelConfigurationError` is a setup
  mistake;
- :class:`FabricatorError` (writing new workers);
- the arbiter package's own: :class:`UsageError` (a caller's mistake) and :class:`PlannerError` (a model call).

Retry on ``exc.retryable``, never on the message text.
"""

from __future__ import annotations

from arbiter.exceptions import PlannerError, UsageError
from blackboard.exceptions import (
    ArbiterError,
    BlackboardError,
    ConfigurationError,
    RecordValidationError,
    StoreUnavailableError,
)
from fabricator.exceptions import FabricatorError
from wrapper.exceptions import ModelConfigurationError, WrapperError

__all__ = [
    "ArbiterError",
    "BlackboardError",
    "ConfigurationError",
    "FabricatorError",
    "ModelConfigurationError",
    "PlannerError",
    "RecordValidationError",
    "StoreUnavailableError",
    "UsageError",
    "WrapperError",
]
