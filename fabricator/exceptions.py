"""Errors raised by the fabricator package.

:class:`FabricatorError` is the root; retry logic keys on its ``retryable`` attribute, never on message text.
What a candidate worker does wrong never raises out of the validation harness: it becomes a failed check in the
report. Misuse of the harness (a candidate without sample inputs, a malformed name) is a pydantic
``ValidationError`` (a ``ValueError``) raised when the :class:`~fabricator.harness.Candidate` is built.
"""

from __future__ import annotations

__all__ = ["FabricatorError", "HarnessError"]


class FabricatorError(Exception):
    """Root of every error raised by the fabricator package.

    Attributes:
        retryable: whether repeating the same call may succeed.
    """

    retryable: bool = False


class HarnessError(FabricatorError):
    """The validation harness could not run a candidate (the sandbox machinery failed); trying again may work."""

    retryable = True
