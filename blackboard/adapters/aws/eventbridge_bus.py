"""The EventBus port on EventBridge: ``PutEvents`` to a custom bus; in-process delivery of what this process puts.

On AWS, events reach their consumers through EventBridge **rules** (a rule's pattern and its targets: the Lambda
functions, an SQS queue), not through :meth:`EventBridgeBus.subscribe`. ``subscribe`` delivers to handlers in this
process the events that this process published, once ``PutEvents`` accepted them, with the same pattern matching as
:class:`InProcessEventBus`; that is how a local CLI run with the AWS backends still waits on completions it emits
itself. Events published by other processes (Lambda workers) reach a process only through a rule target, and
:func:`event_from_eventbridge` turns such a delivery back into an :class:`Event`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from blackboard.adapters.aws._batches import Refused, chunks, send_batches
from blackboard.adapters.aws._client_errors import translated
from blackboard.adapters.aws._clients import make_client
from blackboard.adapters.inprocess_bus import FailedDelivery, InProcessEventBus
from blackboard.exceptions import BatchFailedError, ConfigurationError, MessageTooLargeError
from blackboard.messages import Event
from blackboard.ports.event_bus import EventBus, Subscription

__all__ = ["MAX_EVENT_BYTES", "EventBridgeBus", "entry_size", "event_from_eventbridge"]

logger = logging.getLogger(__name__)

#: The largest ``PutEvents`` entry, and the largest request, EventBridge takes.
MAX_EVENT_BYTES = 262_144
_BATCH = 10
#: Entry error codes that say the event itself is refused: sending it again cannot help.
_REFUSED_CODES = frozenset(
    {
        "InvalidArgument",
        "MalformedDetail",
        "ValidationException",
        "AccessDeniedException",
        "NotAuthorizedForSourceException",
        "NotAuthorizedForDetailTypeException",
        "ResourceNotFoundException",
    }
)


def entry_size(entry: Mapping[str, Any]) -> int:
    """The size of a ``PutEvents`` entry as EventBridge counts it (UTF-8 bytes of its fields, 14 for a time)."""
    size = 14 if entry.get("Time") is not None else 0
    for field in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(field, "")).encode())
    size += sum(len(resource.encode()) for resource in entry.get("Resources", []))
    return size


def event_from_eventbridge(delivered: Mapping[str, Any] | str | bytes) -> Event:
    """Turn an event delivered by EventBridge into an :class:`Event`.

    Accepts the event as a Lambda function receives it from a rule (a dict), the body of an SQS message from a rule
    whose target is a queue (a JSON string), or such an SQS record as Lambda receives it (a dict with ``body``).
    EventBridge's own ``id``, ``time``, ``account`` and ``region`` are kept.

    Raises:
        RecordValidationError: it is not an EventBridge event (naming the first missing or invalid field).
    """
    if isinstance(delivered, str | bytes):
        return Event.parse_json(delivered)
    if delivered.get("eventSource") == "aws:sqs" and isinstance(delivered.get("body"), str):
        return Event.parse_json(delivered["body"])
    return Event.parse(dict(delivered))


class EventBridgeBus(EventBus):
    """Publishes to an EventBridge bus with ``PutEvents``, at most 10 entries and 256 KiB per call.

    Entries that ``PutEvents`` refuses (``FailedEntryCount``) are sent again, only those, with backoff, up to
    ``attempts`` times; what is still refused raises :class:`BatchFailedError` naming each event id and its error
    code, after every other event was published (and delivered in process). An event over 256 KiB raises
    :class:`MessageTooLargeError` before anything is sent. EventBridge assigns event ids of its own: the ids this
    bus returns (and delivers in process) are the :class:`Event`'s, while rule targets see EventBridge's.
    ``account``, ``region`` and fields beyond the envelope are not sent (EventBridge sets its own).

    API calls: publishing N events takes ``ceil(N / 10)`` ``PutEvents`` calls (more when a batch would pass 256
    KiB), plus one per retry of refused entries.

    Args:
        bus_name: the event bus's name or ARN.
        client: an EventBridge client (else one from ``session``, else from the default session).
        session: a boto3 session to create the client from.
        attempts: attempts for each entry ``PutEvents`` refuses before it is reported.
        retry_base_seconds: the backoff before the second attempt (doubling, with jitter).
        max_failures: how many failed in-process deliveries to keep (see :class:`InProcessEventBus`).
    """

    def __init__(
        self,
        bus_name: str,
        *,
        client: Any = None,
        session: Any = None,
        attempts: int = 4,
        retry_base_seconds: float = 0.1,
        max_failures: int = 1000,
    ) -> None:
        if not bus_name:
            raise ConfigurationError("EventBridgeBus needs the event bus name")
        if attempts < 1:
            raise ConfigurationError("attempts must be at least 1")
        self.bus_name = bus_name
        self.attempts = attempts
        self.client = make_client("events", client=client, session=session)
        self._retry_base_seconds = retry_base_seconds
        self._local = InProcessEventBus(max_failures=max_failures)
        self._assigned = threading.local()  # EventBridge's ids, collected only inside put()

    @property
    def failed_deliveries(self) -> deque[FailedDelivery]:
        """In-process handlers that raised (publishing succeeded regardless, as on EventBridge)."""
        return self._local.failed_deliveries

    def put(self, events: Sequence[Event]) -> list[str]:
        """Publish like :meth:`publish`; return the ids EventBridge gave the events (the ids rules deliver)."""
        self._assigned.ids = {}
        try:
            self.publish(events)
            return [self._assigned.ids[event.id] for event in events]
        finally:
            self._assigned.ids = None

    def _entry(self, event: Event) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "EventBusName": self.bus_name,
            "Source": event.source,
            "DetailType": event.detail_type,
            "Detail": json.dumps(event.to_dict()["detail"], separators=(",", ":")),
            "Time": event.time,
        }
        if event.resources:
            entry["Resources"] = list(event.resources)
        return entry

    def _publish(self, events: list[Event]) -> None:
        entries: list[tuple[str, dict[str, Any]]] = []
        sizes: list[int] = []
        for event in events:
            entry = self._entry(event)
            size = entry_size(entry)
            if size > MAX_EVENT_BYTES:
                name = f"event {event.id} ({event.source} / {event.detail_type})"
                raise MessageTooLargeError("Event", name, size, MAX_EVENT_BYTES, "EventBridge")
            entries.append((event.id, entry))
            sizes.append(size)
        batches = chunks(entries, sizes, max_count=_BATCH, max_bytes=MAX_EVENT_BYTES)
        try:
            send_batches(
                "EventBridge PutEvents",
                batches,
                lambda pair: pair[0],
                self._put,
                attempts=self.attempts,
                base_seconds=self._retry_base_seconds,
            )
        except BatchFailedError as exc:
            accepted = set(exc.accepted)
            self._local._publish([event for event in events if event.id in accepted])
            raise
        logger.debug("bus=<%s>, events=<%d>, calls=<%d> | published", self.bus_name, len(events), len(batches))
        self._local._publish(events)

    def _put(self, batch: list[tuple[str, dict[str, Any]]]) -> Refused:
        with translated(f"EventBridge PutEvents to {self.bus_name}"):
            response = self.client.put_events(Entries=[entry for _, entry in batch])
        assigned = getattr(self._assigned, "ids", None)
        if assigned is not None:
            for (event_id, _), result in zip(batch, response.get("Entries", []), strict=False):
                if result.get("EventId"):
                    assigned[event_id] = result["EventId"]
        if not response.get("FailedEntryCount"):
            return {}
        # Result entries are in the order of the request's entries.
        return {
            event_id: (
                str(result["ErrorCode"]),
                str(result.get("ErrorMessage", "")),
                result["ErrorCode"] not in _REFUSED_CODES,
            )
            for (event_id, _), result in zip(batch, response["Entries"], strict=True)
            if result.get("ErrorCode")
        }

    def _subscribe(self, subscription: Subscription) -> None:
        self._local._subscribe(subscription)

    def _unsubscribe(self, subscription: Subscription) -> None:
        self._local._unsubscribe(subscription)
