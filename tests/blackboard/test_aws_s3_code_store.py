"""S3CodeStore under moto: checksums, encryption, versioning, tampering, throttling, API calls per operation."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

from blackboard import ConfigurationError, IntegrityError, NotFoundError, StoreUnavailableError
from blackboard.adapters.aws import S3CodeStore
from blackboard.adapters.aws._clients import client_config
from tests.aws_io_support import CallCounter, MotoResources, answer_with_error, moto_resources
from tests.aws_io_support import no_retry_waits as no_retry_waits  # a fixture

pytestmark = pytest.mark.aws

CODE = b"def handler(**kwargs):\n    return {'ok': True}\n"


@pytest.fixture
def resources() -> Iterator[MotoResources]:
    with moto_resources() as created:
        yield created


@pytest.fixture
def store(resources: MotoResources) -> S3CodeStore:
    return S3CodeStore(resources.bucket, session=resources.session)


def _b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_objects_carry_their_sha256_checksum_and_encryption(store: S3CodeStore) -> None:
    ref = store.put(CODE)
    assert ref.key == f"code/{ref.sha256}" == store.key(ref.sha256)
    head = store.client.head_object(Bucket=store.bucket, Key=ref.key, ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == _b64(CODE)
    assert head["ServerSideEncryption"] == "AES256"


def test_kms_encryption(resources: MotoResources) -> None:
    key_id = resources.client("kms").create_key()["KeyMetadata"]["KeyId"]
    store = S3CodeStore(
        resources.bucket, session=resources.session, server_side_encryption="aws:kms", kms_key_id=key_id
    )
    ref = store.put(CODE)
    head = store.client.head_object(Bucket=store.bucket, Key=ref.key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert key_id in head["SSEKMSKeyId"]
    assert store.get(ref.sha256) == CODE


def test_an_overwrite_with_a_forged_checksum_is_caught_and_repaired(store: S3CodeStore) -> None:
    ref = store.put(CODE)
    evil = CODE.replace(b"True", b"__import__('os').system('id')")
    # moto (unlike S3) accepts a checksum that does not match the bytes: the store must not trust S3's checksum.
    store.client.put_object(Bucket=store.bucket, Key=ref.key, Body=evil, ChecksumSHA256=_b64(CODE))
    with pytest.raises(IntegrityError) as raised:
        store.get(ref.sha256)
    assert raised.value.actual == hashlib.sha256(evil).hexdigest()
    assert store.put(CODE) == ref  # repairs: a new version with the genuine bytes
    assert store.get(ref.sha256) == CODE
    versions = store.client.list_object_versions(Bucket=store.bucket, Prefix=ref.key)["Versions"]
    assert len(versions) == 3  # versioning kept the original and the tampered bytes


def test_missing_blob_and_missing_bucket(resources: MotoResources) -> None:
    store = S3CodeStore(resources.bucket, session=resources.session)
    with pytest.raises(NotFoundError):
        store.get("0" * 64)
    assert not store.exists("0" * 64)
    with pytest.raises(ConfigurationError, match="NoSuchBucket"):
        S3CodeStore("no-such-bucket", session=resources.session).put(CODE)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"server_side_encryption": "rot13"}, "server_side_encryption"),
        ({"kms_key_id": "k"}, "aws:kms"),
    ],
)
def test_bad_settings_are_refused(resources: MotoResources, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        S3CodeStore(resources.bucket, session=resources.session, **options)
    with pytest.raises(ConfigurationError, match="bucket"):
        S3CodeStore("", session=resources.session)


@pytest.mark.usefixtures("no_retry_waits")
def test_throttling_is_retried_then_reported(resources: MotoResources) -> None:
    client = resources.session.client("s3", config=client_config(max_attempts=3))
    store = S3CodeStore(resources.bucket, client=client)
    ref = store.put(CODE)
    body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
    attempts = answer_with_error(client, "GetObject", 503, body, {"Content-Type": "application/xml"})
    with pytest.raises(StoreUnavailableError, match="throttled") as raised:
        store.get(ref.sha256)
    assert raised.value.retryable
    assert len(attempts) == 3 and "after 3 attempts" in str(raised.value)


def test_api_calls_per_operation(store: S3CodeStore) -> None:
    calls = CallCounter(store.client)
    ref = store.put(CODE)
    assert calls.calls == ["HeadObject", "PutObject"]
    calls.reset()
    store.put(CODE)
    assert calls.calls == ["HeadObject", "GetObject"]
    calls.reset()
    store.get(ref.sha256)
    assert calls.calls == ["GetObject"]
