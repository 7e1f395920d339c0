"""Conformance: the CodeStore port: content addressing and tamper detection."""

from __future__ import annotations

import hashlib

import pytest

from blackboard import Backends, IntegrityError, NotFoundError, RecordValidationError
from blackboard.adapters import LocalCodeStore, MemoryCodeStore
from blackboard.adapters.aws import S3CodeStore
from blackboard.ports import CodeStore

CODE = b"def handler(**kwargs):\n    return {'ok': True}\n"


def _tamper(store: CodeStore, sha256: str, data: bytes) -> None:
    """Change stored bytes behind the store's back, as an attacker with disk access would."""
    if isinstance(store, LocalCodeStore):
        path = store.path(sha256)
        path.chmod(0o644)
        path.write_bytes(data)
    elif isinstance(store, MemoryCodeStore):
        store._blobs[sha256] = data
    elif isinstance(store, S3CodeStore):  # a new version of the object: versioning keeps the old one
        store.client.put_object(Bucket=store.bucket, Key=store.key(sha256), Body=data)
    else:  # pragma: no cover - a new adapter must teach this test how to tamper with it
        raise NotImplementedError(type(store).__name__)


def test_put_is_content_addressed_and_idempotent(backends: Backends) -> None:
    store = backends.code_store
    ref = store.put(CODE)
    assert ref.sha256 == hashlib.sha256(CODE).hexdigest()
    assert store.put(CODE) == ref
    assert store.get(ref.sha256) == CODE
    assert store.exists(ref.sha256)


def test_tampered_content_is_refused(backends: Backends) -> None:
    store = backends.code_store
    ref = store.put(CODE)
    _tamper(store, ref.sha256, CODE.replace(b"True", b"__import__('os').system('id')"))
    with pytest.raises(IntegrityError) as raised:
        store.get(ref.sha256)
    assert raised.value.sha256 == ref.sha256 and raised.value.actual != ref.sha256
    assert store.put(CODE) == ref  # putting the genuine bytes again repairs it
    assert store.get(ref.sha256) == CODE


def test_missing_and_malformed_keys(backends: Backends) -> None:
    store = backends.code_store
    with pytest.raises(NotFoundError):
        store.get("0" * 64)
    assert not store.exists("0" * 64)
    for bad in ("../../etc/passwd", "ABC", "0" * 63):
        with pytest.raises(RecordValidationError):
            store.get(bad)


def test_json_documents(backends: Backends) -> None:
    ref = backends.code_store.put_json({"b": [1, 2], "a": None})
    assert backends.code_store.get_json(ref.sha256) == {"a": None, "b": [1, 2]}
    assert backends.code_store.put_json({"a": None, "b": [1, 2]}) == ref
