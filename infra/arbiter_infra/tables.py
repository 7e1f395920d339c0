"""The DynamoDB tables: the blackboard (orchestrations, tasks, waves, notes) and the registry (agent manifests)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

__all__ = ["INDEX_NAMES", "TTL_ATTRIBUTE", "Tables"]

#: The two global secondary indexes of each table (``gsi1pk``/``gsi1sk`` and ``gsi2pk``/``gsi2sk``).
INDEX_NAMES = ("gsi1", "gsi2")
#: What each table's indexes project. The blackboard's readers (the sweeper, ``orchestrations list``) only need keys
#: in order and read the items themselves, so an index write is a small key entry, not a copy of a task or an
#: orchestration with its conversation; the registry's listings read manifests straight from the index.
_PROJECTIONS = {"Blackboard": dynamodb.ProjectionType.KEYS_ONLY, "Registry": dynamodb.ProjectionType.ALL}
#: The blackboard's TTL attribute (epoch seconds).
TTL_ATTRIBUTE = "expires_at"

# DynamoDB has no IAM action for a transaction itself: TransactWriteItems is authorized item by item with the
# actions below (ConditionCheckItem for its condition checks), TransactGetItems with GetItem.
_READ = ("dynamodb:GetItem", "dynamodb:Query")
# BatchGetItem reads the table only (never an index): several tasks at once, a page of registry stats.
_BATCH_READ = ("dynamodb:BatchGetItem",)
_WRITE = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem")


class Tables(Construct):
    """Both tables: on-demand, point-in-time recovery, deletion protection as configured; grants by role."""

    def __init__(self, scope: Construct, construct_id: str, *, deletion_protection: bool, retain_data: bool) -> None:
        """Define the blackboard and registry tables.

        Args:
            scope: the parent construct.
            construct_id: this construct's id.
            deletion_protection: turn on DynamoDB deletion protection for both tables.
            retain_data: keep the tables when the stack is deleted (else they are deleted with it).
        """
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if retain_data else RemovalPolicy.DESTROY
        self.blackboard = self._table("Blackboard", deletion_protection, removal, ttl=TTL_ATTRIBUTE)
        self.registry = self._table("Registry", deletion_protection, removal, ttl=None)

    def _table(self, name: str, protect: bool, removal: RemovalPolicy, *, ttl: str | None) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            name,
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            deletion_protection=protect,
            time_to_live_attribute=ttl,
            removal_policy=removal,
        )
        for index in INDEX_NAMES:
            table.add_global_secondary_index(
                index_name=index,
                partition_key=dynamodb.Attribute(name=f"{index}pk", type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name=f"{index}sk", type=dynamodb.AttributeType.STRING),
                projection_type=_PROJECTIONS[name],
            )
        return table

    def grant_blackboard_read_write(self, grantee: iam.IGrantable) -> None:
        """Read (GetItem, Query on the table and its indexes, BatchGetItem) and conditional writes and transactions."""
        _grant(grantee, self.blackboard, _READ, indexes=True)
        _grant(grantee, self.blackboard, _BATCH_READ, indexes=False)
        _grant(grantee, self.blackboard, _WRITE, indexes=False)

    def grant_registry_read(self, grantee: iam.IGrantable) -> None:
        """Read the registry only: GetItem, BatchGetItem, and Query on the table and its indexes."""
        _grant(grantee, self.registry, _READ, indexes=True)
        _grant(grantee, self.registry, _BATCH_READ, indexes=False)

    def grant_registry_update(self, grantee: iam.IGrantable) -> None:
        """Update existing manifests (stats, quarantine): UpdateItem only, so no manifest can be created."""
        _grant(grantee, self.registry, ("dynamodb:UpdateItem",), indexes=False)

    def grant_registry_publish(self, grantee: iam.IGrantable) -> None:
        """Publish manifests: conditional PutItem and UpdateItem."""
        _grant(grantee, self.registry, ("dynamodb:PutItem", "dynamodb:UpdateItem"), indexes=False)


def _grant(grantee: iam.IGrantable, table: dynamodb.Table, actions: tuple[str, ...], *, indexes: bool) -> None:
    resources = [table.table_arn]
    if indexes:
        # Each index by name: narrower than the usual ``index/*``.
        resources += [f"{table.table_arn}/index/{index}" for index in INDEX_NAMES]
    iam.Grant.add_to_principal(grantee=grantee, actions=list(actions), resource_arns=resources)
