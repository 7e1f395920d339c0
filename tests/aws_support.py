"""Helpers for tests against DynamoDB (moto in-process, or DynamoDB Local): the table contract and its tables.

``DYNAMODB_TABLES`` is the one description of the two tables the DynamoDB adapters need (the CDK stack must match
it); :func:`create_tables` makes them from it.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

REGION = "us-east-1"

_KEYS = {"partition_key": ("pk", "S"), "sort_key": ("sk", "S")}


def _indexes(projection: str) -> dict[str, dict[str, Any]]:
    return {
        index: {"partition_key": (f"{index}pk", "S"), "sort_key": (f"{index}sk", "S"), "projection": projection}
        for index in ("gsi1", "gsi2")
    }


#: The table contract of the DynamoDB adapters: two tables, same keys and indexes, on-demand; TTL on the blackboard.
#: The blackboard's indexes project keys only (readers fetch the items); the registry's project every attribute.
DYNAMODB_TABLES: dict[str, dict[str, Any]] = {
    "blackboard": {
        **_KEYS,
        "billing_mode": "PAY_PER_REQUEST",
        "indexes": _indexes("KEYS_ONLY"),
        "ttl_attribute": "expires_at",
    },
    "registry": {**_KEYS, "billing_mode": "PAY_PER_REQUEST", "indexes": _indexes("ALL"), "ttl_attribute": None},
}


def create_table_request(kind: str, name: str) -> dict[str, Any]:
    """The CreateTable request of one table of the contract (``kind``: ``"blackboard"`` or ``"registry"``)."""
    spec = DYNAMODB_TABLES[kind]
    attributes: dict[str, str] = {}

    def key_schema(entry: dict[str, Any]) -> list[dict[str, str]]:
        schema = []
        for role, key_type in (("partition_key", "HASH"), ("sort_key", "RANGE")):
            attribute, attribute_type = entry[role]
            attributes[attribute] = attribute_type
            schema.append({"AttributeName": attribute, "KeyType": key_type})
        return schema

    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": key_schema(spec),
        "BillingMode": spec["billing_mode"],
        "GlobalSecondaryIndexes": [
            {"IndexName": index, "KeySchema": key_schema(entry), "Projection": {"ProjectionType": entry["projection"]}}
            for index, entry in spec["indexes"].items()
        ],
    }
    request["AttributeDefinitions"] = [{"AttributeName": a, "AttributeType": t} for a, t in sorted(attributes.items())]
    return request


def create_tables(client: Any, blackboard_table: str, registry_table: str) -> bool:
    """Create both tables of the contract (TTL included) unless they exist; return whether they were created."""
    created = False
    for kind, name in (("blackboard", blackboard_table), ("registry", registry_table)):
        try:
            client.create_table(**create_table_request(kind, name))
        except client.exceptions.ResourceInUseException:
            continue
        created = True
        client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200})
        ttl_attribute = DYNAMODB_TABLES[kind]["ttl_attribute"]
        if ttl_attribute is not None:
            client.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute}
            )
    return created


def delete_tables(client: Any, *names: str) -> None:
    """Delete tables (DynamoDB Local keeps them for the whole session otherwise)."""
    for name in names:
        try:
            client.delete_table(TableName=name)
        except client.exceptions.ResourceNotFoundException:
            continue


@functools.cache
def fake_session() -> Any:
    """A boto3 session with fake credentials: the tests only ever talk to moto or DynamoDB Local (shared: a new
    session loads the service models again, 0.1 s)."""
    import boto3

    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)


def dynamodb_client(endpoint_url: str | None = None, *, max_attempts: int = 5) -> Any:
    """A DynamoDB client for moto (no endpoint, inside ``mock_aws``) or DynamoDB Local (its endpoint)."""
    from blackboard.adapters.aws._clients import client_config

    return fake_session().client("dynamodb", endpoint_url=endpoint_url, config=client_config(max_attempts=max_attempts))


class MotoSerializedClient:
    """A boto3 client whose calls run one at a time, for moto in-process.

    moto has no locking: two threads' conditional writes to the same item can both succeed (measured here: 5 double
    wins in 100 races of 4 threads doing the same conditional PutItem). DynamoDB applies every request atomically;
    running moto's calls one at a time gives that back. DynamoDB Local needs no such help.
    """

    _lock = threading.RLock()

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name.startswith("_") or not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


@contextlib.contextmanager
def moto_transactions_without_table_copies() -> Iterator[None]:
    """Make moto's TransactWriteItems cost what the transaction touches, not what the table holds.

    moto backs up every table a transaction touches with a deep copy, to roll back on failure: 6 ms per transaction
    on an empty table, 250 ms at 1,000 items (measured here), which made the conformance suite's property test take
    minutes. This keeps moto's own code and semantics, but saves and restores only the items the transaction names
    (the only ones it can change). Use it only with :class:`MotoSerializedClient` (one moto call at a time).
    """
    import moto.dynamodb.models as models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    real_copy = models.copy
    original = DynamoDBBackend.transact_write_items

    class _TablesAsThemselves:
        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = []
        for entry in transact_items:
            operation = next(iter(entry.values()))
            table = self.get_table(operation["TableName"])
            attributes = operation.get("Key") or operation["Item"]
            hash_key = DynamoType(attributes[table.hash_key_attr])
            range_key = DynamoType(attributes[table.range_key_attr]) if table.range_key_attr else None
            saved.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_key, range_key, item in reversed(saved):
                bucket = table.items[hash_key] if range_key is not None else table.items
                slot = range_key if range_key is not None else hash_key
                if item is None:
                    bucket.pop(slot, None)
                else:
                    bucket[slot] = item
            raise

    models.copy = _TablesAsThemselves  # type: ignore[assignment]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    try:
        yield
    finally:
        DynamoDBBackend.transact_write_items = original  # type: ignore[method-assign]
        models.copy = real_copy


class InterceptingClient:
    """A boto3 client wrapper for tests: records every call, and lets a test replace one operation.

    ``hooks[operation](real, kwargs)`` runs instead of the call: it may raise, change ``kwargs`` or call ``real``.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[str] = []
        self.hooks: dict[str, Callable[[Callable[..., Any], dict[str, Any]], Any]] = {}

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name.startswith("_") or not callable(attribute) or name in ("get_waiter", "get_paginator"):
            return attribute

        def call(**kwargs: Any) -> Any:
            self.calls.append(name)
            hook = self.hooks.get(name)
            return attribute(**kwargs) if hook is None else hook(attribute, kwargs)

        return call


@dataclasses.dataclass(frozen=True)
class MotoTables:
    """The two tables of the contract on moto, and a client to reach them."""

    client: Any
    blackboard: str
    registry: str


@contextlib.contextmanager
def moto_dynamodb() -> Iterator[MotoTables]:
    """Fresh tables on moto in this process, for as long as the context lasts."""
    from moto import mock_aws

    with mock_aws(), moto_transactions_without_table_copies():
        client = MotoSerializedClient(dynamodb_client())
        tables = MotoTables(client, "blackboard-test", "registry-test")
        create_tables(client, tables.blackboard, tables.registry)
        yield tables
