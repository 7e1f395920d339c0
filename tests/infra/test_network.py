"""The sandbox function's network: isolated by default (only the Bedrock runtime endpoint), Lambda's on request."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from tests.infra.conftest import Assembly, synthesize
from tests.infra.test_checks import nag_report
from tests.infra.test_stack import as_list, function, logical_id

pytestmark = pytest.mark.infra

HTTPS = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443}


@pytest.fixture(scope="module")
def template(default_assembly: Assembly) -> Template:
    return Template.from_json(default_assembly.template_json())


@pytest.fixture(scope="module")
def resources(default_assembly: Assembly) -> dict[str, Any]:
    found: dict[str, Any] = default_assembly.template_json()["Resources"]
    return found


def of_type(resources: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {key: value for key, value in resources.items() if value["Type"] == kind}


def subnet_refs(resources: dict[str, Any]) -> list[dict[str, str]]:
    return [{"Ref": key} for key in sorted(of_type(resources, "AWS::EC2::Subnet"))]


def group_id(resources: dict[str, Any], name: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id(resources, "AWS::EC2::SecurityGroup", f"SandboxNetwork{name}"), "GroupId"]}


def test_the_sandbox_function_runs_in_the_isolated_subnets_of_its_own_vpc(resources: dict[str, Any]) -> None:
    assert function(resources, "Sandbox")["VpcConfig"] == {
        "SubnetIds": subnet_refs(resources),
        "SecurityGroupIds": [group_id(resources, "SandboxSecurityGroup")],
    }
    subnets = of_type(resources, "AWS::EC2::Subnet")
    assert len(subnets) == 2  # two AZs
    for subnet in subnets.values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False
        assert {"Key": "aws-cdk:subnet-type", "Value": "Isolated"} in subnet["Properties"]["Tags"]
    for name in ("Arbiter", "Wrapper", "Fabricator"):  # they call AWS APIs and stay on Lambda's network
        assert "VpcConfig" not in function(resources, name), name


def test_the_vpc_has_no_way_out(template: Template, resources: dict[str, Any]) -> None:
    template.resource_count_is("AWS::EC2::VPC", 1)
    for kind in (
        "AWS::EC2::NatGateway",
        "AWS::EC2::InternetGateway",
        "AWS::EC2::EgressOnlyInternetGateway",
        "AWS::EC2::VPCGatewayAttachment",
        "AWS::EC2::EIP",
        "AWS::EC2::TransitGatewayAttachment",
        "AWS::EC2::VPCPeeringConnection",
    ):
        template.resource_count_is(kind, 0)
    assert of_type(resources, "AWS::EC2::Route") == {}  # the route tables hold only the VPC's local route


def test_the_sandbox_security_group_lets_out_only_https_to_the_endpoint(resources: dict[str, Any]) -> None:
    sandbox = resources[logical_id(resources, "AWS::EC2::SecurityGroup", "SandboxNetworkSandboxSecurityGroup")]
    (egress,) = sandbox["Properties"]["SecurityGroupEgress"]  # inline: no default allow-all rule is left
    endpoint_group = group_id(resources, "BedrockRuntimeSecurityGroup")
    assert {key: egress[key] for key in (*HTTPS, "DestinationSecurityGroupId")} == {
        **HTTPS,
        "DestinationSecurityGroupId": endpoint_group,
    }
    assert "SecurityGroupIngress" not in sandbox["Properties"]
    assert of_type(resources, "AWS::EC2::SecurityGroupEgress") == {}
    ingress = [value["Properties"] for value in of_type(resources, "AWS::EC2::SecurityGroupIngress").values()]
    assert ingress == [
        {
            **HTTPS,
            "GroupId": endpoint_group,
            "SourceSecurityGroupId": group_id(resources, "SandboxSecurityGroup"),
            "Description": "HTTPS from the Arbiter sandbox function",
        }
    ]


def test_the_endpoint_security_group_sends_nothing(resources: dict[str, Any]) -> None:
    group = resources[logical_id(resources, "AWS::EC2::SecurityGroup", "SandboxNetworkBedrockRuntimeSecurityGroup")]
    (egress,) = group["Properties"]["SecurityGroupEgress"]
    assert egress["CidrIp"] == "255.255.255.255/32"  # CDK's rule that matches no traffic
    assert "SecurityGroupIngress" not in group["Properties"]


def test_one_interface_endpoint_for_the_bedrock_runtime_with_private_dns(resources: dict[str, Any]) -> None:
    (endpoint,) = of_type(resources, "AWS::EC2::VPCEndpoint").values()
    props = endpoint["Properties"]
    assert props["VpcEndpointType"] == "Interface"
    assert props["PrivateDnsEnabled"] is True
    assert props["ServiceName"] == {"Fn::Join": ["", ["com.amazonaws.", {"Ref": "AWS::Region"}, ".bedrock-runtime"]]}
    assert props["SubnetIds"] == subnet_refs(resources)
    assert props["SecurityGroupIds"] == [group_id(resources, "BedrockRuntimeSecurityGroup")]


def test_flow_logs_record_all_traffic_of_the_vpc(template: Template, resources: dict[str, Any]) -> None:
    vpc = logical_id(resources, "AWS::EC2::VPC", "SandboxNetworkVpc")
    group = logical_id(resources, "AWS::Logs::LogGroup", "SandboxNetworkFlowLogs")
    template.resource_count_is("AWS::EC2::FlowLog", 1)
    template.has_resource_properties(
        "AWS::EC2::FlowLog",
        {
            "ResourceId": {"Ref": vpc},
            "ResourceType": "VPC",
            "TrafficType": "ALL",
            "LogDestinationType": "cloud-watch-logs",
            "LogGroupName": {"Ref": group},
        },
    )
    assert resources[group]["Properties"]["RetentionInDays"] == 30
    assert resources[group]["DeletionPolicy"] == "Retain"


def test_the_worker_role_gets_the_network_interfaces_before_the_function_exists(resources: dict[str, Any]) -> None:
    from arbiter_infra.network import NETWORK_INTERFACE_ACTIONS

    policy_id = logical_id(resources, "AWS::IAM::Policy", "SandboxNetworkNetworkInterfaces")
    policy = resources[policy_id]["Properties"]
    worker = logical_id(resources, "AWS::IAM::Role", "FunctionsWorkerRole")
    assert policy["Roles"] == [{"Ref": worker}]
    sandbox = resources[logical_id(resources, "AWS::Lambda::Function", "FunctionsSandbox")]
    assert policy_id in sandbox["DependsOn"]  # Lambda checks the permissions when it creates the function
    by_action = {a: s["Resource"] for s in policy["PolicyDocument"]["Statement"] for a in as_list(s["Action"])}
    assert set(by_action) == set(NETWORK_INTERFACE_ACTIONS)
    create = str(by_action["ec2:CreateNetworkInterface"])
    for subnet in subnet_refs(resources):
        assert str(subnet) in create
    assert str(group_id(resources, "SandboxSecurityGroup")) in create
    assert ":network-interface/*" in str(by_action["ec2:DeleteNetworkInterface"])
    assert by_action["ec2:DescribeNetworkInterfaces"] == by_action["ec2:DescribeSubnets"] == "*"
    others = [
        value
        for key, value in of_type(resources, "AWS::IAM::Policy").items()
        if key != policy_id and "ec2:" in str(value["Properties"]["PolicyDocument"])
    ]
    assert others == []


def test_the_network_acknowledgments_are_on_the_interface_policy_only(default_assembly: Assembly) -> None:
    suppressed = nag_report(default_assembly)["suppressedViolations"]
    network = {(f["acknowledgedAt"], f["ruleName"]) for f in suppressed if "SandboxNetwork" in f["acknowledgedAt"]}
    path = f"{default_assembly.stack.stack_name}/SandboxNetwork/NetworkInterfaces"
    interfaces = "arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*"
    assert network == {
        (path, "AwsSolutions-IAM5[Resource::*]"),
        (path, f"AwsSolutions-IAM5[Resource::{interfaces}]"),
    }


# --- sandboxNetwork=internet ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def internet(tmp_path_factory: pytest.TempPathFactory) -> Assembly:
    return synthesize(
        tmp_path_factory.mktemp("cdk.out-internet"),
        {"aws:cdk:disable-asset-staging": True, "sandboxNetwork": "internet"},
    )


def test_internet_leaves_the_sandbox_function_on_lambdas_network(internet: Assembly) -> None:
    resources: dict[str, Any] = internet.template_json()["Resources"]
    assert "VpcConfig" not in function(resources, "Sandbox")
    assert [key for key, value in resources.items() if value["Type"].startswith("AWS::EC2::")] == []
    assert "ec2:" not in str([v for v in resources.values() if v["Type"] == "AWS::IAM::Policy"])
    Template.from_json(internet.template_json()).has_resource_properties(
        "AWS::Lambda::Function", {"Handler": "wrapper.sandbox_function.handler", "VpcConfig": Match.absent()}
    )


def test_internet_passes_nag_without_the_network_acknowledgments(internet: Assembly) -> None:
    report = nag_report(internet)
    assert report["violations"] == []
    assert not [f for f in report["suppressedViolations"] if "ec2" in f["ruleName"]]
