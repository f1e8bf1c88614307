from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import boto3
import pytest
from moto import mock_aws

from opsflow_local.emulation.autoscaling import AutoScalingEmulation
from opsflow_local.emulation.ec2 import Ec2Emulation
from opsflow_local.emulation.ecs import EcsEmulation
from opsflow_local.emulation.elbv2 import Elbv2Emulation
from opsflow_local.emulation.rds import RdsEmulation


@pytest.fixture
def ec2_emulation() -> Iterator[Ec2Emulation]:
    """moto with the EC2 emulation installed; images stay pending for 60 AWS seconds = 60 ms."""
    emulation = Ec2Emulation(time_scale=0.001)
    with ExitStack() as stack:
        emulation.install(stack)
        stack.enter_context(mock_aws())
        yield emulation


@pytest.fixture
def autoscaling_emulation() -> Iterator[AutoScalingEmulation]:
    """moto with instance refresh emulated; one AWS second lasts a millisecond."""
    # Pending (and Cancelling) for 200 AWS seconds = 0.2 s: long enough to observe on a busy machine.
    emulation = AutoScalingEmulation(time_scale=0.001, pending_seconds=200)
    with ExitStack() as stack:
        Ec2Emulation(time_scale=0.001).install(stack)
        emulation.install(stack)
        stack.enter_context(mock_aws())
        yield emulation


@pytest.fixture
def rds_emulation() -> Iterator[RdsEmulation]:
    """moto with RDS stop/start emulated; stopping and starting last 2000 AWS seconds = 2 s, long enough
    to observe them on a busy machine (a test that only needs a stopped database shortens them)."""
    emulation = RdsEmulation(time_scale=0.001, stop_seconds=2000, start_seconds=2000)
    with ExitStack() as stack:
        emulation.install(stack)
        stack.enter_context(mock_aws())
        yield emulation


@pytest.fixture
def elbv2_emulation() -> Iterator[Elbv2Emulation]:
    """moto with target health, draining and forward action checks emulated; one AWS second lasts a
    millisecond."""
    emulation = Elbv2Emulation(time_scale=0.001)
    with ExitStack() as stack:
        emulation.install(stack)
        stack.enter_context(mock_aws())
        yield emulation


@pytest.fixture
def ecs_emulation(elbv2_emulation: Elbv2Emulation) -> Iterator[EcsEmulation]:
    """moto with ECS deployments emulated, on top of the ELBv2 emulation whose target health they wait
    for; tasks take 30 AWS seconds = 30 ms to start."""
    emulation = EcsEmulation(time_scale=elbv2_emulation.time_scale)
    with ExitStack() as stack:
        emulation.install(stack)
        yield emulation


@dataclass(frozen=True)
class Alb:
    """An Application Load Balancer in its own VPC whose HTTP listener forwards 100/0 to two target groups of
    target type `ip`, as an ECS awsvpc service and its blue/green replacement need."""

    vpc_id: str
    subnet_ids: tuple[str, str]
    security_group_id: str
    load_balancer_arn: str
    listener_arn: str
    blue_arn: str
    green_arn: str


@pytest.fixture
def alb(elbv2_emulation: Elbv2Emulation) -> Alb:
    """Health checks every 10 AWS seconds, healthy after 3, unhealthy after 2; deregistration delay 60 s."""
    ec2 = boto3.client("ec2", region_name="us-east-1")
    elbv2 = boto3.client("elbv2", region_name="us-east-1")
    vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet_ids = tuple(
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"us-east-1{zone}")[
            "Subnet"
        ]["SubnetId"]
        for i, zone in ((1, "a"), (2, "b"))
    )
    security_group_id = ec2.create_security_group(GroupName="web", Description="web tasks", VpcId=vpc_id)[
        "GroupId"
    ]
    load_balancer_arn = elbv2.create_load_balancer(
        Name="web", Subnets=list(subnet_ids), SecurityGroups=[security_group_id], Type="application"
    )["LoadBalancers"][0]["LoadBalancerArn"]
    blue_arn, green_arn = (
        elbv2.create_target_group(
            Name=f"web-{colour}",
            Protocol="HTTP",
            Port=8080,
            VpcId=vpc_id,
            TargetType="ip",
            HealthCheckPath="/health",
            HealthCheckIntervalSeconds=10,
            HealthyThresholdCount=3,
            UnhealthyThresholdCount=2,
        )["TargetGroups"][0]["TargetGroupArn"]
        for colour in ("blue", "green")
    )
    for arn in (blue_arn, green_arn):
        elbv2.modify_target_group_attributes(
            TargetGroupArn=arn, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "60"}]
        )
    listener_arn = elbv2.create_listener(
        LoadBalancerArn=load_balancer_arn,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": blue_arn, "Weight": 100},
                        {"TargetGroupArn": green_arn, "Weight": 0},
                    ]
                },
            }
        ],
    )["Listeners"][0]["ListenerArn"]
    return Alb(
        vpc_id=vpc_id,
        subnet_ids=(subnet_ids[0], subnet_ids[1]),
        security_group_id=security_group_id,
        load_balancer_arn=load_balancer_arn,
        listener_arn=listener_arn,
        blue_arn=blue_arn,
        green_arn=green_arn,
    )
