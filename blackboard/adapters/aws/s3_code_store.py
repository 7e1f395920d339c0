"""The CodeStore port on S3: blobs under ``<prefix><sha256>`` in a versioned bucket, with SHA-256 checksums."""

from __future__ import annotations

import base64
import logging
from typing import Any

from blackboard.adapters.aws._client_errors import error_code, translated
from blackboard.adapters.aws._clients import make_client
from blackboard.exceptions import ConfigurationError
from blackboard.ports.code_store import CodeStore

__all__ = ["S3CodeStore"]

logger = logging.getLogger(__name__)

_ENCRYPTIONS = ("AES256", "aws:kms", "aws:kms:dsse")
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


class S3CodeStore(CodeStore):
    """Content-addressed blobs in an S3 bucket (the bucket is versioned, so an overwrite never loses a blob).

    Each object is written with an explicit SHA-256 checksum (S3 refuses an upload whose bytes do not match it) and
    server-side encryption. S3's checksum is not trusted on the way back: every ``get`` hashes the bytes itself and
    raises :class:`IntegrityError` when they do not match (an overwrite with other bytes carries a checksum of its
    own). ``put`` is idempotent: a ``HeadObject`` first, then the object is read and verified, and written only
    when it is missing or damaged (``put`` repairs what ``get`` refuses).

    API calls: ``put`` of a new blob 2 (HEAD, PUT), of a stored one 2 (HEAD, GET), of a damaged one 3; ``get`` 1;
    ``exists`` 1. The caller needs ``s3:GetObject``, ``s3:PutObject`` and ``s3:ListBucket`` (without the last, S3
    answers 403 instead of 404 for a missing key).

    Args:
        bucket: the bucket's name.
        prefix: prepended to the SHA-256 to make the object key.
        client: an S3 client (else one from ``session``, else from the default session).
        session: a boto3 session to create the client from.
        server_side_encryption: ``"AES256"`` (S3-managed keys), ``"aws:kms"`` or ``"aws:kms:dsse"``.
        kms_key_id: the KMS key for ``aws:kms``; the bucket's default key when omitted.
    """

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "code/",
        client: Any = None,
        session: Any = None,
        server_side_encryption: str = "AES256",
        kms_key_id: str | None = None,
    ) -> None:
        if not bucket:
            raise ConfigurationError("S3CodeStore needs a bucket name")
        if server_side_encryption not in _ENCRYPTIONS:
            raise ConfigurationError(
                f"server_side_encryption must be one of {', '.join(_ENCRYPTIONS)}, not {server_side_encryption!r}"
            )
        if kms_key_id is not None and server_side_encryption == "AES256":
            raise ConfigurationError("kms_key_id needs server_side_encryption='aws:kms' (or 'aws:kms:dsse')")
        self.bucket = bucket
        self.prefix = prefix
        self.server_side_encryption = server_side_encryption
        self.kms_key_id = kms_key_id
        self.client = make_client("s3", client=client, session=session)

    def key(self, sha256: str) -> str:
        """Return the object key that holds (or would hold) the blob with this SHA-256."""
        self._check(sha256)
        return self._key(sha256)

    def _key(self, sha256: str) -> str:
        return f"{self.prefix}{sha256}"

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _write(self, key: str, data: bytes, sha256: str) -> None:
        extra: dict[str, Any] = {"ServerSideEncryption": self.server_side_encryption}
        if self.kms_key_id is not None:
            extra["SSEKMSKeyId"] = self.kms_key_id
        with translated(f"S3 PutObject {self._where(key)}"):
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType="application/octet-stream",
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256)).decode(),
                **extra,
            )
        logger.debug("key=<%s>, bytes=<%d> | stored blob", key, len(data))

    def _read(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        with translated(f"S3 GetObject {self._where(key)}"):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if error_code(exc) in _MISSING:
                    return None
                raise
            data: bytes = response["Body"].read()
        return data

    def _exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        with translated(f"S3 HeadObject {self._where(key)}"):
            try:
                self.client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if error_code(exc) in _MISSING:
                    return False
                raise
        return True
