"""The ELBv2 adapter and the ECS adapter's blue/green groundwork, against moto with the ELBv2 and ECS
emulations: a listener forwarding 100/0 to web-blue/web-green, and a Fargate service behind web-blue."""

from __future__ import annotations

import re
from typing import Any

import boto3
import pytest

from opsflow.aws.ecs import Ecs
from opsflow.aws.elbv2 import Elbv2
from opsflow.errors import NotFound, Refused
from opsflow_local.emulation.ecs import EcsEmulation

from .conftest import Alb

CLUSTER = "prod"
# Fields DescribeTaskDefinition returns that only AWS sets, so differ between two revisions.
READ_ONLY = ("taskDefinitionArn", "revision", "status", "registeredAt", "registeredBy", "requiresAttributes")


@pytest.fixture
def raw_elbv2(alb: Alb) -> Any:
    return boto3.client("elbv2", region_name="us-east-1")


@pytest.fixture
def raw_ecs(ecs_emulation: EcsEmulation) -> Any:
    return boto3.client("ecs", region_name="us-east-1")


@pytest.fixture
def elbv2(raw_elbv2: Any) -> Elbv2:
    return Elbv2(raw_elbv2)


@pytest.fixture
def ecs(raw_ecs: Any) -> Ecs:
    return Ecs(raw_ecs)


@pytest.fixture
def web_v1(raw_ecs: Any) -> str:
    """Revision 1 of `web`: an app container and a log router sidecar, roles, a volume and tags."""
    raw_ecs.create_cluster(clusterName=CLUSTER)
    return str(
        raw_ecs.register_task_definition(
            family="web",
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            taskRoleArn="arn:aws:iam::123456789012:role/web-task",
            executionRoleArn="arn:aws:iam::123456789012:role/web-execution",
            volumes=[{"name": "scratch"}],
            containerDefinitions=[
                {
                    "name": "app",
                    "image": "web:1.0",
                    "essential": True,
                    "portMappings": [{"containerPort": 8080}],
                    "environment": [{"name": "MODE", "value": "prod"}],
                    "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/scratch"}],
                },
                {"name": "log-router", "image": "fluent-bit:2.1", "essential": False},
            ],
            tags=[{"key": "team", "value": "web"}],
        )["taskDefinition"]["taskDefinitionArn"]
    )


@pytest.fixture
def blue(raw_ecs: Any, alb: Alb, web_v1: str) -> str:
    raw_ecs.create_service(
        cluster=CLUSTER,
        serviceName="web-blue",
        taskDefinition=web_v1,
        desiredCount=2,
        launchType="FARGATE",
        loadBalancers=[{"targetGroupArn": alb.blue_arn, "containerName": "app", "containerPort": 8080}],
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": list(alb.subnet_ids),
                "securityGroups": [alb.security_group_id],
                "assignPublicIp": "DISABLED",
            }
        },
        healthCheckGracePeriodSeconds=30,
        tags=[{"key": "colour", "value": "blue"}],
    )
    return "web-blue"


# ELBv2 -------------------------------------------------------------------------------------------


def test_listener_reads_the_weights_of_its_forward_config(elbv2: Elbv2, alb: Alb) -> None:
    listener = elbv2.listener(alb.listener_arn)

    assert listener.arn == alb.listener_arn
    assert listener.load_balancer_arn == alb.load_balancer_arn
    assert (listener.protocol, listener.port) == ("HTTP", 80)
    assert listener.weights == {alb.blue_arn: 100, alb.green_arn: 0}


def test_listener_forwarding_to_one_group_sends_it_everything(elbv2: Elbv2, raw_elbv2: Any, alb: Alb) -> None:
    arn = raw_elbv2.create_listener(
        LoadBalancerArn=alb.load_balancer_arn,
        Protocol="HTTP",
        Port=8080,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": alb.blue_arn}],
    )["Listeners"][0]["ListenerArn"]

    assert elbv2.listener(arn).weights == {alb.blue_arn: 100}


def test_set_weights_shifts_traffic_and_keeps_stickiness(elbv2: Elbv2, raw_elbv2: Any, alb: Alb) -> None:
    stickiness = {"Enabled": True, "DurationSeconds": 300}
    raw_elbv2.modify_listener(
        ListenerArn=alb.listener_arn,
        DefaultActions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": alb.blue_arn, "Weight": 100},
                        {"TargetGroupArn": alb.green_arn, "Weight": 0},
                    ],
                    "TargetGroupStickinessConfig": stickiness,
                },
            }
        ],
    )

    elbv2.set_weights(alb.listener_arn, {alb.blue_arn: 90, alb.green_arn: 10})

    assert elbv2.listener(alb.listener_arn).weights == {alb.blue_arn: 90, alb.green_arn: 10}
    (action,) = raw_elbv2.describe_listeners(ListenerArns=[alb.listener_arn])["Listeners"][0][
        "DefaultActions"
    ]
    assert action["ForwardConfig"]["TargetGroupStickinessConfig"] == stickiness


def test_set_weights_refuses_a_listener_that_does_not_just_forward(
    elbv2: Elbv2, raw_elbv2: Any, alb: Alb
) -> None:
    arn = raw_elbv2.create_listener(
        LoadBalancerArn=alb.load_balancer_arn,
        Protocol="HTTP",
        Port=8081,
        DefaultActions=[
            {
                "Type": "fixed-response",
                "FixedResponseConfig": {"StatusCode": "503", "ContentType": "text/plain"},
            }
        ],
    )["Listeners"][0]["ListenerArn"]

    with pytest.raises(Refused, match="fixed-response"):
        elbv2.set_weights(arn, {alb.blue_arn: 90, alb.green_arn: 10})
    assert raw_elbv2.describe_listeners(ListenerArns=[arn])["Listeners"][0]["DefaultActions"][0]["Type"] == (
        "fixed-response"
    )


def test_an_unknown_listener_is_not_found_by_its_arn(elbv2: Elbv2, alb: Alb) -> None:
    unknown = alb.listener_arn.rsplit("/", 1)[0] + "/0123456789abcdef"

    with pytest.raises(NotFound, match=re.escape(f"listener {unknown} does not exist")):
        elbv2.listener(unknown)
    with pytest.raises(NotFound, match=re.escape(f"listener {unknown} does not exist")):
        elbv2.set_weights(unknown, {alb.blue_arn: 0, alb.green_arn: 100})


def test_target_group_and_target_health(elbv2: Elbv2, raw_elbv2: Any, alb: Alb) -> None:
    raw_elbv2.register_targets(TargetGroupArn=alb.blue_arn, Targets=[{"Id": "10.20.1.10", "Port": 8080}])

    group = elbv2.target_group(alb.green_arn)
    assert (group.arn, group.name, group.protocol) == (alb.green_arn, "web-green", "HTTP")
    assert group.load_balancer_arns == [alb.load_balancer_arn]
    # The listener forwards to blue, so its health checks have started.
    assert elbv2.target_health(alb.blue_arn) == {"10.20.1.10": "initial"}
    assert elbv2.target_health(alb.green_arn) == {}


def test_an_unknown_target_group_is_not_found(elbv2: Elbv2, alb: Alb) -> None:
    unknown = alb.green_arn.replace("web-green", "web-purple")

    with pytest.raises(NotFound, match=re.escape(f"target group {unknown} does not exist")):
        elbv2.target_group(unknown)
    with pytest.raises(NotFound, match=re.escape(f"target group {unknown} does not exist")):
        elbv2.target_health(unknown)


# ECS ---------------------------------------------------------------------------------------------


def test_register_task_definition_with_image_changes_only_that_image(
    ecs: Ecs, raw_ecs: Any, web_v1: str
) -> None:
    new_arn = ecs.register_task_definition_with_image(web_v1, "app", "web:2.0")

    assert new_arn.endswith("task-definition/web:2")
    old = raw_ecs.describe_task_definition(taskDefinition=web_v1, include=["TAGS"])
    new = raw_ecs.describe_task_definition(taskDefinition=new_arn, include=["TAGS"])
    assert new["tags"] == old["tags"] == [{"key": "team", "value": "web"}]
    images = {c["name"]: c["image"] for c in new["taskDefinition"]["containerDefinitions"]}
    assert images == {"app": "web:2.0", "log-router": "fluent-bit:2.1"}
    for container in old["taskDefinition"]["containerDefinitions"]:
        if container["name"] == "app":
            container["image"] = "web:2.0"
    kept = {k: v for k, v in old["taskDefinition"].items() if k not in READ_ONLY}
    assert {k: v for k, v in new["taskDefinition"].items() if k not in READ_ONLY} == kept


def test_register_task_definition_with_image_needs_the_container(ecs: Ecs, web_v1: str) -> None:
    with pytest.raises(NotFound, match="no container named api"):
        ecs.register_task_definition_with_image(web_v1, "api", "web:2.0")


def test_describe_service(ecs: Ecs, alb: Alb, web_v1: str, blue: str) -> None:
    detail = ecs.describe_service(CLUSTER, blue)

    assert (detail.name, detail.status, detail.task_definition) == ("web-blue", "ACTIVE", web_v1)
    assert detail.desired_count == 2
    assert detail.target_group_arns == [alb.blue_arn]
    assert detail.tags == {"colour": "blue"}
    assert detail.launch_type == "FARGATE"
    (deployment,) = detail.deployments
    assert (deployment.status, deployment.task_definition, deployment.desired_count) == ("PRIMARY", web_v1, 2)


def test_create_service_like_blue_on_the_green_target_group(
    ecs: Ecs, raw_ecs: Any, alb: Alb, web_v1: str, blue: str
) -> None:
    web_v2 = ecs.register_task_definition_with_image(web_v1, "app", "web:2.0")
    source = ecs.describe_service(CLUSTER, blue)

    created = ecs.create_service_like(source, "web-green", web_v2, alb.green_arn, 2, {"colour": "green"})
    green = ecs.describe_service(CLUSTER, "web-green")

    assert created.service_arn == green.service_arn
    assert (green.task_definition, green.desired_count, green.tags) == (web_v2, 2, {"colour": "green"})
    (balancer,) = green.load_balancers
    assert (balancer.target_group_arn, balancer.container_name, balancer.container_port) == (
        alb.green_arn,
        "app",
        8080,
    )
    assert green.launch_type == "FARGATE"
    assert green.network_configuration == source.network_configuration
    assert green.health_check_grace_period_seconds == 30
    assert [d.task_definition for d in green.deployments] == [web_v2]
    assert ecs.describe_service(CLUSTER, blue).target_group_arns == [alb.blue_arn]


def test_update_service_sets_the_desired_count_and_task_definition(ecs: Ecs, web_v1: str, blue: str) -> None:
    web_v2 = ecs.register_task_definition_with_image(web_v1, "app", "web:2.0")

    ecs.update_service(CLUSTER, blue, desired_count=3, task_definition=web_v2)

    detail = ecs.describe_service(CLUSTER, blue)
    assert (detail.desired_count, detail.task_definition) == (3, web_v2)
    assert detail.deployments[0].task_definition == web_v2


def test_an_unknown_service_is_not_found(ecs: Ecs, web_v1: str) -> None:
    with pytest.raises(NotFound, match="ECS service web-red does not exist in cluster prod"):
        ecs.describe_service(CLUSTER, "web-red")
    with pytest.raises(NotFound, match="ECS service web-red does not exist in cluster prod"):
        ecs.update_service(CLUSTER, "web-red", desired_count=1)
