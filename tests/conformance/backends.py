"""The backends the conformance suite runs against. A new adapter joins the suite by adding a line here."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from blackboard import Backends
from blackboard._base import utcnow
from blackboard.adapters import (
    InProcessEventBus,
    LocalCodeStore,
    MemoryBlackboard,
    MemoryCodeStore,
    MemoryRegistry,
    MemoryTaskQueue,
    SqliteBlackboard,
    SqliteDatabase,
    SqliteRegistry,
    SqliteTaskQueue,
)

Factory = Callable[[Path, Callable[[], datetime], Callable[[], float]], Backends]


def _memory(root: Path, clock: Callable[[], datetime], queue_clock: Callable[[], float]) -> Backends:
    return Backends(
        MemoryBlackboard(clock=clock),
        MemoryRegistry(),
        MemoryCodeStore(),
        MemoryTaskQueue(max_receives=3, visibility_timeout=30, clock=queue_clock),
        InProcessEventBus(),
    )


def _sqlite(root: Path, clock: Callable[[], datetime], queue_clock: Callable[[], float]) -> Backends:
    database = SqliteDatabase(root / "arbiter.db")
    return Backends(
        SqliteBlackboard(database, clock=clock),
        SqliteRegistry(database),
        LocalCodeStore(root / "code"),
        SqliteTaskQueue(database, max_receives=3, visibility_timeout=30, clock=queue_clock),
        InProcessEventBus(),
        database,
    )


@dataclass(frozen=True)
class ClosingBackends(Backends):
    """Backends that also release test resources (a moto mock, DynamoDB Local tables) when closed."""

    on_close: Callable[[], None] | None = field(default=None, repr=False)

    def close(self) -> None:
        super().close()
        if self.on_close is not None:
            self.on_close()


def _dynamodb(
    client: Any,
    names: tuple[str, str],
    clock: Callable[[], datetime],
    queue_clock: Callable[[], float],
    on_close: Callable[[], None] | None,
) -> Backends:
    from blackboard.adapters.aws import DynamoDBBlackboard, DynamoDBRegistry

    code = MemoryCodeStore()
    return ClosingBackends(
        # No expiry: the suite's clocks start in the past, and DynamoDB Local really deletes expired items (at any
        # moment), which would race the tests. Expiry has its own tests (tests/blackboard/test_aws_dynamodb_items.py).
        DynamoDBBlackboard(names[0], client=client, payloads=code, clock=clock, ttl_days=None),
        DynamoDBRegistry(names[1], client=client),
        code,
        MemoryTaskQueue(max_receives=3, visibility_timeout=30, clock=queue_clock),
        InProcessEventBus(),
        on_close=on_close,
    )


def _aws(root: Path, clock: Callable[[], datetime], queue_clock: Callable[[], float]) -> Backends:
    """Every AWS adapter under moto in-process: DynamoDB, S3, SQS (telling time by ``queue_clock``), EventBridge."""
    from blackboard.adapters.aws import DynamoDBBlackboard, DynamoDBRegistry
    from tests.aws_io_support import MotoBackends, io_adapters, moto_resources, serialized_sqs, sqs_follows
    from tests.aws_support import (
        MotoSerializedClient,
        create_tables,
        dynamodb_client,
        moto_transactions_without_table_copies,
    )

    stack = ExitStack()
    try:
        resources = stack.enter_context(moto_resources(max_receives=3, visibility_timeout=30))
        stack.enter_context(moto_transactions_without_table_copies())
        stack.enter_context(sqs_follows(queue_clock))
        stack.enter_context(serialized_sqs())
        client = MotoSerializedClient(dynamodb_client())
        names = (f"blackboard-{uuid.uuid4().hex[:8]}", f"registry-{uuid.uuid4().hex[:8]}")
        create_tables(client, *names)
        code_store, queue, bus = io_adapters(resources, queue_clock)
    except BaseException:
        stack.close()
        raise
    return MotoBackends(
        DynamoDBBlackboard(names[0], client=client, payloads=code_store, clock=clock),
        DynamoDBRegistry(names[1], client=client),
        code_store,
        queue,
        bus,
        payloads=code_store,
        stack=stack,
    )


def _dynamodb_local(root: Path, clock: Callable[[], datetime], queue_clock: Callable[[], float]) -> Backends:
    """DynamoDB Local (see tests/dynamodb_local.py); the tables are named after ``root`` so processes share them."""
    from tests.aws_support import create_tables, delete_tables, dynamodb_client
    from tests.dynamodb_local import ENDPOINT_ENV, INSTALL_HINT

    endpoint = os.environ.get(ENDPOINT_ENV)
    if not endpoint:
        raise RuntimeError(f"DynamoDB Local is not running ({ENDPOINT_ENV} is not set): {INSTALL_HINT}")
    client = dynamodb_client(endpoint)
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    names = (f"blackboard-{digest}", f"registry-{digest}")
    # Only the process that created the tables deletes them (the others share them while the test runs).
    created = create_tables(client, *names)
    return _dynamodb(client, names, clock, queue_clock, (lambda: delete_tables(client, *names)) if created else None)


FACTORIES: dict[str, Factory] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "aws": _aws,
    "dynamodb-local": _dynamodb_local,
}
BACKENDS = list(FACTORIES)
#: Backends whose state lives outside the process, so that several processes can work on it at once (moto lives in
#: the test process; DynamoDB Local is a server every process reaches).
SHARED_FILE_BACKENDS = ["sqlite", "dynamodb-local"]
#: Backends that need AWS emulation (marked ``aws``), and DynamoDB Local among them (needs its server).
AWS_BACKENDS = frozenset({"aws", "dynamodb-local"})
SERVER_BACKENDS = frozenset({"dynamodb-local"})


def open_backends(
    name: str,
    root: Path,
    *,
    clock: Callable[[], datetime] = utcnow,
    queue_clock: Callable[[], float] = time.time,
) -> Backends:
    return FACTORIES[name](root, clock, queue_clock)
