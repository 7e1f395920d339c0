"""The ``CodeStore`` port: content-addressed blobs (agent code, validation reports, offloaded payloads)."""

from __future__ import annotations

import abc
import hashlib
import json
import re
from typing import Any

from blackboard.exceptions import IntegrityError, NotFoundError, RecordValidationError
from blackboard.records import CodeRef

__all__ = ["CodeStore", "sha256_hex"]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def sha256_hex(data: bytes) -> str:
    """Return the lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


class CodeStore(abc.ABC):
    """Blobs stored under their SHA-256; every read is verified. Subclasses implement the primitives."""

    def put(self, data: bytes) -> CodeRef:
        """Store ``data`` (idempotent) and return its reference."""
        digest = sha256_hex(data)
        key = self._key(digest)
        # A blob that is there but damaged is written again: put repairs, get refuses.
        stored = self._read(key) if self._exists(key) else None
        if stored is None or sha256_hex(stored) != digest:
            self._write(key, data, digest)
        return CodeRef(sha256=digest, key=key)

    def get(self, sha256: str) -> bytes:
        """Return the blob with this SHA-256, verified.

        Raises:
            NotFoundError: nothing is stored under it.
            IntegrityError: the stored bytes do not hash to ``sha256`` (tampered or corrupt).
        """
        self._check(sha256)
        data = self._read(self._key(sha256))
        if data is None:
            raise NotFoundError(f"no content with sha256 {sha256}")
        actual = sha256_hex(data)
        if actual != sha256:
            raise IntegrityError(sha256, actual)
        return data

    def exists(self, sha256: str) -> bool:
        """Whether a blob is stored under this SHA-256 (not verified)."""
        self._check(sha256)
        return self._exists(self._key(sha256))

    def put_json(self, value: Any) -> CodeRef:
        """Store a JSON document (canonical form: sorted keys, compact)."""
        return self.put(json.dumps(value, sort_keys=True, separators=(",", ":")).encode())

    def get_json(self, sha256: str) -> Any:
        """Return a JSON document stored with :meth:`put_json`, verified."""
        return json.loads(self.get(sha256))

    def _key(self, sha256: str) -> str:
        return sha256

    @staticmethod
    def _check(sha256: str) -> None:
        if not _SHA256.match(sha256):
            raise RecordValidationError("CodeRef", "sha256", f"not a lowercase hex SHA-256: {sha256!r}")

    # ---------------------------------------------------------------- primitives

    @abc.abstractmethod
    def _write(self, key: str, data: bytes, sha256: str) -> None:
        """Store ``data`` under ``key`` atomically (a reader never sees a partial blob)."""

    @abc.abstractmethod
    def _read(self, key: str) -> bytes | None:
        """Return the stored bytes or ``None``."""

    @abc.abstractmethod
    def _exists(self, key: str) -> bool:
        """Whether something is stored under ``key``."""
