"""Shared pydantic base classes, ids and clocks for records and messages."""

from __future__ import annotations

import base64
import os
import time
from datetime import UTC, datetime
from typing import Any, Self, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from blackboard.exceptions import RecordValidationError

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _CROCKFORD.encode("ascii"))


def new_id() -> str:
    """Return a new 26-character, time-sortable, random identifier (ULID layout)."""
    return _crockford((time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big"))


def _crockford(value: int) -> str:
    """A 128-bit ``value`` as 26 Crockford base-32 digits, most significant first.

    Base 32 of the value widened to 160 bits (32 digits, no padding) is the same digits after six leading zeros; the
    standard alphabet is then mapped to Crockford's, all in C.
    """
    return base64.b32encode(value.to_bytes(20, "big"))[6:].translate(_TO_CROCKFORD).decode("ascii")


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def _first_error(record: str, exc: ValidationError) -> RecordValidationError:
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"])
    return RecordValidationError(record, field, error["msg"])


class _Model(BaseModel):
    @classmethod
    def parse(cls, data: Any) -> Self:
        """Validate a Python object into this model.

        Raises:
            RecordValidationError: naming the first invalid field.
        """
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise _first_error(cls.__name__, exc) from None

    @classmethod
    def parse_json(cls, raw: str | bytes) -> Self:
        """Validate a JSON document into this model.

        Raises:
            RecordValidationError: naming the first invalid field (or the document if it is not JSON).
        """
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            raise _first_error(cls.__name__, exc) from None

    def to_dict(self) -> dict[str, Any]:
        """Return the wire form: JSON-compatible values, field names as on the wire."""
        return self.model_dump(mode="json", by_alias=True)

    def to_json(self) -> str:
        """Return the wire form as a JSON string."""
        return self.model_dump_json(by_alias=True)


class Record(_Model):
    """Base of stored records: immutable, unknown fields refused; change one with ``model_copy(update=...)``."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Message(_Model):
    """Base of wire messages: immutable; unknown fields from newer producers are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


def revalidate(model: _M, **changes: Any) -> _M:
    """Return a copy of ``model`` with ``changes`` applied and validated (``model_copy`` skips validation)."""
    data = {name: getattr(model, name) for name in type(model).model_fields}
    data.update(changes)
    try:
        return type(model).model_validate(data)
    except ValidationError as exc:
        raise _first_error(type(model).__name__, exc) from None


_M = TypeVar("_M", bound=BaseModel)
