"""Records that fail to load: reported and skipped, so that one bad record never stops a listing or a sweep.

A stored record can become unreadable: invalid JSON, a value nested deeper than the JSON parser takes, a document
written by another version of this library that no longer validates. Adapters decode each record of a listing
through :func:`load`, which turns exactly these failures into an :class:`Unreadable` entry; the ports then skip the
entry, log it with its key and count it (:class:`QuarantineLog`). A read of that one record by its key raises
:class:`~blackboard.exceptions.UnreadableRecordError`. ``arbiter doctor`` lists such records and repairs them.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from pydantic import ValidationError

from blackboard.exceptions import UnreadableRecordError

__all__ = ["LOAD_ERRORS", "QuarantineLog", "Unreadable", "as_entry", "load", "load_or_raise"]

logger = logging.getLogger(__name__)

_R = TypeVar("_R")

#: What decoding a stored document raises when the document is bad (never an outage or a programming error):
#: invalid JSON and failed validation (``ValueError``, ``ValidationError``), a missing or mistyped field of a raw
#: item (``KeyError``, ``TypeError``), and nesting deeper than the parser takes (``RecursionError``).
LOAD_ERRORS: tuple[type[BaseException], ...] = (ValueError, ValidationError, KeyError, TypeError, RecursionError)
_REASON_CHARS = 300


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A stored record that could not be loaded.

    Attributes:
        kind: ``orchestration``, ``task``, ``note`` or ``agent``.
        key: the record's key: ``(orchestration id,)``, ``(orchestration id, task id)``, ``(orchestration id, note
            key)``, ``(agent name, version)``.
        reason: why it could not be loaded (the decoder's error, shortened).
    """

    kind: str
    key: tuple[str, ...]
    reason: str

    @property
    def label(self) -> str:
        """The kind and key as one string (``task orch-1/t1``)."""
        return f"{self.kind} {'/'.join(self.key)}"


def _reason(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 1] + "…"


def load(kind: str, key: tuple[str, ...], decode: Callable[[], _R]) -> _R | Unreadable:
    """Run ``decode``; a bad document (one of :data:`LOAD_ERRORS`) becomes an :class:`Unreadable` entry."""
    try:
        return decode()
    except LOAD_ERRORS as exc:
        return Unreadable(kind, key, _reason(exc))


def load_or_raise(kind: str, key: tuple[str, ...], decode: Callable[[], _R]) -> _R:
    """Run ``decode``; a bad document raises :class:`~blackboard.exceptions.UnreadableRecordError`."""
    loaded = load(kind, key, decode)
    if isinstance(loaded, Unreadable):
        raise UnreadableRecordError(loaded.kind, loaded.key, loaded.reason)
    return loaded


def as_entry(read: Callable[[], _R]) -> _R | Unreadable:
    """Run ``read`` (which raises ``UnreadableRecordError`` for a bad record) and turn that error into an entry."""
    try:
        return read()
    except UnreadableRecordError as exc:
        return Unreadable(exc.kind, exc.key, exc.reason)


class QuarantineLog:
    """Counts and logs the unreadable records a port skipped (each key is logged at warning level once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logged: set[tuple[str, tuple[str, ...]]] = set()
        self.counts: Counter[str] = Counter()

    def readable(self, entries: Iterable[_R | Unreadable]) -> list[_R]:
        """The loaded records of ``entries``; every :class:`Unreadable` one is reported and left out."""
        return list(self.skip(entries))

    def skip(self, entries: Iterable[_R | Unreadable]) -> Iterator[_R]:
        """Like :meth:`readable`, lazily."""
        for entry in entries:
            if isinstance(entry, Unreadable):
                self.report(entry)
            else:
                yield entry

    def report(self, entry: Unreadable) -> None:
        """Count a skipped record and log it (at warning level the first time this process meets its key)."""
        with self._lock:
            self.counts[entry.kind] += 1
            first = (entry.kind, entry.key) not in self._logged
            self._logged.add((entry.kind, entry.key))
        log = logger.warning if first else logger.debug
        log("kind=<%s>, key=<%s> | skipped an unreadable record: %s", entry.kind, "/".join(entry.key), entry.reason)
