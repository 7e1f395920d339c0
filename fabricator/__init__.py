"""The Fabricator: writes, validates and registers new worker agents.

This release has its validation harness, kept apart from generation as the pattern's authors recommend:
:func:`check_policy` (a static policy on the AST: allowed imports, banned calls and attributes, no import-time side
effects, a module-level ``handler``) and :func:`validate` (policy, compile, input schema, ``handler`` signature vs the
schema, then every sample input run in the wrapper's sandbox), which returns a :class:`ValidationReport` with every
check and its evidence.

Layering: ``fabricator`` builds on ``wrapper`` and ``blackboard``.
"""

from fabricator.exceptions import FabricatorError, HarnessError
from fabricator.harness import Candidate, Check, ValidationReport, validate
from fabricator.policy import DEFAULT_POLICY, Policy, PolicyViolation, check_policy

__all__ = [
    "DEFAULT_POLICY",
    "Candidate",
    "Check",
    "FabricatorError",
    "HarnessError",
    "Policy",
    "PolicyViolation",
    "ValidationReport",
    "check_policy",
    "validate",
]
