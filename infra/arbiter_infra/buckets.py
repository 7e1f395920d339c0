"""The S3 buckets: agent code (by SHA-256), offloaded payloads, and the server access logs of both."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

__all__ = ["Buckets"]


class Buckets(Construct):
    """Versioned, encrypted, SSL-only, private buckets with lifecycle rules; grants by role.

    The code bucket holds agent code and validation reports by SHA-256 (written only by the Fabricator); the payload
    bucket holds large values offloaded from DynamoDB and large task outputs. Both log their access to the log bucket.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        noncurrent_version_days: int,
        access_log_days: int,
        retain_data: bool,
    ) -> None:
        """Define the log, code and payload buckets.

        Args:
            scope: the parent construct.
            construct_id: this construct's id.
            noncurrent_version_days: days a replaced or deleted object version is kept.
            access_log_days: days server access logs are kept.
            retain_data: keep the buckets when the stack is deleted (else they are deleted with it, if empty).
        """
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if retain_data else RemovalPolicy.DESTROY
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            # Server access log delivery supports SSE-S3 only.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            removal_policy=removal,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(access_log_days),
                    noncurrent_version_expiration=Duration.days(1),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        )
        self.code = self._bucket("Code", "code/", noncurrent_version_days, removal)
        self.payload = self._bucket("Payload", "payload/", noncurrent_version_days, removal)

    def _bucket(self, name: str, log_prefix: str, noncurrent_days: int, removal: RemovalPolicy) -> s3.Bucket:
        return s3.Bucket(
            self,
            name,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=log_prefix,
            removal_policy=removal,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-noncurrent-versions",
                    noncurrent_version_expiration=Duration.days(noncurrent_days),
                    expired_object_delete_marker=True,
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        )

    def grant_code_read(self, grantee: iam.IGrantable) -> None:
        """Read agent code and reports (GetObject; ListBucket so a missing key is a 404, not a 403)."""
        _grant_read(grantee, self.code)

    def grant_code_write(self, grantee: iam.IGrantable) -> None:
        """Write agent code and reports (PutObject)."""
        _grant_write(grantee, self.code)

    def grant_payload_read_write(self, grantee: iam.IGrantable) -> None:
        """Read and write offloaded payloads."""
        _grant_read(grantee, self.payload)
        _grant_write(grantee, self.payload)


def _grant_read(grantee: iam.IGrantable, bucket: s3.Bucket) -> None:
    iam.Grant.add_to_principal(grantee=grantee, actions=["s3:GetObject"], resource_arns=[bucket.arn_for_objects("*")])
    iam.Grant.add_to_principal(grantee=grantee, actions=["s3:ListBucket"], resource_arns=[bucket.bucket_arn])


def _grant_write(grantee: iam.IGrantable, bucket: s3.Bucket) -> None:
    iam.Grant.add_to_principal(grantee=grantee, actions=["s3:PutObject"], resource_arns=[bucket.arn_for_objects("*")])
