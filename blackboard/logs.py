"""Structured logs: one JSON object per line, carrying the orchestration, task, agent, attempt and trace ids.

``configure_logging("json")`` (or ``ARBITER_LOG_FORMAT=json``, or ``arbiter --log-format json``) installs
:class:`JsonFormatter` on the root logger. The context fields come from :func:`blackboard.tracing.log_context`,
which the coordinator and the executor bind around their work.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

from blackboard.constants import ENV_LOG_FORMAT
from blackboard.tracing import log_context

__all__ = ["LOG_FORMATS", "JsonFormatter", "configure_logging", "resolve_log_format"]

#: The log formats ``configure_logging`` knows.
LOG_FORMATS = ("text", "json")
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_HANDLER_NAME = "arbiter"


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON: time, level, logger, message, the log context, and any exception."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` (its context is read now: formatting happens in the thread that logged)."""
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        document.update(log_context())
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return json.dumps(document, default=str)


def resolve_log_format(log_format: str | None = None) -> str:
    """The log format: the explicit argument, else ``$ARBITER_LOG_FORMAT``, else ``text``.

    Raises:
        ValueError: the format is not one of :data:`LOG_FORMATS`.
    """
    chosen = (log_format or os.environ.get(ENV_LOG_FORMAT) or "text").strip().lower()
    if chosen not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {chosen!r} (set {ENV_LOG_FORMAT})")
    return chosen


def configure_logging(log_format: str | None = None, level: int = logging.WARNING) -> None:
    """Send the root logger's records to standard error as text or JSON lines.

    Calling it again replaces the handler it installed before; other handlers are left alone.

    Raises:
        ValueError: the format is not one of :data:`LOG_FORMATS`.
    """
    chosen = resolve_log_format(log_format)
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if chosen == "json" else logging.Formatter(_TEXT_FORMAT))
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == _HANDLER_NAME:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
