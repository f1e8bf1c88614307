"""The ECS emulation against the Amazon ECS API Reference (CreateService, UpdateService, DeleteService,
DescribeServices with Deployment and DeploymentConfiguration, ListTasks, DescribeTasks, StopTask) and the
Developer Guide (rolling update, deployment circuit breaker, service load balancing, task lifecycle, service
deployment state change events). Services run behind the `alb` fixture's load balancer, whose target health
the ELBv2 emulation decides."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from opsflow_local.emulation.ecs import EcsEmulation
from opsflow_local.emulation.elbv2 import Elbv2Emulation

from .conftest import Alb

CLUSTER = "prod"
CIRCUIT_BREAKER_WITH_ROLLBACK = {"deploymentCircuitBreaker": {"enable": True, "rollback": True}}


def ecs() -> Any:
    return boto3.client("ecs", region_name="us-east-1")


def elbv2() -> Any:
    return boto3.client("elbv2", region_name="us-east-1")


def register_web(image: str = "web:1.0", port: int = 8080) -> str:
    """A Fargate task definition of family `web`; returns its ARN."""
    return str(
        ecs().register_task_definition(
            family="web",
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            containerDefinitions=[
                {"name": "app", "image": image, "essential": True, "portMappings": [{"containerPort": port}]}
            ],
        )["taskDefinition"]["taskDefinitionArn"]
    )


def create(
    alb: Alb,
    name: str = "web-blue",
    target_group_arn: str | None = None,
    desired: int = 2,
    configuration: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A Fargate service of the `web` task definition behind the blue target group (or the one given)."""
    if "taskDefinition" not in extra:
        extra["taskDefinition"] = "web"
    return dict(
        ecs().create_service(
            cluster=CLUSTER,
            serviceName=name,
            desiredCount=desired,
            launchType="FARGATE",
            loadBalancers=[
                {
                    "targetGroupArn": target_group_arn or alb.blue_arn,
                    "containerName": "app",
                    "containerPort": 8080,
                }
            ],
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": list(alb.subnet_ids),
                    "securityGroups": [alb.security_group_id],
                    "assignPublicIp": "DISABLED",
                }
            },
            deploymentConfiguration=configuration or {},
            **extra,
        )["service"]
    )


@pytest.fixture(autouse=True)
def cluster(ecs_emulation: EcsEmulation) -> None:
    """The cluster and revision 1 of the `web` task definition."""
    ecs().create_cluster(clusterName=CLUSTER)
    register_web()


def service(name: str = "web-blue") -> dict[str, Any]:
    return dict(ecs().describe_services(cluster=CLUSTER, services=[name])["services"][0])


def ticker(timeout: float = 10) -> Callable[[], None]:
    """For a polling loop: each call waits a little, and fails the test once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout

    def tick() -> None:
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)

    return tick


def wait_until(check: Callable[[], Any], timeout: float = 10) -> Any:
    """Poll until check() returns something truthy, and return it."""
    tick = ticker(timeout)
    while not (result := check()):
        tick()
    return result


def steady(name: str = "web-blue") -> dict[str, Any]:
    """The service once its only deployment is COMPLETED."""
    return dict(
        wait_until(
            lambda: (
                (s := service(name))["deployments"][0]["rolloutState"] == "COMPLETED"
                and len(s["deployments"]) == 1
                and s
            )
        )
    )


def tasks(name: str = "web-blue", desired_status: str = "RUNNING") -> list[dict[str, Any]]:
    arns = ecs().list_tasks(cluster=CLUSTER, serviceName=name, desiredStatus=desired_status)["taskArns"]
    return list(ecs().describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"]) if arns else []


def address(task: dict[str, Any]) -> str:
    details = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}
    return str(details["privateIPv4Address"])


def target_states(target_group_arn: str) -> dict[str, str]:
    found = elbv2().describe_target_health(TargetGroupArn=target_group_arn)["TargetHealthDescriptions"]
    return {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in found}


def error_of(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as error:
        call()
    return str(error.value.response["Error"]["Code"]), str(error.value.response["Error"]["Message"])


# Deployments --------------------------------------------------------------------------------------


def test_create_service_starts_its_tasks_registers_them_and_completes(alb: Alb) -> None:
    """CreateService: one PRIMARY deployment, IN_PROGRESS, its tasks PENDING; once they are RUNNING and
    healthy in the target group, runningCount == desiredCount and the deployment is COMPLETED."""
    created = create(alb)
    deployment = created["deployments"][0]
    assert (created["runningCount"], created["pendingCount"]) == (0, 2)
    assert (deployment["status"], deployment["rolloutState"], deployment["pendingCount"]) == (
        "PRIMARY",
        "IN_PROGRESS",
        2,
    )
    done = steady()
    assert done["deployments"][0]["id"] == deployment["id"]
    assert (done["runningCount"], done["pendingCount"], done["deployments"][0]["runningCount"]) == (2, 0, 2)
    assert done["deployments"][0]["rolloutStateReason"] == f"ECS deployment {deployment['id']} completed."
    running = tasks()
    assert [(t["lastStatus"], t["startedBy"], t["group"]) for t in running] == [
        ("RUNNING", deployment["id"], "service:web-blue")
    ] * 2
    assert target_states(alb.blue_arn) == {address(t): "healthy" for t in running}
    assert target_states(alb.green_arn) == {}
    assert any("has reached a steady state" in e["message"] for e in done["events"])


def test_completion_waits_for_the_targets_to_be_healthy(alb: Alb) -> None:
    """ "Tasks for services that use a load balancer are considered healthy if they're in the RUNNING state
    and are reported as healthy by the load balancer": while the targets are `initial`, the deployment is
    still IN_PROGRESS."""
    elbv2().modify_target_group(
        TargetGroupArn=alb.blue_arn, HealthCheckIntervalSeconds=30, HealthyThresholdCount=10
    )
    create(alb)
    current = wait_until(lambda: (s := service())["runningCount"] == 2 and s)
    assert set(target_states(alb.blue_arn).values()) == {"initial"}
    assert current["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    steady()
    assert set(target_states(alb.blue_arn).values()) == {"healthy"}


def test_a_new_task_definition_rolls_out_as_a_new_primary_deployment(alb: Alb) -> None:
    """UpdateService with a new task definition: a new PRIMARY deployment, the old one ACTIVE; with the
    default 200 % maximum and 100 % minimum healthy, new tasks start before old ones stop, so two healthy
    targets serve throughout; old tasks are stopped and their targets drain; then one COMPLETED deployment."""
    create(alb)
    before = steady()["deployments"][0]
    old_tasks = {t["taskArn"] for t in tasks()}
    register_web(image="web:2.0")
    updated = ecs().update_service(cluster=CLUSTER, service="web-blue", taskDefinition="web:2")["service"]
    assert [(d["status"], d["taskDefinition"].rsplit("/", 1)[-1]) for d in updated["deployments"]] == [
        ("PRIMARY", "web:2"),
        ("ACTIVE", "web:1"),
    ]
    assert updated["taskDefinition"].endswith(":task-definition/web:2")
    new_id = updated["deployments"][0]["id"]
    tick = ticker()
    while len((current := service())["deployments"]) > 1:
        states = list(target_states(alb.blue_arn).values())
        assert states.count("healthy") >= 2, states
        assert current["runningCount"] + current["pendingCount"] <= 4
        tick()
    done = current["deployments"]
    assert [(d["id"], d["status"], d["rolloutState"]) for d in done] == [(new_id, "PRIMARY", "COMPLETED")]
    assert new_id != before["id"]
    running = tasks()
    assert {t["taskDefinitionArn"].rsplit("/", 1)[-1] for t in running} == {"web:2"}
    stopped = [t for t in tasks(desired_status="STOPPED") if t["taskArn"] in old_tasks]
    assert len(stopped) == 2
    assert {t["stoppedReason"] for t in stopped} == {f"Scaling activity initiated by (deployment {new_id})"}
    assert {t["stopCode"] for t in stopped} == {"ServiceSchedulerInitiated"}
    wait_until(lambda: set(target_states(alb.blue_arn)) == {address(t) for t in running})


def test_minimum_and_maximum_percent_bound_a_rolling_update(alb: Alb) -> None:
    """DeploymentConfiguration: maximumPercent 100 keeps running + pending tasks at the desired count, and
    minimumHealthyPercent 50 keeps at least half of them running."""
    create(alb, desired=4, configuration={"maximumPercent": 100, "minimumHealthyPercent": 50})
    steady()
    register_web(image="web:2.0")
    ecs().update_service(cluster=CLUSTER, service="web-blue", taskDefinition="web:2")
    tick = ticker()
    while len((current := service())["deployments"]) > 1:
        assert current["runningCount"] + current["pendingCount"] <= 4
        assert current["runningCount"] >= 2
        tick()
    assert current["deploymentConfiguration"]["maximumPercent"] == 100
    assert [t["taskDefinitionArn"].rsplit("/", 1)[-1] for t in tasks()] == ["web:2"] * 4


def test_changing_only_the_desired_count_scales_the_primary_deployment(alb: Alb) -> None:
    """UpdateService with desiredCount only: no new deployment; the PRIMARY deployment's desiredCount
    follows, tasks start or stop. Scaling to 0 stops every task and drains its target."""
    create(alb)
    deployment_id = steady()["deployments"][0]["id"]
    scaled = ecs().update_service(cluster=CLUSTER, service="web-blue", desiredCount=4)["service"]
    assert [(d["id"], d["desiredCount"]) for d in scaled["deployments"]] == [(deployment_id, 4)]
    assert scaled["runningCount"] == 2  # moto would say 4 at once
    wait_until(lambda: list(target_states(alb.blue_arn).values()).count("healthy") == 4)
    assert service()["runningCount"] == 4

    elbv2().modify_target_group_attributes(
        TargetGroupArn=alb.blue_arn,
        Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "300"}],
    )
    ecs().update_service(cluster=CLUSTER, service="web-blue", desiredCount=0)
    assert wait_until(lambda: service()["runningCount"] == 0)
    assert set(target_states(alb.blue_arn).values()) == {"draining"}
    assert tasks() == []
    wait_until(lambda: all(t["lastStatus"] == "STOPPED" for t in tasks(desired_status="STOPPED")))
    assert len(tasks(desired_status="STOPPED")) == 4
    wait_until(lambda: target_states(alb.blue_arn) == {})
    assert [d["id"] for d in service()["deployments"]] == [deployment_id]


# Failures -----------------------------------------------------------------------------------------


def test_the_circuit_breaker_fails_a_deployment_whose_tasks_do_not_start_and_rolls_back(
    alb: Alb, ecs_emulation: EcsEmulation
) -> None:
    """Deployment circuit breaker with rollback: after 0.5 x desired (at least 3) tasks failed to start, the
    deployment is FAILED and a new deployment of the last completed task definition starts; the old tasks
    keep serving meanwhile."""
    create(alb, configuration=CIRCUIT_BREAKER_WITH_ROLLBACK)
    completed = steady()["deployments"][0]
    register_web(image="web:broken")
    ecs_emulation.fail_tasks(
        CLUSTER, "web-blue", reason="CannotPullContainerError: web:broken not found", task_definition="web:2"
    )
    ecs().update_service(cluster=CLUSTER, service="web-blue", taskDefinition="web:2")
    current, tick = service(), ticker()
    while "FAILED" not in {d["rolloutState"] for d in current["deployments"]}:
        assert current["runningCount"] >= 2
        tick()
        current = service()
    rollback, failed = current["deployments"][:2]
    assert (failed["status"], failed["rolloutState"], failed["taskDefinition"].rsplit("/", 1)[-1]) == (
        "ACTIVE",
        "FAILED",
        "web:2",
    )
    assert failed["failedTasks"] >= 3
    assert failed["rolloutStateReason"] == "ECS deployment circuit breaker: task failed to start."
    assert (rollback["status"], rollback["rolloutState"], rollback["taskDefinition"]) == (
        "PRIMARY",
        "IN_PROGRESS",
        completed["taskDefinition"],
    )
    assert rollback["rolloutStateReason"] == (
        f"ECS deployment circuit breaker: rolling back to deploymentId {completed['id']}."
    )
    tick = ticker()
    while (current := service())["deployments"][0]["rolloutState"] != "COMPLETED":
        assert current["runningCount"] >= 2
        tick()
    done = steady()
    assert done["taskDefinition"] == completed["taskDefinition"]
    assert done["deployments"][0]["id"] not in (completed["id"], failed["id"])
    broken = [t for t in tasks(desired_status="STOPPED") if t["taskDefinitionArn"].endswith("/web:2")]
    failures = [t for t in broken if t["stopCode"] == "TaskFailedToStart"]
    assert len(failures) >= 3
    assert {t["stoppedReason"] for t in failures} == {"CannotPullContainerError: web:broken not found"}
    assert all("startedAt" not in t for t in broken)
    # Those still pending when the deployment failed are stopped by the rollback.
    assert {t["stopCode"] for t in broken} <= {"TaskFailedToStart", "ServiceSchedulerInitiated"}


def test_without_rollback_a_failed_deployment_launches_no_more_tasks(
    alb: Alb, ecs_emulation: EcsEmulation
) -> None:
    """ "A deployment in FAILED state doesn't launch any new tasks"; the previous deployment keeps running."""
    create(alb, configuration={"deploymentCircuitBreaker": {"enable": True, "rollback": False}})
    steady()
    register_web(image="web:broken")
    ecs_emulation.fail_tasks(
        CLUSTER, "web-blue", stop_code="EssentialContainerExited", reason="Essential container in task exited"
    )
    ecs().update_service(cluster=CLUSTER, service="web-blue", taskDefinition="web:2")
    failed = wait_until(lambda: (s := service())["deployments"][0]["rolloutState"] == "FAILED" and s)
    attempts = len(tasks(desired_status="STOPPED"))
    time.sleep(ecs_emulation.task_start_seconds * ecs_emulation.time_scale * 5)
    assert len(tasks(desired_status="STOPPED")) == attempts
    current = service()
    assert [(d["status"], d["rolloutState"]) for d in current["deployments"]] == [
        ("PRIMARY", "FAILED"),
        ("ACTIVE", "COMPLETED"),
    ]
    assert (current["runningCount"], current["deployments"][1]["runningCount"]) == (2, 2)
    assert failed["deployments"][0]["failedTasks"] >= 3
    assert {t["stopCode"] for t in tasks(desired_status="STOPPED")} == {"EssentialContainerExited"}


def test_without_the_circuit_breaker_failing_tasks_keep_being_replaced(
    alb: Alb, ecs_emulation: EcsEmulation
) -> None:
    """Without the circuit breaker the deployment stays IN_PROGRESS: the scheduler keeps launching tasks,
    and the deployment's failedTasks keeps counting them."""
    create(alb)
    steady()
    register_web(image="web:broken")
    ecs_emulation.fail_tasks(CLUSTER, "web-blue", task_definition="web:2")
    ecs().update_service(cluster=CLUSTER, service="web-blue", taskDefinition="web:2")
    current = wait_until(lambda: (s := service())["deployments"][0]["failedTasks"] >= 8 and s)
    assert current["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    assert (current["deployments"][1]["status"], current["deployments"][1]["runningCount"]) == ("ACTIVE", 2)

    ecs_emulation.stop_failing_tasks(CLUSTER, "web-blue")
    done = steady()
    assert done["taskDefinition"].endswith("/web:2")


def test_tasks_failing_the_load_balancer_health_checks_are_stopped(
    alb: Alb, ecs_emulation: EcsEmulation, elbv2_emulation: Elbv2Emulation
) -> None:
    """A task whose target is unhealthy is deregistered and stopped: "Task failed ELB health checks in
    (target-group ...)"; such failures count for the circuit breaker, which fails a first deployment
    (nothing to roll back to)."""
    ecs_emulation.stopped_tasks_kept_seconds = 1e6  # the hour AWS keeps them, not 3.6 s of compressed time
    elbv2_emulation.set_unhealthy(alb.green_arn)
    create(alb, name="web-green", target_group_arn=alb.green_arn, configuration=CIRCUIT_BREAKER_WITH_ROLLBACK)
    failed = wait_until(
        lambda: (s := service("web-green"))["deployments"][0]["rolloutState"] == "FAILED" and s
    )
    assert len(failed["deployments"]) == 1
    assert failed["deployments"][0]["failedTasks"] >= 3
    stopped = tasks("web-green", desired_status="STOPPED")
    assert {t["stoppedReason"] for t in stopped} == {
        f"Task failed ELB health checks in (target-group {alb.green_arn})"
    }
    assert all("startedAt" in t for t in stopped)


# Load balancer configuration ----------------------------------------------------------------------


def test_create_service_checks_its_load_balancer_configuration(alb: Alb) -> None:
    """Service load balancing: an awsvpc task definition needs target type `ip`; the target group must be
    associated with a load balancer; the container and port must be in the task definition; an awsvpc task
    definition needs a network configuration."""
    instance = elbv2().create_target_group(
        Name="web-instance", Protocol="HTTP", Port=8080, VpcId=alb.vpc_id, TargetType="instance"
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2().create_rule(
        ListenerArn=alb.listener_arn,
        Priority=5,
        Conditions=[{"Field": "path-pattern", "Values": ["/legacy/*"]}],
        Actions=[{"Type": "forward", "TargetGroupArn": instance}],
    )
    code, message = error_of(lambda: create(alb, target_group_arn=instance))
    assert code == "InvalidParameterException"
    assert "incompatible with the awsvpc network mode" in message

    idle = elbv2().create_target_group(
        Name="web-idle", Protocol="HTTP", Port=8080, VpcId=alb.vpc_id, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    code, message = error_of(lambda: create(alb, target_group_arn=idle))
    assert (code, message) == (
        "InvalidParameterException",
        f"The target group with targetGroupArn {idle} does not have an associated load balancer.",
    )

    register_web(port=9090)
    code, message = error_of(lambda: create(alb, taskDefinition="web:2"))
    assert (code, message) == (
        "InvalidParameterException",
        "The container app did not have a container port 8080 defined.",
    )

    code, _ = error_of(
        lambda: ecs().create_service(
            cluster=CLUSTER, serviceName="web-blue", taskDefinition="web:1", desiredCount=1
        )
    )
    assert code == "InvalidParameterException"
    assert ecs().list_services(cluster=CLUSTER)["serviceArns"] == []


# Tasks --------------------------------------------------------------------------------------------


def test_list_tasks_filters_by_service_and_shows_running_tasks_by_default(alb: Alb) -> None:
    """ListTasks: serviceName filters; "The default status filter is RUNNING"."""
    create(alb)
    create(alb, name="web-green", target_group_arn=alb.green_arn, desired=1)
    steady()
    steady("web-green")
    blue = {t["taskArn"] for t in tasks()}
    green = {t["taskArn"] for t in tasks("web-green")}
    assert (len(blue), len(green)) == (2, 1)
    assert blue.isdisjoint(green)
    assert set(ecs().list_tasks(cluster=CLUSTER)["taskArns"]) == blue | green
    ecs().update_service(cluster=CLUSTER, service="web-green", desiredCount=0)
    assert set(ecs().list_tasks(cluster=CLUSTER)["taskArns"]) == blue
    assert set(ecs().list_tasks(cluster=CLUSTER, desiredStatus="STOPPED")["taskArns"]) == green


def test_a_stopped_task_is_replaced(alb: Alb) -> None:
    """StopTask on a service's task: stopCode UserInitiated; the service scheduler starts another."""
    create(alb)
    steady()
    victim = tasks()[0]
    ecs().stop_task(cluster=CLUSTER, task=victim["taskArn"], reason="debugging")
    stopped = ecs().describe_tasks(cluster=CLUSTER, tasks=[victim["taskArn"]])["tasks"][0]
    assert (stopped["desiredStatus"], stopped["stopCode"], stopped["stoppedReason"]) == (
        "STOPPED",
        "UserInitiated",
        "debugging",
    )
    wait_until(
        lambda: service()["runningCount"] == 2 and victim["taskArn"] not in {t["taskArn"] for t in tasks()}
    )


def test_a_deleted_service_drains_then_is_inactive(alb: Alb) -> None:
    """DeleteService with force: the service is DRAINING while its tasks stop, then INACTIVE."""
    create(alb)
    steady()
    deleted = ecs().delete_service(cluster=CLUSTER, service="web-blue", force=True)["service"]
    assert deleted["status"] == "DRAINING"
    wait_until(lambda: service()["status"] == "INACTIVE")
    assert tasks() == []
    assert {t["lastStatus"] for t in tasks(desired_status="STOPPED")} == {"STOPPED"}


# Blue/green and events ----------------------------------------------------------------------------


def test_blue_green_traffic_shift(alb: Alb) -> None:
    """The sequence of an ECS blue/green workflow: a green service behind the idle target group becomes
    steady (runningCount == desiredCount, its targets healthy), the listener's weights shift, blue scales to 0
    and its targets drain away."""
    create(alb)
    steady()
    create(alb, name="web-green", target_group_arn=alb.green_arn)
    green = wait_until(
        lambda: (
            (s := service("web-green"))["runningCount"] == s["desiredCount"]
            and set(target_states(alb.green_arn).values()) == {"healthy"}
            and s
        )
    )
    assert len(target_states(alb.green_arn)) == green["desiredCount"] == 2
    for blue_weight, green_weight in ((90, 10), (50, 50), (0, 100)):
        elbv2().modify_listener(
            ListenerArn=alb.listener_arn,
            DefaultActions=[
                {
                    "Type": "forward",
                    "ForwardConfig": {
                        "TargetGroups": [
                            {"TargetGroupArn": alb.blue_arn, "Weight": blue_weight},
                            {"TargetGroupArn": alb.green_arn, "Weight": green_weight},
                        ]
                    },
                }
            ],
        )
    ecs().update_service(cluster=CLUSTER, service="web-blue", desiredCount=0)
    wait_until(lambda: service()["runningCount"] == 0 and target_states(alb.blue_arn) == {})
    assert set(target_states(alb.green_arn).values()) == {"healthy"}
    assert service("web-green")["runningCount"] == 2


def test_deployment_state_change_events_reach_a_rule(alb: Alb, ecs_emulation: EcsEmulation) -> None:
    """ "Amazon ECS service deployment state change events": source aws.ecs, detail-type ECS Deployment State
    Change, the service ARN in resources; SERVICE_DEPLOYMENT_IN_PROGRESS (also for a rollback, with the
    circuit breaker's reason), SERVICE_DEPLOYMENT_FAILED (eventType ERROR), SERVICE_DEPLOYMENT_COMPLETED."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="ecs-deployments")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events = boto3.client("events", region_name="us-east-1")
    events.put_rule(
        Name="ecs-deployments",
        EventPattern=json.dumps({"source": ["aws.ecs"], "detail-type": ["ECS Deployment State Change"]}),
    )
    events.put_targets(Rule="ecs-deployments", Targets=[{"Id": "queue", "Arn": queue_arn}])
    service_arn = create(alb, configuration=CIRCUIT_BREAKER_WITH_ROLLBACK)["serviceArn"]
    first = steady()["deployments"][0]["id"]
    register_web(image="web:broken")
    ecs_emulation.fail_tasks(CLUSTER, "web-blue", task_definition="web:2")
    failed = ecs().update_service(cluster=CLUSTER, service="web-blue", taskDefinition="web:2")["service"]
    failed_id = failed["deployments"][0]["id"]
    rollback_id = steady()["deployments"][0]["id"]

    received = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        received += [json.loads(m["Body"]) for m in messages]
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
    assert [
        (e["detail"]["eventName"], e["detail"]["deploymentId"], e["detail"]["eventType"]) for e in received
    ] == [
        ("SERVICE_DEPLOYMENT_IN_PROGRESS", first, "INFO"),
        ("SERVICE_DEPLOYMENT_COMPLETED", first, "INFO"),
        ("SERVICE_DEPLOYMENT_IN_PROGRESS", failed_id, "INFO"),
        ("SERVICE_DEPLOYMENT_FAILED", failed_id, "ERROR"),
        ("SERVICE_DEPLOYMENT_IN_PROGRESS", rollback_id, "INFO"),
        ("SERVICE_DEPLOYMENT_COMPLETED", rollback_id, "INFO"),
    ]
    assert {(e["source"], e["detail-type"]) for e in received} == {("aws.ecs", "ECS Deployment State Change")}
    assert all(e["resources"] == [service_arn] for e in received)
    reasons = [e["detail"]["reason"] for e in received]
    assert reasons[0] == f"ECS deployment {first} in progress."
    assert reasons[1] == f"ECS deployment {first} completed."
    assert reasons[3] == "ECS deployment circuit breaker: task failed to start."
    assert reasons[4] == f"ECS deployment circuit breaker: rolling back to deploymentId {first}."
    assert all(e["detail"]["updatedAt"].endswith("Z") for e in received)
