"""Errors raised by the AWS adapters only (every one derives from :class:`~blackboard.exceptions.BlackboardError`).

The adapters otherwise raise the errors of :mod:`blackboard.exceptions`: ``StoreUnavailableError`` when AWS stays
throttled or unreachable after botocore's retries, ``ConfigurationError`` for a missing table or missing
permissions.
"""

from __future__ import annotations

from blackboard.exceptions import BlackboardError, StoreUnavailableError

__all__ = ["ContentionError", "PayloadTooLargeError", "TransactionTooLargeError"]


class PayloadTooLargeError(BlackboardError, ValueError):
    """A record does not fit in a DynamoDB item (400 KB) or transaction (4 MB), and no payload store was given.

    Attributes:
        record: the kind of record (``"Task"``, ``"Orchestration"``...).
        size: its encoded size in bytes.
        limit: the DynamoDB limit it went past.
    """

    def __init__(self, record: str, size: int, limit: int) -> None:
        self.record = record
        self.size = size
        self.limit = limit
        super().__init__(
            f"{record} needs {size:,} bytes in DynamoDB, more than the {limit:,} allowed: pass payloads=<a CodeStore>"
            " (the S3 payload bucket) to the DynamoDB adapter so that large values are stored by reference"
        )


class TransactionTooLargeError(BlackboardError, ValueError):
    """An atomic batch needs more items than one DynamoDB transaction holds (100); split it into smaller calls."""

    def __init__(self, operation: str, items: int, limit: int) -> None:
        self.operation = operation
        self.items = items
        self.limit = limit
        super().__init__(
            f"{operation} needs {items} items in one DynamoDB transaction, more than the {limit} allowed:"
            " make it atomic in smaller batches (fewer tasks per call)"
        )


class ContentionError(StoreUnavailableError):
    """Optimistic-lock conflicts on the same items went on after every retry. Retrying later may succeed."""
