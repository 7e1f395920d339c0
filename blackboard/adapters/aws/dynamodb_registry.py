"""The Registry port on DynamoDB (layout: docs/aws-tables.md).

One partition per agent name (``pk = AGENT#<name>``) holds each version's manifest (``sk = V#<version>``, 8 digits
so that versions sort as numbers) and, apart, its stats (``V#<version>#STATS``): a completion's ``ADD`` touches only
the small stats item, never the manifest and so never the indexes. ``gsi1`` lists every version by (name, version);
``gsi2`` the versions in one lifecycle state. A counter item (``REGISTRY``/``REVISION``) is bumped in the same
transaction as every change that matching cares about. Nothing scans.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from decimal import Decimal
from typing import Any

from blackboard.adapters.aws._clients import make_client
from blackboard.adapters.aws._dynamodb import (
    ITEM_LIMIT,
    Item,
    Table,
    from_attribute,
    item_size,
    number,
    retry_conflicts,
    string,
    to_attribute,
    to_decimal,
)
from blackboard.adapters.aws._dynamodb_payloads import dumps
from blackboard.adapters.aws.exceptions import PayloadTooLargeError
from blackboard.exceptions import AgentNotFoundError, UnreadableRecordError
from blackboard.ports.registry import Registry, StatsDelta
from blackboard.quarantine import Unreadable, load
from blackboard.records import AgentManifest, AgentStats
from blackboard.states import AgentState

__all__ = ["DynamoDBRegistry"]

_ALL = "AGENTS"
_STATS = "#STATS"
_REVISION_KEY: Item = {"pk": string("REGISTRY"), "sk": string("REVISION")}
_BUMP = {
    "Update": {
        "Key": _REVISION_KEY,
        "UpdateExpression": "ADD #r :one",
        "ExpressionAttributeNames": {"#r": "revision"},
        "ExpressionAttributeValues": {":one": number(1)},
    }
}
#: Fields kept out of the manifest document: they change after the put and live in their own attributes.
_MUTABLE = {"state", "stats", "embedding", "embedding_model"}
_BUCKETS = "duration_buckets"


def _partition(name: str) -> dict[str, Any]:
    return string(f"AGENT#{name}")


def _version_key(name: str, version: int) -> Item:
    return {"pk": _partition(name), "sk": string(f"V#{version:08d}")}


def _stats_key(name: str, version: int) -> Item:
    return {"pk": _partition(name), "sk": string(f"V#{version:08d}{_STATS}")}


def _order(name: str, version: int) -> str:
    # "#" sorts before every character a name may hold, so this orders like the tuple (name, version).
    return f"{name}#{version:08d}"


def _in_state(state: AgentState) -> str:
    return f"AGENTS#{state.value}"


class DynamoDBRegistry(Registry):
    """Registry in a DynamoDB table (``pk``/``sk``, indexes ``gsi1`` and ``gsi2``).

    Args:
        table_name: the registry table.
        client: a boto3 DynamoDB client (else one is made from ``session``, else from the default session).
        session: a boto3 session to make the client from.
    """

    def __init__(self, table_name: str, *, client: Any = None, session: Any = None) -> None:
        self.table = Table(make_client("dynamodb", client=client, session=session), table_name)

    def _insert(self, manifest: AgentManifest) -> bool:
        item: Item = {
            **_version_key(manifest.name, manifest.version),
            "kind": string("agent"),
            "name": string(manifest.name),
            "version": number(manifest.version),
            "state": string(manifest.state.value),
            "doc": string(dumps(manifest.model_dump(mode="json", by_alias=True, exclude=_MUTABLE))),
            "gsi1pk": string(_ALL),
            "gsi1sk": string(_order(manifest.name, manifest.version)),
            "gsi2pk": string(_in_state(manifest.state)),
            "gsi2sk": string(_order(manifest.name, manifest.version)),
        }
        if manifest.embedding is not None:
            item["embedding"] = {"B": _pack(manifest.embedding)}
        if manifest.embedding_model is not None:
            item["embedding_model"] = string(manifest.embedding_model)
        if (size := item_size(item)) > ITEM_LIMIT:
            raise PayloadTooLargeError(f"AgentManifest {manifest.name}@{manifest.version}", size, ITEM_LIMIT)
        stats = {
            **_stats_key(manifest.name, manifest.version),
            "kind": string("agent-stats"),
            "name": string(manifest.name),
            "version": number(manifest.version),
        }
        operations = [
            {"Put": {"Item": item, "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"Item": stats, "ConditionExpression": "attribute_not_exists(pk)"}},
            _BUMP,
        ]
        reasons = retry_conflicts(lambda: self.table.transact(operations), f"put {manifest.name}@{manifest.version}")
        return reasons is None

    def _revision(self) -> int:
        item = self.table.get(_REVISION_KEY)
        return 0 if item is None else int(item["revision"]["N"])

    def _latest_version(self, name: str) -> int:
        items = self.table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :v)",
            ExpressionAttributeValues={":pk": _partition(name), ":v": string("V#")},
            ExpressionAttributeNames={"#version": "version"},
            ProjectionExpression="#version",
            ScanIndexForward=False,
            ConsistentRead=True,
            Limit=1,
        )
        latest = next(items, None)
        return 0 if latest is None else int(latest["version"]["N"])

    def _get(self, name: str, version: int) -> AgentManifest | None:
        items = self.table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :v)",
            ExpressionAttributeValues={":pk": _partition(name), ":v": _version_key(name, version)["sk"]},
            ConsistentRead=True,
        )
        found = _pair(items)
        if not found:
            return None
        if isinstance(found[0], Unreadable):
            raise UnreadableRecordError(found[0].kind, found[0].key, found[0].reason)
        return found[0]

    def _versions(self, name: str) -> list[AgentManifest | Unreadable]:
        items = self.table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :v)",
            ExpressionAttributeValues={":pk": _partition(name), ":v": string("V#")},
            ConsistentRead=True,
        )
        return _pair(items)

    def _page(
        self, state: AgentState | None, after: tuple[str, int] | None, limit: int
    ) -> list[AgentManifest | Unreadable]:
        index, partition = ("gsi1", _ALL) if state is None else ("gsi2", _in_state(state))
        request: dict[str, Any] = {
            "IndexName": index,
            "KeyConditionExpression": f"{index}pk = :p",
            "ExpressionAttributeValues": {":p": string(partition)},
            "Limit": limit,
        }
        if after is not None:
            request["KeyConditionExpression"] += f" AND {index}sk > :after"
            request["ExpressionAttributeValues"][":after"] = string(_order(*after))
        manifests: list[Item] = []
        for item in self.table.query(**request):  # follows LastEvaluatedKey until the page is full
            manifests.append(item)
            if len(manifests) == limit:
                break
        keys = [_stats_key(i["name"]["S"], int(i["version"]["N"])) for i in manifests]
        stats = {(i["name"]["S"], int(i["version"]["N"])): i for i in self.table.batch_get(keys)}
        return [_manifest(i, stats.get((i["name"]["S"], int(i["version"]["N"])))) for i in manifests]

    def _cas_state(self, name: str, version: int, source: AgentState, target: AgentState) -> bool:
        operations = [
            {
                "Update": {
                    "Key": _version_key(name, version),
                    "UpdateExpression": "SET #s = :target, gsi2pk = :partition",
                    "ConditionExpression": "#s = :source",
                    "ExpressionAttributeNames": {"#s": "state"},
                    "ExpressionAttributeValues": {
                        ":target": string(target.value),
                        ":source": string(source.value),
                        ":partition": string(_in_state(target)),
                    },
                }
            },
            _BUMP,
        ]
        reasons = retry_conflicts(lambda: self.table.transact(operations), f"set the state of {name}@{version}")
        if reasons is None:
            return True
        if self.table.get(_version_key(name, version), projection="pk") is None:
            raise AgentNotFoundError(name, version)
        return False

    def _add_stats(self, name: str, version: int, delta: StatsDelta) -> AgentStats:
        adds: list[str] = []
        names: dict[str, str] = {}
        values: dict[str, Any] = {}

        def add(attribute: str, amount: float | int) -> None:
            placeholder = f"a{len(adds)}"
            if isinstance(amount, float):
                amount = round(amount, 6)  # microseconds of a millisecond total: bounded DynamoDB precision
            names[f"#{placeholder}"] = attribute
            values[f":{placeholder}"] = to_attribute(to_decimal(amount, attribute))
            adds.append(f"#{placeholder} :{placeholder}")

        for field in dataclasses.fields(delta):
            if field.name != _BUCKETS and field.name in AgentStats.model_fields:
                add(f"stats_{field.name}", getattr(delta, field.name))
        if _BUCKETS in AgentStats.model_fields:
            for index, count in enumerate(getattr(delta, _BUCKETS, ())):
                if count:
                    add(f"stats_d{index}", count)
        # The item as it was comes back with the update (no read of its own): the stats after it are that plus delta.
        applied, before = retry_conflicts(
            lambda: self.table.update_returning(
                _stats_key(name, version), "ADD " + ", ".join(adds), values, "attribute_exists(pk)", names
            ),
            f"count a completion of {name}@{version}",
        )
        if not applied:
            raise AgentNotFoundError(name, version)
        return delta.applied_to(_stats(before or {}))

    def _set_embedding(self, name: str, version: int, embedding: list[float], model: str) -> None:
        operations = [
            {
                "Update": {
                    "Key": _version_key(name, version),
                    "UpdateExpression": "SET #e = :e, #m = :m",
                    "ConditionExpression": "attribute_exists(pk)",
                    "ExpressionAttributeNames": {"#e": "embedding", "#m": "embedding_model"},
                    "ExpressionAttributeValues": {":e": {"B": _pack(embedding)}, ":m": string(model)},
                }
            },
            _BUMP,
        ]
        reasons = retry_conflicts(lambda: self.table.transact(operations), f"set the embedding of {name}@{version}")
        if reasons is not None:
            raise AgentNotFoundError(name, version)


def _pack(embedding: list[float]) -> bytes:
    """Float64, little-endian: exact, and a third of the size of DynamoDB numbers."""
    return struct.pack(f"<{len(embedding)}d", *embedding)


def _unpack(value: dict[str, Any]) -> list[float]:
    raw: bytes = from_attribute(value)
    return list(struct.unpack(f"<{len(raw) // 8}d", raw))


def _pair(items: Any) -> list[AgentManifest | Unreadable]:
    """Manifests from the items of one agent partition (each version's manifest is followed by its stats item)."""
    manifests: list[Item] = []
    stats: dict[str, Item] = {}
    for item in items:
        sort_key = item["sk"]["S"]
        if sort_key.endswith(_STATS):
            stats[sort_key.removesuffix(_STATS)] = item
        else:
            manifests.append(item)
    return [_manifest(m, stats.get(m["sk"]["S"])) for m in manifests]


def _manifest(item: Item, stats: Item | None) -> AgentManifest | Unreadable:
    key = (item["pk"]["S"].removeprefix("AGENT#"), str(int(item["sk"]["S"].removeprefix("V#"))))
    return load("agent", key, lambda: _decode_manifest(item, stats))


def _decode_manifest(item: Item, stats: Item | None) -> AgentManifest:
    document: dict[str, Any] = json.loads(item["doc"]["S"])
    document["state"] = item["state"]["S"]
    document["stats"] = _stats(stats or {})
    if "embedding" in item:
        document["embedding"] = _unpack(item["embedding"])
    if "embedding_model" in item:
        document["embedding_model"] = item["embedding_model"]["S"]
    return AgentManifest.model_validate(document)


def _stats(item: Item) -> AgentStats:
    """Stats from ``stats_<field>`` attributes (and ``stats_d<i>`` for duration buckets); missing counts are 0."""
    values: dict[str, Any] = {}
    for name, field in AgentStats.model_fields.items():
        if name == _BUCKETS:
            default = list(field.get_default(call_default_factory=True) or ())
            present = [int(k[7:]) for k in item if k.startswith("stats_d") and k[7:].isdigit()]
            size = max([len(default), *(i + 1 for i in present)])
            values[name] = [
                int(from_attribute(item[f"stats_d{i}"])) if f"stats_d{i}" in item else 0 for i in range(size)
            ]
            continue
        attribute = item.get(f"stats_{name}")
        if attribute is not None:
            amount: Decimal = from_attribute(attribute)
            values[name] = float(amount) if field.annotation is float else int(amount)
    return AgentStats.model_validate(values)
