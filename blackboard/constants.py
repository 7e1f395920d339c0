"""Environment variable names and defaults, all in one place (documented in the README)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "CODE_DIR",
    "DATABASE_FILE",
    "DEFAULT_HOME",
    "ENV_HOME",
    "ENV_LOG_FORMAT",
    "ENV_MAX_EVENT_BYTES",
    "ENV_MAX_OUTPUT_BYTES",
    "resolve_home",
]

#: Directory of the embedded runtime's state (database, code store).
ENV_HOME = "ARBITER_HOME"
DEFAULT_HOME = ".arbiter"
DATABASE_FILE = "arbiter.db"
CODE_DIR = "code"
#: Log format of the command line and the runtimes: ``text`` (default) or ``json`` (one JSON object per line).
ENV_LOG_FORMAT = "ARBITER_LOG_FORMAT"
#: Largest event accepted at every entry, in bytes of compact UTF-8 JSON (default 256 KiB, as EventBridge).
ENV_MAX_EVENT_BYTES = "ARBITER_MAX_EVENT_BYTES"
#: Largest worker output accepted, in bytes of compact UTF-8 JSON (default 32 MiB).
ENV_MAX_OUTPUT_BYTES = "ARBITER_MAX_OUTPUT_BYTES"


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """Return the home directory: the explicit argument, else ``$ARBITER_HOME``, else ``./.arbiter``."""
    if home is not None:
        return Path(home)
    return Path(os.environ.get(ENV_HOME) or DEFAULT_HOME)
