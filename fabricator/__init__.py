"""The Fabricator: writes, validates and registers new worker agents, so the system grows its own capabilities.

- :class:`Fabricator` answers a ``FabricationRequest``: it reuses an active agent that already does the job, or asks
  its model (a Strands agent with no tools) for a :class:`Draft`, validates it with :func:`validate`, feeds a refusal
  back for up to ``max_attempts`` drafts, and publishes the first valid one.
- :func:`validate` is the harness, kept apart from generation: :func:`check_policy` (a static policy on the AST:
  allowed imports, banned calls and attributes, no import-time side effects, a module-level ``handler``), compile,
  input schema, ``handler`` signature vs the schema, then every sample input run in the wrapper's sandbox; it
  returns a :class:`ValidationReport` with every check and its evidence, stored with the version.
- :func:`publish` never overwrites a ``name@version``; :func:`approve` and :func:`rollback` manage versions.
- :class:`FabricationWorker` runs ``fabricate`` tasks for the engine.

Layering: ``fabricator`` builds on ``wrapper`` and ``blackboard``.
"""

from fabricator.catalog import CatalogEntry, tool_catalog
from fabricator.exceptions import FabricatorError, HarnessError
from fabricator.fabricator import FabricationFailedError, FabricationResult, Fabricator
from fabricator.generator import Draft, GenerationError, Generator
from fabricator.harness import Candidate, Check, ValidationReport, validate
from fabricator.policy import DEFAULT_POLICY, Policy, PolicyViolation, check_policy
from fabricator.publisher import approve, publish, rollback
from fabricator.worker import FabricationWorker

__all__ = [
    "DEFAULT_POLICY",
    "Candidate",
    "CatalogEntry",
    "Check",
    "Draft",
    "FabricationFailedError",
    "FabricationResult",
    "FabricationWorker",
    "Fabricator",
    "FabricatorError",
    "GenerationError",
    "Generator",
    "HarnessError",
    "Policy",
    "PolicyViolation",
    "ValidationReport",
    "approve",
    "check_policy",
    "publish",
    "rollback",
    "tool_catalog",
    "validate",
]
