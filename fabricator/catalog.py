"""The Strands tools a generated worker may give its own agent: read from what is installed, filtered by the policy.

Each module of ``strands.vended_tools`` that the import policy allows becomes one catalog entry with the name and
description its tool spec carries, so the catalog follows the installed Strands version instead of a list typed by
hand. Tools that run commands, touch files or reach the network are refused by the policy and never listed.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from dataclasses import dataclass
from functools import lru_cache

from fabricator.policy import DEFAULT_POLICY, Policy, check_policy

__all__ = ["CatalogEntry", "tool_catalog"]

logger = logging.getLogger(__name__)

_PACKAGE = "strands.vended_tools"


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One allowed tool: how to import it and what it does."""

    name: str
    import_line: str
    description: str


@lru_cache(maxsize=4)
def tool_catalog(policy: Policy = DEFAULT_POLICY) -> tuple[CatalogEntry, ...]:
    """The vended Strands tools installed here that ``policy`` lets a worker import (and that are not for humans)."""
    try:
        package = importlib.import_module(_PACKAGE)
    except ImportError:
        return ()
    entries: list[CatalogEntry] = []
    for module in sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_")):
        import_line = f"from {_PACKAGE} import {module}"
        if check_policy(f"{import_line}\n\ndef handler(**kwargs):\n    return {module}\n", policy):
            continue
        tool = getattr(package, module, None)
        spec = getattr(tool, "tool_spec", None)
        if not isinstance(spec, dict) or module == "handoff_to_user":  # a sandboxed worker has no user to ask
            continue
        description = str(spec.get("description", "")).split("\n")[0].strip()
        entries.append(CatalogEntry(module, import_line, description))
    logger.debug("tools=<%s> | tool catalog", [e.name for e in entries])
    return tuple(entries)
