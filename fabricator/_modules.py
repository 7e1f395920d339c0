"""Whether a dotted name is a module, answered from the files on disk: the policy never imports what it checks."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
from functools import lru_cache

__all__ = ["is_module"]


@lru_cache(maxsize=1024)
def _locations(package: str) -> tuple[str, ...]:
    """The directories of an installed top-level package (``()`` for a plain module or nothing installed)."""
    try:
        spec = importlib.util.find_spec(package)  # a top-level name: found by the path finders, not imported
    except (ImportError, ValueError):
        return ()
    if spec is None or spec.submodule_search_locations is None:
        return ()
    return tuple(spec.submodule_search_locations)


def _child(directory: str, name: str) -> str | None:
    """The package directory or module file ``name`` inside ``directory``."""
    package = os.path.join(directory, name)
    if os.path.isdir(package):
        return package
    for suffix in importlib.machinery.all_suffixes():
        if os.path.isfile(package + suffix):
            return package + suffix
    return None


@lru_cache(maxsize=4096)
def is_module(dotted: str) -> bool:
    """Whether ``dotted`` (``strands.models.openai``) names a module or package of an installed package.

    A top-level name counts when it can be imported; a submodule when its file or directory is there.
    """
    top, _, rest = dotted.partition(".")
    if not rest:
        try:
            return importlib.util.find_spec(top) is not None
        except (ImportError, ValueError):
            return False
    directories = list(_locations(top))
    for part in rest.split("."):
        found = [path for path in (_child(d, part) for d in directories) if path is not None]
        if not found:
            return False
        directories = [path for path in found if os.path.isdir(path)]
    return True
