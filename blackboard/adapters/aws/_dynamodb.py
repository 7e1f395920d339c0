"""DynamoDB plumbing shared by the blackboard and registry adapters.

- a codec between Python values and DynamoDB attribute values (``TypeSerializer``/``TypeDeserializer``; floats go
  through ``Decimal`` because DynamoDB numbers are decimals, and come back as ``Decimal`` for the caller to convert);
- :class:`Table`: the few calls the adapters make (GetItem, PutItem, UpdateItem, Query, BatchGetItem,
  TransactWriteItems), with botocore errors turned into this package's errors and transaction cancellations turned
  into reason codes;
- :func:`retry_conflicts` (from ``_retries``, the adapters' one retry mechanism): application-level conflicts
  (optimistic locks, transactions that collided); throttling and transient errors are retried by botocore itself
  (see ``_clients``).

No call here scans a table: reads are GetItem, BatchGetItem or Query on a key.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NoReturn, TypeVar

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from blackboard.adapters.aws._retries import Conflict, retry_conflicts, retry_leftovers
from blackboard.exceptions import BlackboardError, ConfigurationError, RecordValidationError, StoreUnavailableError

__all__ = [
    "ITEM_LIMIT",
    "TRANSACTION_BYTES",
    "TRANSACTION_ITEMS",
    "WRITE_ID",
    "Conflict",
    "Item",
    "Table",
    "from_attribute",
    "item_size",
    "number",
    "retry_conflicts",
    "string",
    "time_key",
    "to_attribute",
    "to_decimal",
]

logger = logging.getLogger(__name__)

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]
_T = TypeVar("_T")

#: DynamoDB's item size limit, less a margin for our estimate of attribute sizes.
ITEM_LIMIT = 400 * 1024 - 2048
#: BatchGetItem calls for one batch of keys while DynamoDB leaves some unprocessed.
BATCH_GET_ATTEMPTS = 8
#: Items and bytes one TransactWriteItems may carry.
TRANSACTION_ITEMS = 100
TRANSACTION_BYTES = 4 * 1024 * 1024 - 16 * 1024
#: Attribute holding a random id of the write that stored an item (see :meth:`Table.put_once`).
WRITE_ID = "write_id"

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_THROTTLED = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TransactionInProgressException",
        "InternalServerError",
        "ServiceUnavailable",
        "LimitExceededException",
    }
)
_MISCONFIGURED = frozenset(
    {"ResourceNotFoundException", "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException"}
)
#: Cancellation reasons of a transaction that may succeed when the whole operation is tried again.
_RETRY_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})


# ---------------------------------------------------------------- codec


def string(value: str) -> AttributeValue:
    """A string attribute value."""
    return {"S": value}


def number(value: int) -> AttributeValue:
    """A number attribute value of an int."""
    return {"N": str(value)}


def to_decimal(value: float | int | Decimal, field: str = "") -> Decimal:
    """A DynamoDB number from a Python one (floats through their shortest exact repr)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RecordValidationError("DynamoDB item", field, f"{value} cannot be stored as a DynamoDB number")
        return Decimal(repr(value))
    return Decimal(value)


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return to_decimal(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def to_attribute(value: Any) -> AttributeValue:
    """The attribute value of a Python value (str, int, float, bool, None, bytes, dict, list)."""
    serialized: AttributeValue = _SERIALIZER.serialize(_plain(value))
    return serialized


def from_attribute(value: AttributeValue) -> Any:
    """The Python value of an attribute value; numbers come back as ``Decimal``, binaries as ``bytes``."""
    if "B" in value:
        raw = value["B"]
        return bytes(raw.value if hasattr(raw, "value") else raw)
    return _DESERIALIZER.deserialize(value)


def time_key(moment: datetime) -> str:
    """A fixed-width, sortable key of an instant: microseconds since the epoch, zero-padded."""
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return f"{(moment - _EPOCH) // timedelta(microseconds=1):017d}"


def _attribute_size(value: AttributeValue) -> int:
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        return len(data) // 2 + 2
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + _attribute_size(v) for v in data)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _attribute_size(v) for k, v in data.items())
    return 3 + sum(len(str(v)) for v in data)  # SS / NS / BS


def item_size(item: Item) -> int:
    """An upper estimate of an item's size as DynamoDB counts it (attribute names plus values)."""
    return sum(len(name.encode()) + _attribute_size(value) for name, value in item.items())


# ---------------------------------------------------------------- retries


# ---------------------------------------------------------------- the table


class Table:
    """One DynamoDB table through an injected low-level client.

    Args:
        client: a boto3 DynamoDB client.
        name: the table name.
    """

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name

    def get(self, key: Item, *, projection: str | None = None) -> Item | None:
        """A strongly consistent GetItem; ``None`` when there is no such item."""
        request: dict[str, Any] = {"TableName": self.name, "Key": key, "ConsistentRead": True}
        if projection is not None:
            request["ProjectionExpression"] = projection
        response = self._call("GetItem", self.client.get_item, request)
        found: Item | None = response.get("Item")
        return found

    def batch_get(self, keys: Sequence[Item], *, consistent: bool = True) -> list[Item]:
        """Reads of many items (100 per BatchGetItem), strongly consistent unless told, in no particular order."""
        found: list[Item] = []
        for start in range(0, len(keys), 100):
            batch = list(keys[start : start + 100])

            def read(pending: dict[str, Any], last: bool) -> dict[str, Any]:
                response = self._call("BatchGetItem", self.client.batch_get_item, {"RequestItems": pending})
                found.extend(response.get("Responses", {}).get(self.name, []))
                left: dict[str, Any] = response.get("UnprocessedKeys") or {}  # DynamoDB is throttling these reads
                return left

            first = {self.name: {"Keys": batch, "ConsistentRead": consistent}}
            if retry_leftovers(read, first, attempts=BATCH_GET_ATTEMPTS, base_seconds=0.02, max_seconds=1.0):
                raise StoreUnavailableError(f"DynamoDB table {self.name}: reads stayed throttled; retry later")
        return found

    def put(
        self,
        item: Item,
        condition: str | None = None,
        values: Item | None = None,
        names: dict[str, str] | None = None,
    ) -> bool:
        """A PutItem, conditional if ``condition`` is given; ``False`` when the condition does not hold."""
        request: dict[str, Any] = {"TableName": self.name, "Item": item}
        if names:
            request["ExpressionAttributeNames"] = names
        return self._conditional("PutItem", self.client.put_item, request, condition, values)

    def put_once(
        self,
        item: Item,
        condition: str,
        values: Item | None = None,
        names: dict[str, str] | None = None,
    ) -> bool:
        """A conditional PutItem that tells its own write from another's when botocore retried it.

        A response can be lost after DynamoDB applied the write; botocore then sends it again and the condition
        fails against our own write. The item carries a fresh ``write_id``: a failed condition with our id stored
        means the put did apply.
        """
        token = uuid.uuid4().hex
        written = {**item, WRITE_ID: {"S": token}}
        if self.put(written, condition, values, names):
            return True
        stored = self.get({"pk": item["pk"], "sk": item["sk"]}, projection=WRITE_ID)
        return stored is not None and stored.get(WRITE_ID, {}).get("S") == token

    def update(
        self,
        key: Item,
        expression: str,
        values: Item | None = None,
        condition: str | None = None,
        names: dict[str, str] | None = None,
    ) -> bool:
        """An UpdateItem, conditional if ``condition`` is given; ``False`` when the condition does not hold."""
        request: dict[str, Any] = {"TableName": self.name, "Key": key, "UpdateExpression": expression}
        if names:
            request["ExpressionAttributeNames"] = names
        return self._conditional("UpdateItem", self.client.update_item, request, condition, values)

    def update_returning(
        self, key: Item, expression: str, values: Item, condition: str, names: dict[str, str]
    ) -> tuple[bool, Item | None]:
        """A conditional UpdateItem that returns the item as it was: before the update, or when the condition failed.

        Returns:
            ``(True, item before the update)``, or ``(False, stored item)`` when the condition did not hold (``None``
            when there is no item, or when the service did not return it).
        """
        request: dict[str, Any] = {
            "TableName": self.name,
            "Key": key,
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_OLD",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        try:
            response = self.client.update_item(**request)
        except ClientError as exc:
            code = _code(exc)
            if code == "ConditionalCheckFailedException":
                stored: Item | None = exc.response.get("Item")
                return False, stored
            if code == "TransactionConflictException":
                raise Conflict("UpdateItem met a transaction in progress") from exc
            self._reraise(exc, "UpdateItem")
        except BotoCoreError as exc:
            raise StoreUnavailableError(f"DynamoDB table {self.name} is unreachable: {exc}") from exc
        before: Item | None = response.get("Attributes")
        return True, before

    def query(self, **request: Any) -> Iterator[Item]:
        """Items of a Query, following ``LastEvaluatedKey`` page after page."""
        request["TableName"] = self.name
        while True:
            response = self._call("Query", self.client.query, request)
            yield from response.get("Items", [])
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            request = {**request, "ExclusiveStartKey": last}

    def transact(self, items: Sequence[dict[str, Any]]) -> list[str] | None:
        """A TransactWriteItems of ``items`` (each ``{"Put"|"Update"|"ConditionCheck": {...}}`` without TableName).

        Each call has its own ``ClientRequestToken``: botocore's retry of a transaction whose response was lost after
        it applied is then answered as applied, instead of failing its conditions against its own writes.

        Returns:
            ``None`` when it was applied, else the cancellation reason code of each item, in order
            (``"None"`` for the items that were not the cause).

        Raises:
            Conflict: it collided with another transaction or was throttled; the caller's retry reads again.
        """
        request: dict[str, Any] = {
            "TransactItems": [{op: {**spec, "TableName": self.name}} for entry in items for op, spec in entry.items()]
        }
        request["ClientRequestToken"] = uuid.uuid4().hex
        try:
            self.client.transact_write_items(**request)
        except ClientError as exc:
            if _code(exc) != "TransactionCanceledException":
                self._reraise(exc, "TransactWriteItems")
            reasons = [str(r.get("Code") or "None") for r in exc.response.get("CancellationReasons") or []]
            if _RETRY_REASONS.intersection(reasons):
                raise Conflict(f"transaction cancelled: {reasons}") from exc
            if "ValidationError" in reasons:
                messages = [r.get("Message") for r in exc.response.get("CancellationReasons") or [] if r.get("Message")]
                raise BlackboardError(f"DynamoDB refused a write to {self.name}: {messages}") from exc
            return reasons or ["ConditionalCheckFailed"]
        except BotoCoreError as exc:
            raise StoreUnavailableError(f"DynamoDB table {self.name} is unreachable: {exc}") from exc
        return None

    # ---------------------------------------------------------------- helpers

    def _conditional(
        self,
        operation: str,
        method: Callable[..., dict[str, Any]],
        request: dict[str, Any],
        condition: str | None,
        values: Item | None,
    ) -> bool:
        if condition is not None:
            request["ConditionExpression"] = condition
        if values:
            request["ExpressionAttributeValues"] = values
        try:
            method(**request)
        except ClientError as exc:
            code = _code(exc)
            if code == "ConditionalCheckFailedException":
                return False
            if code == "TransactionConflictException":
                raise Conflict(f"{operation} met a transaction in progress") from exc
            self._reraise(exc, operation)
        except BotoCoreError as exc:
            raise StoreUnavailableError(f"DynamoDB table {self.name} is unreachable: {exc}") from exc
        return True

    def _call(self, operation: str, method: Callable[..., dict[str, Any]], request: dict[str, Any]) -> dict[str, Any]:
        try:
            return method(**request)
        except ClientError as exc:
            self._reraise(exc, operation)
        except BotoCoreError as exc:
            raise StoreUnavailableError(f"DynamoDB table {self.name} is unreachable: {exc}") from exc

    def _reraise(self, exc: ClientError, operation: str) -> NoReturn:
        """Raise this package's error for a botocore error (the error itself when it is a programming mistake)."""
        code = _code(exc)
        message = exc.response.get("Error", {}).get("Message", "")
        if code in _THROTTLED:
            attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
            raise StoreUnavailableError(
                f"DynamoDB table {self.name}: {operation} still {code} after {attempts + 1} attempt(s); retry later,"
                " or give the table more capacity"
            ) from exc
        if code in _MISCONFIGURED:
            raise ConfigurationError(
                f"DynamoDB table {self.name}: {operation} failed with {code} ({message}); check that the table exists"
                " in this account and region (see docs/aws-tables.md) and that these credentials may use it"
            ) from exc
        raise exc


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
