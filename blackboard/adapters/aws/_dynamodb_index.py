"""Reads of the blackboard's sharded, keys-only indexes (layout: docs/aws-tables.md).

Each index partition key is written in :data:`INDEX_SHARDS` shards, so a reader queries every shard of each
partition it needs (and the unsharded key, which holds entries written before sharding) and merges the answers by
sort key: each Query returns its partition in sort-key order, so a k-way merge keeps the order. The indexes project
keys only: a reader takes the keys it needs, in order, and fetches those items from the table with BatchGetItem
(100 keys a call). Those reads are eventually consistent, like the index itself (half the price of consistent
reads): the watchdog's conditional transitions already tolerate a record seen a moment late.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from typing import Any

from blackboard.adapters.aws._dynamodb import Item, Table, string
from blackboard.adapters.aws._dynamodb_items import shards

__all__ = ["fetch", "index_keys"]


def _partition_keys(
    table: Table, index: str, partition: str, below: str | None, descending: bool, page: int
) -> Iterator[tuple[str, Item]]:
    request: dict[str, Any] = {
        "IndexName": index,
        "KeyConditionExpression": f"{index}pk = :p",
        "ExpressionAttributeValues": {":p": string(partition)},
        "ProjectionExpression": f"pk, sk, {index}sk",
        "ScanIndexForward": not descending,
        "Limit": page,
    }
    if below is not None:
        request["KeyConditionExpression"] += f" AND {index}sk < :below"
        request["ExpressionAttributeValues"][":below"] = string(below)
    for item in table.query(**request):
        yield item[f"{index}sk"]["S"], {"pk": item["pk"], "sk": item["sk"]}


def index_keys(
    table: Table,
    index: str,
    partitions: Iterable[str],
    *,
    below: str | None = None,
    descending: bool = False,
    page: int = 100,
) -> Iterator[tuple[str, Item]]:
    """``(index sort key, table key)`` of every entry of ``partitions`` (each with all its shards), merged in order.

    Args:
        table: the table.
        index: ``gsi1`` or ``gsi2``.
        partitions: the partition keys before sharding.
        below: only entries whose index sort key is below this.
        descending: newest (highest sort key) first.
        page: the ``Limit`` of each Query page (a reader that needs ``n`` entries passes ``n``).
    """
    streams = [
        _partition_keys(table, index, shard, below, descending, max(1, min(page, 1000)))
        for partition in partitions
        for shard in shards(partition)
    ]
    yield from heapq.merge(*streams, key=lambda pair: pair[0], reverse=descending)


def fetch(table: Table, keys: list[Item]) -> list[Item]:
    """The items of ``keys`` in the order of ``keys`` (eventually consistent); keys with no item are left out."""
    found = {(item["pk"]["S"], item["sk"]["S"]): item for item in table.batch_get(keys, consistent=False)}
    items = (found.get((key["pk"]["S"], key["sk"]["S"])) for key in keys)
    return [item for item in items if item is not None]
