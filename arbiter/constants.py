"""Environment variables read by the arbiter package, and their defaults.

- ``ARBITER_REFLECTION``: ``on`` (the default) or ``off``: whether failing agents are quarantined automatically.
- ``ARBITER_QUARANTINE_MIN_INVOCATIONS``: invocations a version needs before it can be judged (default 5).
- ``ARBITER_QUARANTINE_FAILURE_RATE``: the share of failed or timed-out invocations, over the version's whole
  life, at or above which it is quarantined (default 0.6).
- ``ARBITER_REFABRICATE``: which quarantined agents the Fabricator is asked to rewrite: ``fabricated`` (the
  default: only agents it wrote), ``all`` (also agents a user registered) or ``off``.
"""

from __future__ import annotations

ENV_REFLECTION = "ARBITER_REFLECTION"
ENV_QUARANTINE_MIN_INVOCATIONS = "ARBITER_QUARANTINE_MIN_INVOCATIONS"
ENV_QUARANTINE_FAILURE_RATE = "ARBITER_QUARANTINE_FAILURE_RATE"
ENV_REFABRICATE = "ARBITER_REFABRICATE"

#: Seconds a received task message stays invisible before it is delivered again, unless set
#: (``LocalRuntime(queue_visibility_seconds=...)``, ``arbiter worker --visibility``): longer than any task runs.
DEFAULT_QUEUE_VISIBILITY_SECONDS = 900.0
