"""Errors raised by the fabricator package.

:class:`FabricatorError` is the root of this package's errors (an :class:`blackboard.ArbiterError`, the library's one
root); retry logic keys on its ``retryable`` attribute, never on message text.
What a candidate worker does wrong never raises out of the validation harness: it becomes a failed check in the
report. Misuse of the harness (a candidate without sample inputs, a malformed name) is a pydantic
``ValidationError`` (a ``ValueError``) raised when the :class:`~fabricator.harness.Candidate` is built.
"""

from __future__ import annotations

from blackboard.exceptions import ArbiterError

__all__ = ["FabricatorError", "HarnessError"]


class FabricatorError(ArbiterError):
    """Root of every error raised by the fabricator package (``retryable`` as :class:`~blackboard.ArbiterError`)."""


class HarnessError(FabricatorError):
    """The validation harness could not run a candidate (the sandbox machinery failed); trying again may work."""

    retryable = True
