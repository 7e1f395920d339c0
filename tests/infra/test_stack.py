"""CDK assertions on the synthesized template: every property the deployment depends on."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from tests.infra.conftest import Assembly

pytestmark = pytest.mark.infra

SYSTEM_SOURCES = ["arbiter", "arbiter.wrapper", "arbiter.fabricator"]
COMMON_ENV = {
    "ARBITER_BLACKBOARD_TABLE",
    "ARBITER_REGISTRY_TABLE",
    "ARBITER_CODE_BUCKET",
    "ARBITER_PAYLOAD_BUCKET",
    "ARBITER_TASK_QUEUE_URL",
    "ARBITER_FABRICATION_QUEUE_URL",
    "ARBITER_BUS_NAME",
    "ARBITER_MODEL",
    "ARBITER_FABRICATOR_MODEL",
    "ARBITER_APPROVAL",
    "ARBITER_MATCHING",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
}


@pytest.fixture(scope="module")
def template(default_assembly: Assembly) -> Template:
    return Template.from_json(default_assembly.template_json())


@pytest.fixture(scope="module")
def resources(default_assembly: Assembly) -> dict[str, Any]:
    found: dict[str, Any] = default_assembly.template_json()["Resources"]
    return found


def logical_id(resources: dict[str, Any], kind: str, prefix: str) -> str:
    """The one resource of ``kind`` whose logical id is ``prefix`` and the 8-character hash CDK appends."""
    matches = [
        key for key, value in resources.items() if value["Type"] == kind and re.fullmatch(f"{prefix}[0-9A-F]{{8}}", key)
    ]
    assert len(matches) == 1, f"expected one {kind} named {prefix}*, found {matches}"
    return matches[0]


def function(resources: dict[str, Any], name: str) -> dict[str, Any]:
    props: dict[str, Any] = resources[logical_id(resources, "AWS::Lambda::Function", f"Functions{name}")]["Properties"]
    return props


def statements(resources: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """Every statement of the policies attached to the role ``Functions<role>Role``."""
    role_id = logical_id(resources, "AWS::IAM::Role", f"Functions{role}Role")
    found: list[dict[str, Any]] = []
    for value in resources.values():
        if value["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in value["Properties"]["Roles"]:
            found.extend(value["Properties"]["PolicyDocument"]["Statement"])
    assert found, f"no policy attached to {role_id}"
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def granted(resources: dict[str, Any], role: str, resource_id: str) -> set[str]:
    """The actions ``role`` has on anything that refers to ``resource_id`` (the resource itself or its objects)."""
    actions: set[str] = set()
    for statement in statements(resources, role):
        if resource_id in str(statement["Resource"]):
            actions.update(as_list(statement["Action"]))
    return actions


# --- DynamoDB -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Blackboard", "Registry"])
def test_tables_have_the_adapter_shape_on_demand_and_pitr(resources: dict[str, Any], name: str) -> None:
    props = resources[logical_id(resources, "AWS::DynamoDB::Table", f"Tables{name}")]["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["DeletionProtectionEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True
    indexes = {index["IndexName"]: index for index in props["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"gsi1", "gsi2"}
    for name_, index in indexes.items():
        assert index["KeySchema"] == [
            {"AttributeName": f"{name_}pk", "KeyType": "HASH"},
            {"AttributeName": f"{name_}sk", "KeyType": "RANGE"},
        ]
        # The blackboard's readers fetch the items they need: its indexes hold keys only.
        assert index["Projection"] == {"ProjectionType": "KEYS_ONLY" if name == "Blackboard" else "ALL"}
    attributes = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert attributes == {k: "S" for k in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")}


@pytest.mark.parametrize("kind", ["blackboard", "registry"])
def test_tables_are_exactly_what_the_adapters_test_against(resources: dict[str, Any], kind: str) -> None:
    from tests.aws_support import DYNAMODB_TABLES, create_table_request

    props = resources[logical_id(resources, "AWS::DynamoDB::Table", f"Tables{kind.title()}")]["Properties"]
    contract = create_table_request(kind, "any")
    assert props["KeySchema"] == contract["KeySchema"] and props["BillingMode"] == contract["BillingMode"]
    assert sorted(props["AttributeDefinitions"], key=str) == sorted(contract["AttributeDefinitions"], key=str)
    assert sorted(props["GlobalSecondaryIndexes"], key=str) == sorted(contract["GlobalSecondaryIndexes"], key=str)
    ttl = DYNAMODB_TABLES[kind]["ttl_attribute"]
    assert props.get("TimeToLiveSpecification") == ({"AttributeName": ttl, "Enabled": True} if ttl else None)


def test_only_the_blackboard_has_ttl_and_tables_are_retained(resources: dict[str, Any]) -> None:
    blackboard = resources[logical_id(resources, "AWS::DynamoDB::Table", "TablesBlackboard")]
    registry = resources[logical_id(resources, "AWS::DynamoDB::Table", "TablesRegistry")]
    assert blackboard["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert "TimeToLiveSpecification" not in registry["Properties"]
    assert blackboard["DeletionPolicy"] == registry["DeletionPolicy"] == "Retain"


# --- S3 -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Code", "Payload", "AccessLogs"])
def test_buckets_are_versioned_encrypted_private_and_expire_old_versions(resources: dict[str, Any], name: str) -> None:
    props = resources[logical_id(resources, "AWS::S3::Bucket", f"Buckets{name}")]["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    encryption = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    rules = props["LifecycleConfiguration"]["Rules"]
    assert any(rule.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays", 0) > 0 for rule in rules)


@pytest.mark.parametrize("name", ["Code", "Payload"])
def test_data_buckets_log_access_to_the_log_bucket(resources: dict[str, Any], name: str) -> None:
    props = resources[logical_id(resources, "AWS::S3::Bucket", f"Buckets{name}")]["Properties"]
    logs = logical_id(resources, "AWS::S3::Bucket", "BucketsAccessLogs")
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": logs}
    rule = props["LifecycleConfiguration"]["Rules"][0]
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}


@pytest.mark.parametrize("name", ["Code", "Payload", "AccessLogs"])
def test_buckets_deny_requests_without_tls(resources: dict[str, Any], name: str) -> None:
    bucket = logical_id(resources, "AWS::S3::Bucket", f"Buckets{name}")
    policies = [
        v["Properties"]["PolicyDocument"]["Statement"]
        for v in resources.values()
        if v["Type"] == "AWS::S3::BucketPolicy" and v["Properties"]["Bucket"] == {"Ref": bucket}
    ]
    assert len(policies) == 1
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in policies[0]
    )


# --- SQS ------------------------------------------------------------------------------------------------------------


def test_every_queue_is_encrypted_and_tls_only(resources: dict[str, Any]) -> None:
    queues = [key for key, value in resources.items() if value["Type"] == "AWS::SQS::Queue"]
    assert len(queues) == 7  # task, fabrication, results, their three DLQs, the events DLQ
    for key in queues:
        assert resources[key]["Properties"]["SqsManagedSseEnabled"] is True, key
    tls_only = {
        queue["Ref"]
        for value in resources.values()
        if value["Type"] == "AWS::SQS::QueuePolicy"
        for statement in value["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny" and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        for queue in value["Properties"]["Queues"]
    }
    assert tls_only == set(queues)


@pytest.mark.parametrize(
    ("queue", "dlq", "visibility"), [("Task", "TaskDlq", 720), ("Fabrication", "FabricationDlq", 3600)]
)
def test_work_queues_have_dlqs_and_six_times_the_consumer_timeout(
    resources: dict[str, Any], queue: str, dlq: str, visibility: int
) -> None:
    props = resources[logical_id(resources, "AWS::SQS::Queue", f"Queues{queue}")]["Properties"]
    consumer = {"Task": "Wrapper", "Fabrication": "Fabricator"}[queue]
    assert props["VisibilityTimeout"] == visibility >= 6 * function(resources, consumer)["Timeout"]
    dlq_id = logical_id(resources, "AWS::SQS::Queue", f"Queues{dlq}")
    assert props["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}, "maxReceiveCount": 3}


def test_results_queue_has_a_dlq(resources: dict[str, Any]) -> None:
    props = resources[logical_id(resources, "AWS::SQS::Queue", "QueuesResults")]["Properties"]
    dlq_id = logical_id(resources, "AWS::SQS::Queue", "QueuesResultsDlq")
    assert props["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq_id, "Arn"]}


# --- EventBridge ----------------------------------------------------------------------------------------------------


def rule(resources: dict[str, Any], name: str) -> dict[str, Any]:
    props: dict[str, Any] = resources[logical_id(resources, "AWS::Events::Rule", f"Routing{name}")]["Properties"]
    return props


def test_bus_is_named_after_the_environment(template: Template) -> None:
    template.has_resource_properties("AWS::Events::EventBus", {"Name": "arbiter-dev"})


def test_ingress_excludes_the_systems_own_events_by_default(resources: dict[str, Any]) -> None:
    assert rule(resources, "Ingress0")["EventPattern"] == {"source": [{"anything-but": SYSTEM_SOURCES}]}


def test_completions_and_results_patterns(resources: dict[str, Any]) -> None:
    # Only the engine's own completion source, put on the bus from the stack's own account.
    assert rule(resources, "Completions")["EventPattern"] == {
        "source": ["arbiter.wrapper"],
        "detail-type": ["task.completed"],
        "account": [{"Ref": "AWS::AccountId"}],
    }
    assert rule(resources, "Results")["EventPattern"] == {
        "source": ["arbiter"],
        "detail-type": ["orchestration.completed", "orchestration.failed"],
    }


def test_agent_published_from_this_account_goes_to_the_arbiter_for_bus_triggers(resources: dict[str, Any]) -> None:
    assert rule(resources, "BusTriggers")["EventPattern"] == {
        "source": ["arbiter.fabricator"],
        "detail-type": ["agent.published"],
        "account": [{"Ref": "AWS::AccountId"}],
    }


def test_the_bus_refuses_reserved_sources_from_anyone_but_the_functions(resources: dict[str, Any]) -> None:
    bus = logical_id(resources, "AWS::Events::EventBus", "RoutingBus")
    policies = [v["Properties"] for v in resources.values() if v["Type"] == "AWS::Events::EventBusPolicy"]
    (statement,) = [p["Statement"] for p in policies if p["EventBusName"] == {"Ref": bus}]
    roles = [
        logical_id(resources, "AWS::IAM::Role", f"Functions{name}Role") for name in ("Arbiter", "Wrapper", "Fabricator")
    ]
    assert statement["Effect"] == "Deny" and statement["Principal"] == {"AWS": "*"}
    assert statement["Action"] == "events:PutEvents"
    assert statement["Resource"] == {"Fn::GetAtt": [bus, "Arn"]}
    assert statement["Condition"] == {
        "StringLike": {"events:source": ["arbiter", "arbiter.*"]},
        "ArnNotEquals": {"aws:PrincipalArn": [{"Fn::GetAtt": [role, "Arn"]} for role in roles]},
    }


@pytest.mark.parametrize("name", ["Ingress0", "Completions", "BusTriggers", "Sweeper"])
def test_arbiter_targets_retry_and_dead_letter(resources: dict[str, Any], name: str) -> None:
    (target,) = rule(resources, name)["Targets"]
    arbiter = logical_id(resources, "AWS::Lambda::Function", "FunctionsArbiter")
    events_dlq = logical_id(resources, "AWS::SQS::Queue", "QueuesEventsDlq")
    assert target["Arn"] == {"Fn::GetAtt": [arbiter, "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [events_dlq, "Arn"]}}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 2
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] >= 60


def test_work_rules_are_on_the_custom_bus_and_the_sweeper_every_minute(resources: dict[str, Any]) -> None:
    bus = logical_id(resources, "AWS::Events::EventBus", "RoutingBus")
    for name in ("Ingress0", "Completions", "BusTriggers", "Results"):
        assert rule(resources, name)["EventBusName"] == {"Ref": bus}
    sweeper = rule(resources, "Sweeper")
    assert sweeper["ScheduleExpression"] == "rate(1 minute)"
    assert "EventBusName" not in sweeper  # schedules run on the default bus and send the standard event


def test_results_go_to_the_results_queue_with_retries_and_a_dlq(resources: dict[str, Any]) -> None:
    (target,) = rule(resources, "Results")["Targets"]
    results = logical_id(resources, "AWS::SQS::Queue", "QueuesResults")
    assert target["Arn"] == {"Fn::GetAtt": [results, "Arn"]}
    assert "DeadLetterConfig" in target
    assert "RetryPolicy" in target


def test_eventbridge_may_invoke_the_arbiter_from_each_rule(resources: dict[str, Any]) -> None:
    arbiter = logical_id(resources, "AWS::Lambda::Function", "FunctionsArbiter")
    sources = {
        str(v["Properties"]["SourceArn"])
        for v in resources.values()
        if v["Type"] == "AWS::Lambda::Permission"
        and v["Properties"]["FunctionName"] == {"Fn::GetAtt": [arbiter, "Arn"]}
    }
    for name in ("Ingress0", "Completions", "BusTriggers", "Sweeper"):
        assert any(logical_id(resources, "AWS::Events::Rule", f"Routing{name}") in s for s in sources), name


# --- Lambda ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "handler", "timeout"),
    [
        ("Arbiter", "arbiter.aws_lambda.handler", 300),
        ("Wrapper", "wrapper.aws_lambda.handler", 120),
        ("Fabricator", "fabricator.aws_lambda.handler", 600),
    ],
)
def test_functions_runtime_handler_timeout_and_layer(
    resources: dict[str, Any], name: str, handler: str, timeout: int
) -> None:
    props = function(resources, name)
    assert props["Runtime"] == "python3.12"
    assert props["Architectures"] == ["x86_64"]
    assert props["Handler"] == handler
    assert props["Timeout"] == timeout
    layer = logical_id(resources, "AWS::Lambda::LayerVersion", "FunctionsDependencies")
    assert props["Layers"] == [{"Ref": layer}]
    assert "ReservedConcurrentExecutions" not in props  # default: no reservation (new accounts have a quota of 10)


@pytest.mark.parametrize("name", ["Arbiter", "Wrapper", "Fabricator"])
def test_function_environment(resources: dict[str, Any], name: str) -> None:
    env = function(resources, name)["Environment"]["Variables"]
    expected = COMMON_ENV | ({"ARBITER_SANDBOX_FUNCTION"} if name != "Arbiter" else set())
    assert set(env) == expected
    assert env["ARBITER_MODEL"] == "bedrock:us.anthropic.claude-3-5-haiku-20241022-v1:0"
    assert env["ARBITER_FABRICATOR_MODEL"] == env["ARBITER_MODEL"]
    assert env["ARBITER_APPROVAL"] == "auto"
    assert env["ARBITER_MATCHING"] == "bedrock"
    assert env["ARBITER_BUS_NAME"] == "arbiter-dev"
    assert env["POWERTOOLS_SERVICE_NAME"] == name.lower()
    assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"
    if name != "Arbiter":
        sandbox = logical_id(resources, "AWS::Lambda::Function", "FunctionsSandbox")
        assert env["ARBITER_SANDBOX_FUNCTION"] == {"Ref": sandbox}


def test_the_sandbox_function_runs_under_the_worker_role_small_bounded_and_knowing_nothing(
    resources: dict[str, Any],
) -> None:
    props = function(resources, "Sandbox")
    worker = logical_id(resources, "AWS::IAM::Role", "FunctionsWorkerRole")
    assert props["Handler"] == "wrapper.sandbox_function.handler"
    assert props["Role"] == {"Fn::GetAtt": [worker, "Arn"]}
    assert (props["Timeout"], props["MemorySize"]) == (90, 1024)
    assert props["Timeout"] < function(resources, "Wrapper")["Timeout"]  # the wrapper waits for it
    assert props["ReservedConcurrentExecutions"] == 12  # what the wrapper (10) and the Fabricator (2) can send
    assert "VpcConfig" in props  # its network: tests/infra/test_network.py
    assert set(props["Environment"]["Variables"]) == {
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_LOG_LEVEL",
    }
    assert not any(
        v["Type"] == "AWS::Lambda::EventSourceMapping"
        and v["Properties"]["FunctionName"]
        == {"Ref": logical_id(resources, "AWS::Lambda::Function", "FunctionsSandbox")}
        for v in resources.values()
    )


@pytest.mark.parametrize("name", ["Wrapper", "Fabricator"])
def test_the_wrapper_and_the_fabricator_only_invoke_the_sandbox_function(resources: dict[str, Any], name: str) -> None:
    sandbox = logical_id(resources, "AWS::Lambda::Function", "FunctionsSandbox")
    invoke = [s for s in statements(resources, name) if "lambda:InvokeFunction" in as_list(s["Action"])]
    assert [(s["Action"], s["Resource"]) for s in invoke] == [
        ("lambda:InvokeFunction", {"Fn::GetAtt": [sandbox, "Arn"]})
    ]
    actions = {a for s in statements(resources, name) for a in as_list(s["Action"])}
    assert "sts:AssumeRole" not in actions


@pytest.mark.parametrize(("name", "queue", "concurrency"), [("Wrapper", "Task", 10), ("Fabricator", "Fabrication", 2)])
def test_sqs_event_sources_report_batch_item_failures(
    resources: dict[str, Any], name: str, queue: str, concurrency: int
) -> None:
    fn = logical_id(resources, "AWS::Lambda::Function", f"Functions{name}")
    mappings = [
        v["Properties"]
        for v in resources.values()
        if v["Type"] == "AWS::Lambda::EventSourceMapping" and v["Properties"]["FunctionName"] == {"Ref": fn}
    ]
    assert len(mappings) == 1
    (mapping,) = mappings
    queue_id = logical_id(resources, "AWS::SQS::Queue", f"Queues{queue}")
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": concurrency}
    assert mapping["BatchSize"] == 1


def test_failed_arbiter_invocations_go_to_the_events_dlq(resources: dict[str, Any]) -> None:
    arbiter = logical_id(resources, "AWS::Lambda::Function", "FunctionsArbiter")
    events_dlq = logical_id(resources, "AWS::SQS::Queue", "QueuesEventsDlq")
    assert function(resources, "Arbiter")["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": [events_dlq, "Arn"]}}
    (config,) = [v["Properties"] for v in resources.values() if v["Type"] == "AWS::Lambda::EventInvokeConfig"]
    assert config["FunctionName"] == {"Ref": arbiter}
    assert config["MaximumRetryAttempts"] == 2


def test_functions_log_to_their_own_log_groups_with_retention(resources: dict[str, Any]) -> None:
    for name in ("Arbiter", "Wrapper", "Fabricator", "Sandbox"):
        group = logical_id(resources, "AWS::Logs::LogGroup", f"Functions{name}Logs")
        assert resources[group]["Properties"]["RetentionInDays"] == 30
        assert function(resources, name)["LoggingConfig"] == {"LogGroup": {"Ref": group}}


# --- IAM ------------------------------------------------------------------------------------------------------------


# EC2's Describe actions take no resource; Lambda calls these with the sandbox function's role to attach it to its VPC.
DESCRIBE_ONLY_ON_STAR = {"ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"}


def test_no_wildcard_actions_and_no_star_resources(resources: dict[str, Any]) -> None:
    for key, value in resources.items():
        if value["Type"] != "AWS::IAM::Policy":
            continue
        for statement in value["Properties"]["PolicyDocument"]["Statement"]:
            assert all("*" not in action for action in as_list(statement["Action"])), (key, statement)
            if set(as_list(statement["Action"])) == DESCRIBE_ONLY_ON_STAR:
                assert key.startswith("SandboxNetworkNetworkInterfaces"), key
                continue
            assert "*" not in as_list(statement["Resource"]), (key, statement)


def test_no_managed_policies(resources: dict[str, Any]) -> None:
    for value in resources.values():
        if value["Type"] == "AWS::IAM::Role":
            assert "ManagedPolicyArns" not in value["Properties"]


def test_wrapper_cannot_write_the_registry_or_the_code_bucket(resources: dict[str, Any]) -> None:
    registry = logical_id(resources, "AWS::DynamoDB::Table", "TablesRegistry")
    code = logical_id(resources, "AWS::S3::Bucket", "BucketsCode")
    assert granted(resources, "Wrapper", registry) == {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"}
    assert granted(resources, "Wrapper", code) == {"s3:GetObject", "s3:ListBucket"}


def test_wrapper_has_no_bedrock(resources: dict[str, Any]) -> None:
    actions = {a for s in statements(resources, "Wrapper") for a in as_list(s["Action"])}
    assert not {a for a in actions if a.startswith("bedrock:")}


def test_wrapper_consumes_the_task_queue_and_nothing_else(resources: dict[str, Any]) -> None:
    sqs_statements = [
        s for s in statements(resources, "Wrapper") if any(a.startswith("sqs:") for a in as_list(s["Action"]))
    ]
    task = logical_id(resources, "AWS::SQS::Queue", "QueuesTask")
    dlq = logical_id(resources, "AWS::SQS::Queue", "QueuesTaskDlq")
    consume, dead_letter = sorted(sqs_statements, key=lambda s: len(as_list(s["Action"])), reverse=True)
    assert consume["Resource"] == {"Fn::GetAtt": [task, "Arn"]}
    assert set(consume["Action"]) == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
    }
    # Only to send a message for a task that does not exist to the dead-letter queue at once.
    assert dead_letter["Resource"] == {"Fn::GetAtt": [dlq, "Arn"]} and as_list(dead_letter["Action"]) == [
        "sqs:SendMessage"
    ]


def test_arbiter_updates_but_never_creates_manifests(resources: dict[str, Any]) -> None:
    registry = logical_id(resources, "AWS::DynamoDB::Table", "TablesRegistry")
    code = logical_id(resources, "AWS::S3::Bucket", "BucketsCode")
    assert granted(resources, "Arbiter", registry) == {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
    }
    assert granted(resources, "Arbiter", code) == {"s3:GetObject", "s3:ListBucket"}


def test_fabricator_publishes_code_and_manifests(resources: dict[str, Any]) -> None:
    registry = logical_id(resources, "AWS::DynamoDB::Table", "TablesRegistry")
    code = logical_id(resources, "AWS::S3::Bucket", "BucketsCode")
    assert granted(resources, "Fabricator", registry) == {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    }
    assert granted(resources, "Fabricator", code) == {"s3:GetObject", "s3:ListBucket", "s3:PutObject"}


@pytest.mark.parametrize("role", ["Arbiter", "Wrapper", "Fabricator"])
def test_blackboard_access_is_read_and_conditional_writes(resources: dict[str, Any], role: str) -> None:
    blackboard = logical_id(resources, "AWS::DynamoDB::Table", "TablesBlackboard")
    assert granted(resources, role, blackboard) == {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:ConditionCheckItem",
    }
    payload = logical_id(resources, "AWS::S3::Bucket", "BucketsPayload")
    assert granted(resources, role, payload) == {"s3:GetObject", "s3:ListBucket", "s3:PutObject"}
    bus = logical_id(resources, "AWS::Events::EventBus", "RoutingBus")
    assert granted(resources, role, bus) == {"events:PutEvents"}


def test_queries_are_granted_on_the_named_indexes(resources: dict[str, Any]) -> None:
    blackboard = logical_id(resources, "AWS::DynamoDB::Table", "TablesBlackboard")
    (query,) = [s for s in statements(resources, "Wrapper") if "dynamodb:Query" in s["Action"] and blackboard in str(s)]
    rendered = str(query["Resource"])
    assert "/index/gsi1" in rendered and "/index/gsi2" in rendered and "index/*" not in rendered


def test_arbiter_dispatches_to_both_work_queues(resources: dict[str, Any]) -> None:
    task = logical_id(resources, "AWS::SQS::Queue", "QueuesTask")
    fabrication = logical_id(resources, "AWS::SQS::Queue", "QueuesFabrication")
    assert granted(resources, "Arbiter", task) == {"sqs:SendMessage"}
    assert granted(resources, "Arbiter", fabrication) == {"sqs:SendMessage"}


def test_worker_role_only_invokes_the_configured_model(resources: dict[str, Any]) -> None:
    # Its VPC permissions (for Lambda, unreachable from its code) are in their own policy: see test_network.py.
    interfaces = logical_id(resources, "AWS::IAM::Policy", "SandboxNetworkNetworkInterfaces")
    interface_statements = resources[interfaces]["Properties"]["PolicyDocument"]["Statement"]
    worker = [s for s in statements(resources, "Worker") if s not in interface_statements]
    assert {a for s in worker for a in as_list(s["Action"])} == {
        "bedrock:InvokeModel",
        "bedrock:InvokeModelWithResponseStream",
        "logs:CreateLogStream",  # its own log group, as every function's role
        "logs:PutLogEvents",
    }
    logs = [s for s in worker if "logs:PutLogEvents" in as_list(s["Action"])]
    group = logical_id(resources, "AWS::Logs::LogGroup", "FunctionsSandboxLogs")
    assert [s["Resource"] for s in logs] == [{"Fn::GetAtt": [group, "Arn"]}]
    worker = [s for s in worker if "logs:PutLogEvents" not in as_list(s["Action"])]
    rendered = str([s["Resource"] for s in worker])
    assert "inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0" in rendered
    assert "foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0" in rendered
    assert "titan" not in rendered
    (cross_region,) = [s for s in worker if "Condition" in s]
    assert "bedrock:InferenceProfileArn" in cross_region["Condition"]["StringEquals"]


def test_worker_role_is_the_sandbox_functions_and_nobody_elses(resources: dict[str, Any]) -> None:
    worker = resources[logical_id(resources, "AWS::IAM::Role", "FunctionsWorkerRole")]["Properties"]
    (statement,) = worker["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    roles = [v for v in resources.values() if v["Type"] == "AWS::Lambda::Function"]
    worker_id = logical_id(resources, "AWS::IAM::Role", "FunctionsWorkerRole")
    assert [str(f["Properties"]["Handler"]) for f in roles if worker_id in str(f["Properties"]["Role"])] == [
        "wrapper.sandbox_function.handler"
    ]


def test_planner_and_embeddings_for_the_arbiter(resources: dict[str, Any]) -> None:
    rendered = str([s for s in statements(resources, "Arbiter") if "bedrock:InvokeModel" in s["Action"]])
    assert "foundation-model/amazon.titan-embed-text-v2:0" in rendered
    assert "inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0" in rendered


# --- alarms and outputs ---------------------------------------------------------------------------------------------


def test_alarms_on_every_dlq_and_on_function_errors_and_throttles(resources: dict[str, Any]) -> None:
    alarms = [v["Properties"] for v in resources.values() if v["Type"] == "AWS::CloudWatch::Alarm"]
    dlq_alarms = {
        str(a["Dimensions"][0]["Value"]) for a in alarms if a["MetricName"] == "ApproximateNumberOfMessagesVisible"
    }
    for dlq in ("TaskDlq", "FabricationDlq", "ResultsDlq", "EventsDlq"):
        assert any(logical_id(resources, "AWS::SQS::Queue", f"Queues{dlq}") in d for d in dlq_alarms), dlq
    for metric in ("Errors", "Throttles"):
        watched = {str(a["Dimensions"][0]["Value"]) for a in alarms if a["MetricName"] == metric}
        for name in ("Arbiter", "Wrapper", "Fabricator", "Sandbox"):
            fn = logical_id(resources, "AWS::Lambda::Function", f"Functions{name}")
            assert any(fn in w for w in watched), (metric, name)
    assert all(a["Threshold"] >= 1 and a["TreatMissingData"] == "notBreaching" for a in alarms)


def test_outputs_the_cli_reads(template: Template) -> None:
    outputs = template.to_json()["Outputs"]
    from blackboard.adapters.aws.config import STACK_OUTPUTS

    expected = {*STACK_OUTPUTS.values(), "ResultsQueueUrl"}  # what AwsConfig.from_stack reads, and the results queue
    assert expected <= set(outputs)
    template.has_output("TaskQueueUrl", {"Value": {"Ref": Match.string_like_regexp("QueuesTask")}})


def test_batch_reads_are_granted_on_the_tables_only(resources: dict[str, Any]) -> None:
    for table in ("TablesBlackboard", "TablesRegistry"):
        table_id = logical_id(resources, "AWS::DynamoDB::Table", table)
        (batch,) = [
            s
            for s in statements(resources, "Wrapper")
            if "dynamodb:BatchGetItem" in as_list(s["Action"]) and table_id in str(s["Resource"])
        ]
        assert "/index/" not in str(batch["Resource"])


@pytest.mark.parametrize(("role", "dlq"), [("Wrapper", "QueuesTaskDlq"), ("Fabricator", "QueuesFabricationDlq")])
def test_consumers_may_dead_letter_a_message_for_no_task_at_once(
    resources: dict[str, Any], role: str, dlq: str
) -> None:
    assert granted(resources, role, logical_id(resources, "AWS::SQS::Queue", dlq)) == {"sqs:SendMessage"}
