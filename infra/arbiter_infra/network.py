"""The sandbox function's network: a VPC where generated code can reach the Bedrock runtime and nothing else.

With ``sandboxNetwork=isolated`` (the default) the sandbox function runs in the isolated subnets of its own VPC: no
internet gateway, no NAT gateway, no route out of the VPC. Its security group lets out only HTTPS to the security
group of one interface endpoint, ``bedrock-runtime`` with private DNS, so the SDK's usual endpoint name resolves to
it and the model stays reachable while any other address (the internet, every other AWS API) is not. Lambda writes
the function's logs and metrics outside the VPC, so they need no endpoint. Names still resolve through the VPC's
Amazon DNS resolver, which security groups do not filter. Flow logs record every accepted and rejected connection to
a log group of their own.

A function in a VPC needs its execution role to create and delete its network interfaces. The worker role gets
that in a policy of its own (:meth:`SandboxNetwork.allow_network_interfaces`), scoped to this VPC's subnets and
security group where EC2 allows it; untrusted code holding the role cannot use it, as the VPC has no way to the
EC2 API. ``sandboxNetwork=internet`` builds none of this: the function runs on Lambda's own network, as before.
"""

from __future__ import annotations

from typing import cast

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

__all__ = ["NETWORK_INTERFACE_ACTIONS", "SandboxNetwork"]

_HTTPS = ec2.Port.tcp(443)

#: What Lambda does with the execution role to attach a function to a VPC (its documented required permissions).
NETWORK_INTERFACE_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
)


class SandboxNetwork(Construct):
    """An isolated VPC (two AZs, no NAT), the sandbox's security group and the Bedrock runtime endpoint."""

    def __init__(self, scope: Construct, construct_id: str, *, log_retention_days: int, retain_data: bool) -> None:
        """Define the network.

        Args:
            scope: the parent construct.
            construct_id: this construct's id.
            log_retention_days: how long the flow logs are kept.
            retain_data: keep the flow log group when the stack is deleted.
        """
        super().__init__(scope, construct_id)
        self.network_interfaces: iam.Policy | None = None
        flow_logs = logs.LogGroup(
            self,
            "FlowLogs",
            removal_policy=RemovalPolicy.RETAIN if retain_data else RemovalPolicy.DESTROY,
        )
        # RetentionDays is an enum of names in Python; the config already checked the number against CloudWatch's.
        cast(logs.CfnLogGroup, flow_logs.node.default_child).retention_in_days = log_retention_days
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="Isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24)
            ],
            # Nothing is placed in the default security group; restricting it would add a custom-resource function.
            restrict_default_security_group=False,
            flow_logs={
                "All": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )
        self.subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        self.security_group = ec2.SecurityGroup(
            self,
            "SandboxSecurityGroup",
            vpc=self.vpc,
            description="Arbiter sandbox function: HTTPS to the Bedrock runtime endpoint only",
            allow_all_outbound=False,
        )
        endpoint_group = ec2.SecurityGroup(
            self,
            "BedrockRuntimeSecurityGroup",
            vpc=self.vpc,
            description="Bedrock runtime endpoint: HTTPS from the Arbiter sandbox function",
            allow_all_outbound=False,
        )
        self.bedrock_runtime = self.vpc.add_interface_endpoint(
            "BedrockRuntime",
            service=ec2.InterfaceVpcEndpointAwsService.BEDROCK_RUNTIME,
            private_dns_enabled=True,
            subnets=self.subnets,
            security_groups=[endpoint_group],
            open=False,
        )
        endpoint_group.add_ingress_rule(self.security_group, _HTTPS, "HTTPS from the Arbiter sandbox function")
        # The egress rule is written into the group itself: a group declared without egress rules keeps EC2's default
        # allow-all rule, which a separate egress resource would add to rather than replace.
        cast(ec2.CfnSecurityGroup, self.security_group.node.default_child).security_group_egress = [
            ec2.CfnSecurityGroup.EgressProperty(
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                destination_security_group_id=endpoint_group.security_group_id,
                description="HTTPS to the Bedrock runtime endpoint",
            )
        ]

    def allow_network_interfaces(self, role: iam.IRole) -> iam.Policy:
        """Attach to ``role`` what Lambda needs to place a function in this VPC; returns the policy to depend on.

        Lambda checks these permissions when it creates the function, so the function must depend on the policy.
        """
        stack = Stack.of(self)
        interfaces = stack.format_arn(service="ec2", resource="network-interface", resource_name="*")
        subnets = [
            stack.format_arn(service="ec2", resource="subnet", resource_name=subnet.subnet_id)
            for subnet in self.vpc.isolated_subnets
        ]
        group = stack.format_arn(
            service="ec2", resource="security-group", resource_name=self.security_group.security_group_id
        )
        self.network_interfaces = iam.Policy(
            self,
            "NetworkInterfaces",
            roles=[role],
            statements=[
                iam.PolicyStatement(actions=["ec2:CreateNetworkInterface"], resources=[interfaces, *subnets, group]),
                iam.PolicyStatement(
                    actions=[
                        "ec2:DeleteNetworkInterface",
                        "ec2:AssignPrivateIpAddresses",
                        "ec2:UnassignPrivateIpAddresses",
                    ],
                    resources=[interfaces],
                ),
                # EC2 authorizes Describe calls on no resource: they take "*" or nothing.
                iam.PolicyStatement(actions=["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"], resources=["*"]),
            ],
        )
        return self.network_interfaces
