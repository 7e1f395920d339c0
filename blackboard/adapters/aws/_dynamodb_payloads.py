"""Large values of DynamoDB items: JSON inline up to a threshold, else in a payload store by SHA-256 reference.

The large attributes of a record (a conversation, an output, an input, a note value, an event) are stored one per
attribute, as JSON text (``S``) when small, or as ``{"sha256": ..., "bytes": ...}`` (``M``) pointing at the
payload store (a :class:`~blackboard.ports.code_store.CodeStore`, the S3 payload bucket on AWS) when larger than
the threshold, or when the item (400 KB) or the transaction (4 MB) would not fit otherwise. Reads fetch and verify
referenced values transparently. Without a payload store, a record that does not fit is refused before anything is
written (:class:`PayloadTooLargeError`).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from blackboard.adapters.aws._dynamodb import ITEM_LIMIT, TRANSACTION_BYTES, Item, item_size
from blackboard.adapters.aws.exceptions import PayloadTooLargeError
from blackboard.exceptions import ConfigurationError
from blackboard.ports.code_store import CodeStore, sha256_hex

__all__ = ["DEFAULT_OFFLOAD_BYTES", "LargeValues"]

#: Values whose JSON is larger than this go to the payload store (when there is one).
DEFAULT_OFFLOAD_BYTES = 64 * 1024
_KNOWN_DIGESTS = 4096
_CACHE_BYTES = 32 * 1024 * 1024


def dumps(value: Any) -> str:
    """Compact JSON text of a JSON-compatible value."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class LargeValues:
    """Encodes and decodes the large attributes of items.

    Args:
        store: where values go by reference; ``None`` keeps every value inline (and refuses what does not fit).
        threshold: JSON size in bytes above which a value goes to ``store``.
    """

    def __init__(self, store: CodeStore | None, threshold: int = DEFAULT_OFFLOAD_BYTES) -> None:
        self.store = store
        self.threshold = threshold
        self._lock = threading.Lock()
        self._stored: OrderedDict[str, None] = OrderedDict()  # digests this process has put: no need to put again
        self._cache: OrderedDict[str, bytes] = OrderedDict()  # content is immutable: read each digest once
        self._cached_bytes = 0

    def encode(self, value: Any) -> dict[str, Any]:
        """The attribute value of ``value``: inline JSON, or a reference when larger than the threshold."""
        text = dumps(value)
        if self.store is not None and len(text) > self.threshold // 4:  # cheap test first: a char is 1-4 bytes
            data = text.encode()
            if len(data) > self.threshold:
                return self._reference(data)
        return {"S": text}

    def decode(self, value: dict[str, Any]) -> Any:
        """The Python value of an attribute written by :meth:`encode`."""
        if "S" in value:
            return json.loads(value["S"])
        digest = value["M"]["sha256"]["S"]
        return json.loads(self._fetch(digest))

    def fit(self, items: Sequence[Item], parts: Iterable[str], record: str) -> None:
        """Offload inline ``parts`` of ``items``, largest first, until each item and their sum fit DynamoDB's limits.

        Raises:
            PayloadTooLargeError: they do not fit and there is no payload store.
        """
        names = tuple(parts)
        for item in items:
            while (size := item_size(item)) > ITEM_LIMIT:
                self._offload_largest([item], names, record, size, ITEM_LIMIT)
        while (total := sum(item_size(item) for item in items)) > TRANSACTION_BYTES:
            self._offload_largest(items, names, record, total, TRANSACTION_BYTES)

    # ---------------------------------------------------------------- helpers

    def _offload_largest(
        self, items: Sequence[Item], names: tuple[str, ...], record: str, size: int, limit: int
    ) -> None:
        if self.store is None:
            raise PayloadTooLargeError(record, size, limit)
        candidates = [(len(item[n]["S"]), item, n) for item in items for n in names if "S" in item.get(n, {})]
        if not candidates:
            raise PayloadTooLargeError(record, size, limit)
        _, item, name = max(candidates, key=lambda c: c[0])
        item[name] = self._reference(item[name]["S"].encode())

    def _reference(self, data: bytes) -> dict[str, Any]:
        store = self.store
        if store is None:  # pragma: no cover - callers check
            raise ConfigurationError("no payload store")
        digest = sha256_hex(data)
        with self._lock:
            known = digest in self._stored
        if not known:
            store.put(data)
            with self._lock:
                self._stored[digest] = None
                while len(self._stored) > _KNOWN_DIGESTS:
                    self._stored.popitem(last=False)
        return {"M": {"sha256": {"S": digest}, "bytes": {"N": str(len(data))}}}

    def _fetch(self, digest: str) -> bytes:
        with self._lock:
            cached = self._cache.get(digest)
            if cached is not None:
                self._cache.move_to_end(digest)
                return cached
        if self.store is None:
            raise ConfigurationError(
                f"a DynamoDB item holds a value stored by reference ({digest}): pass payloads=<the payload store> to"
                " the DynamoDB adapter to read it"
            )
        data = self.store.get(digest)  # verified against its SHA-256
        with self._lock:
            self._cache[digest] = data
            self._cached_bytes += len(data)
            while self._cached_bytes > _CACHE_BYTES and self._cache:
                _, dropped = self._cache.popitem(last=False)
                self._cached_bytes -= len(dropped)
        return data
