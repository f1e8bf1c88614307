"""Environment power end to end: a seeded environment stopped and started through the API, the real
state machine and step handlers, with the EC2 and RDS stop/start emulation."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from datetime import time as dt_time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from opsflow_local import EmbeddedAws, seed

ALICE = "arn:aws:iam::123456789012:user/alice"


@pytest.fixture
def aws() -> Iterator[EmbeddedAws]:
    # Databases take minutes to stop and start; at 1/500 of real time that is well under a second.
    with EmbeddedAws(time_scale=0.002) as embedded:
        yield embedded


def run(aws: EmbeddedAws, environment: str, action: str, **extra: Any) -> dict[str, Any]:
    response = aws.api.post(
        "/runs",
        json={"workflow": "env_power", "environment": environment, "action": action, **extra},
        principal=ALICE,
        headers={"Idempotency-Key": f"{environment}-{action}-{time.monotonic_ns()}"},
    )
    assert response.status_code == 202, response.json()
    return aws.wait_for_run(response.json()["run_id"], timeout=120)


def settled(aws: EmbeddedAws, timeout: float = 30) -> dict[str, Any]:
    """Every instance, group, service and database as it is once the stop/start transitions are over."""
    deadline = time.monotonic() + timeout
    while True:
        state = snapshot(aws)
        moving = [
            k
            for k, v in state.items()
            if v in ("pending", "stopping", "starting", "configuring-enhanced-monitoring")
        ]
        if not moving:
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"still changing after {timeout} s: {moving}")
        time.sleep(0.2)


def snapshot(aws: EmbeddedAws) -> dict[str, Any]:
    state: dict[str, Any] = {}
    reservations = aws.client("ec2").describe_instances(
        Filters=[{"Name": "tag-key", "Values": [seed.ENVIRONMENT_TAG]}]
    )["Reservations"]
    for reservation in reservations:
        for instance in reservation["Instances"]:
            if instance["State"]["Name"] != "terminated" and not any(
                t["Key"] == "aws:autoscaling:groupName" for t in instance.get("Tags", [])
            ):
                state[f"instance {instance['InstanceId']}"] = instance["State"]["Name"]
    for group in aws.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]:
        state[f"group {group['AutoScalingGroupName']}"] = (
            group["MinSize"],
            group["DesiredCapacity"],
            group["MaxSize"],
        )
    ecs = aws.client("ecs")
    for cluster in ecs.list_clusters()["clusterArns"]:
        arns = ecs.list_services(cluster=cluster)["serviceArns"]
        for service in ecs.describe_services(cluster=cluster, services=arns)["services"]:
            state[f"service {service['serviceName']}"] = service["desiredCount"]
    rds = aws.client("rds")
    for db in rds.describe_db_instances()["DBInstances"]:
        state[f"db {db['DBInstanceIdentifier']}"] = db["DBInstanceStatus"]
    for cluster in rds.describe_db_clusters()["DBClusters"]:
        state[f"cluster {cluster['DBClusterIdentifier']}"] = cluster["Status"]
    return state


def environment_keys(env: seed.SeededEnvironment) -> set[str]:
    return {
        *(f"instance {i}" for i in env.instances),
        *(f"group {g}" for g in env.groups),
        *(f"service {s}" for s in env.services),
        "db qa-orders",
        "cluster qa-reports",
        "db qa-reports-1",
        "db qa-reports-2",
    }


def test_stop_then_start_restores_exactly_what_ran_and_touches_nothing_else(
    aws: EmbeddedAws, net: seed.Network
) -> None:
    env = seed.environment(aws, net, "qa")
    # Resized by hand during the day: it must come back at its new size, not the seeded one.
    aws.client("autoscaling").update_auto_scaling_group(
        AutoScalingGroupName="qa-web", MinSize=3, DesiredCapacity=3, MaxSize=5
    )
    before = settled(aws)
    assert before[f"instance {env.stopped_instance}"] == "stopped"

    stopped = run(aws, "qa", "stop")

    assert stopped["status"] == "SUCCEEDED", stopped["output"]
    assert stopped["output"]["saved"] == {"services": 2, "groups": 2, "instances": 3, "databases": 2}
    night = settled(aws)
    for instance in env.instances:
        assert night[f"instance {instance}"] == "stopped"
    assert night["group qa-web"] == (0, 0, 0)
    assert night["group qa-jobs"] == (0, 0, 0)
    assert night["service qa-api"] == night["service qa-ui"] == 0
    assert night["db qa-orders"] == "stopped"
    assert night["cluster qa-reports"] == "stopped"
    assert night["db qa-reports-1"] == night["db qa-reports-2"] == "stopped"  # with their cluster
    untouched = {key: value for key, value in before.items() if key not in environment_keys(env)}
    assert {key: night[key] for key in untouched} == untouched
    assert before["service qa-admin"] == night["service qa-admin"] == 1  # same environment, not opted in

    started = run(aws, "qa", "start")

    assert started["status"] == "SUCCEEDED", started["output"]
    assert started["output"]["restored_from"]["run_id"] == stopped["run_id"]
    assert settled(aws) == before
    steps = [s["step"] for s in started["steps"]]
    assert steps.index("start_databases") < steps.index("start_instances") < steps.index("restore_groups")
    assert steps.index("restore_groups") < steps.index("restore_services")
    titles = [n.text.splitlines()[0] for n in aws.notifications if n.platform == "slack"]
    assert any("Environment stop succeeded: qa" in t for t in titles), titles
    assert any("Environment start succeeded: qa" in t for t in titles), titles


def test_a_second_stop_keeps_the_first_save_and_a_second_start_changes_nothing(
    aws: EmbeddedAws, net: seed.Network
) -> None:
    env = seed.environment(aws, net, "qa")
    before = settled(aws)
    first = run(aws, "qa", "stop")
    assert first["status"] == "SUCCEEDED"
    # Someone starts an instance by hand at night; a second stop must not save this as "what ran".
    settled(aws)
    aws.client("ec2").start_instances(InstanceIds=[env.instances[0]])
    settled(aws)

    second = run(aws, "qa", "stop")

    assert second["status"] == "SUCCEEDED"
    assert second["output"]["already_down"] is True
    assert first["run_id"] in second["output"]["summary"]
    assert settled(aws)[f"instance {env.instances[0]}"] == "running"  # nothing changed

    started = run(aws, "qa", "start")
    assert started["output"]["restored_from"]["run_id"] == first["run_id"]
    assert settled(aws) == before
    # Scaled by hand after the start-up: a second start-up must leave it alone.
    aws.client("autoscaling").update_auto_scaling_group(AutoScalingGroupName="qa-jobs", DesiredCapacity=5)

    again = run(aws, "qa", "start")

    assert again["status"] == "SUCCEEDED"
    assert again["output"]["nothing_to_restore"] is True
    assert settled(aws)["group qa-jobs"] == (1, 5, 6)


def test_one_database_refusing_to_stop_does_not_stop_the_rest_and_start_up_restores_them(
    aws: EmbeddedAws, net: seed.Network
) -> None:
    env = seed.environment(aws, net, "qa", refusing_database=True)
    before = settled(aws)

    stopped = run(aws, "qa", "stop")

    assert stopped["status"] == "FAILED"
    error = stopped["output"]
    assert [f["resource"] for f in error["failed"]] == ["database instance:qa-ledger"]
    assert "InvalidDBClusterStateFault" in error["failed"][0]["error"]
    assert "saved capacity is kept" in error["message"]
    night = settled(aws)
    assert night["db qa-ledger"] == "available"
    assert night["db qa-orders"] == "stopped"
    assert night["cluster qa-reports"] == "stopped"
    assert all(night[f"instance {i}"] == "stopped" for i in env.instances)
    assert night["group qa-web"] == (0, 0, 0)
    # The daily check leaves alone the database the shutdown could not stop: it was never down.
    check = fire(aws, aws.resource_name("DatabaseRecheckSchedule"), "2026-12-01T03:30:00+00:00")
    assert check["runs"] == []
    failure = next(
        n for n in aws.notifications if n.platform == "slack" and "failed" in n.text.splitlines()[0]
    )
    assert "qa-ledger" in json.dumps(failure.payload)
    assert "saved capacity is kept" in json.dumps(failure.payload)

    started = run(aws, "qa", "start")

    assert started["status"] == "SUCCEEDED", started["output"]
    assert settled(aws) == before


def test_dry_run_lists_each_change_and_touches_nothing(aws: EmbeddedAws, net: seed.Network) -> None:
    env = seed.environment(aws, net, "qa")
    before = settled(aws)

    response = aws.api.post(
        "/runs", json={"workflow": "env_power", "environment": "qa", "action": "stop", "dry_run": True}
    )

    assert response.status_code == 200
    plan = response.json()["plan"]
    resources = {change["resource"]: change["after"] for change in plan["changes"]}
    assert resources["auto scaling group qa-jobs"] == "min 0 / desired 0 / max 0"
    assert resources["ecs service qa-api"] == "desired 0"
    assert resources[f"instance {env.instances[0]}"] == "stopped"
    assert resources["database cluster:qa-reports"] == "stopped"
    assert f"instance {env.stopped_instance} (stopped)" in plan["left_alone"]
    assert len(resources) == 9
    assert snapshot(aws) == before


@pytest.mark.parametrize(
    ("environment", "status", "words"),
    [
        ("nowhere", 422, "no resource carries both opsflow:environment=nowhere and opsflow:managed=true"),
        ("qa prod", 400, "environment"),
    ],
)
def test_a_request_that_cannot_work_is_refused_and_changes_nothing(
    aws: EmbeddedAws, net: seed.Network, environment: str, status: int, words: str
) -> None:
    seed.environment(aws, net, "qa")
    before = snapshot(aws)

    response = aws.api.post(
        "/runs", json={"workflow": "env_power", "environment": environment, "action": "stop"}
    )

    assert response.status_code == status
    assert words in response.json()["message"]
    assert snapshot(aws) == before


SCHEDULE = {
    "timezone": "Europe/Berlin",
    "stop_at": "20:00",
    "start_at": "07:00",
    "holidays": {"country": "DE", "subdivision": "BY"},
    "on_days": ["2026-11-28"],
}


def fire(aws: EmbeddedAws, name: str, at: str) -> dict[str, Any]:
    result = aws.emulation.scheduler.fire(name, datetime.fromisoformat(at))
    assert isinstance(result, dict)
    return result


def test_schedules_stop_and_start_the_environment_on_working_days_only(
    aws: EmbeddedAws, net: seed.Network
) -> None:
    seed.environment(aws, net, "qa")
    before = settled(aws)
    response = aws.api.put("/environments/qa", json=SCHEDULE, principal=ALICE)
    assert response.status_code == 200, response.json()
    schedule = aws.client("scheduler").get_schedule(
        Name="qa-stop", GroupName=aws.resource_name("EnvironmentSchedules")
    )
    assert schedule["ScheduleExpression"] == "cron(0 20 * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == "Europe/Berlin"
    assert schedule["Target"]["DeadLetterConfig"]["Arn"].endswith(":opsflow-ScheduleDeadLetterQueue")

    # Friday evening: stop. Saturday 2026-11-28 is an extra on-day; Sunday is not a working day.
    stop = fire(aws, "qa-stop", "2026-11-27T20:00:00+01:00")
    stopped = aws.wait_for_run(stop["run_id"])
    sunday = fire(aws, "qa-start", "2026-11-29T07:00:00+01:00")
    sunday_stop = fire(aws, "qa-stop", "2026-11-29T20:00:00+01:00")
    monday = fire(aws, "qa-start", "2026-11-30T07:00:00+01:00")
    started = aws.wait_for_run(monday["run_id"])

    assert stopped["status"] == "SUCCEEDED"
    assert stopped["requester"] == {"kind": "schedule", "identity": schedule["Arn"]}
    assert sunday["status"] == "SKIPPED"
    assert "Sunday is not a working day" in sunday["summary"]
    assert sunday_stop["status"] == "SKIPPED"
    assert "already down" in sunday_stop["summary"]
    assert started["status"] == "SUCCEEDED"
    assert started["requester"]["identity"].endswith("/qa-start")
    assert settled(aws) == before
    listed = {r["run_id"]: r for r in aws.api.get("/runs?target=env:qa").json()["runs"]}
    assert listed[stop["run_id"]]["requester"] == {"kind": "schedule", "identity": schedule["Arn"]}
    assert listed[sunday["run_id"]]["status"] == "SKIPPED"
    skipped = aws.api.get(f"/runs/{sunday['run_id']}").json()
    assert skipped["status"] == "SKIPPED"
    assert skipped["requester"]["kind"] == "schedule"


def test_a_repeated_delivery_of_one_fire_starts_one_run(aws: EmbeddedAws, net: seed.Network) -> None:
    seed.environment(aws, net, "qa")
    aws.api.put("/environments/qa", json=SCHEDULE, principal=ALICE)

    first = fire(aws, "qa-stop", "2026-11-27T20:00:00+01:00")
    again = fire(aws, "qa-stop", "2026-11-27T20:00:00+01:00")

    assert again["run_id"] == first["run_id"]
    assert aws.wait_for_run(first["run_id"])["status"] == "SUCCEEDED"


def test_keep_alive_skips_the_nightly_stops_until_it_expires(aws: EmbeddedAws, net: seed.Network) -> None:
    seed.environment(aws, net, "qa")
    aws.api.put("/environments/qa", json=SCHEDULE, principal=ALICE)
    # The API refuses a keep-alive in the past, so the days are counted from today.
    berlin = ZoneInfo("Europe/Berlin")
    tomorrow = datetime.now(berlin).date() + timedelta(days=1)
    until = datetime.combine(tomorrow + timedelta(days=1), dt_time(9), berlin)
    kept = aws.api.post(
        "/environments/qa/keep-alive",
        json={"until": until.isoformat(), "reason": "release testing"},
        principal=ALICE,
    )
    assert kept.status_code == 200, kept.json()
    assert kept.json()["keep_alive"]["by"] == ALICE

    first = fire(aws, "qa-stop", datetime.combine(tomorrow, dt_time(20), berlin).isoformat())
    second = fire(
        aws, "qa-stop", datetime.combine(tomorrow + timedelta(days=1), dt_time(20), berlin).isoformat()
    )

    assert first["status"] == "SKIPPED"
    assert f"kept alive until {until:%Y-%m-%d} 09:00" in first["summary"]
    assert second["status"] == "RUNNING"
    assert aws.wait_for_run(second["run_id"])["status"] == "SUCCEEDED"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({**SCHEDULE, "timezone": "Europe/Berln"}, "timezone", "use an IANA name such as Europe/Berlin"),
        ({**SCHEDULE, "stop_at": "25:00"}, "stop_at", "HH:MM"),
        ({**SCHEDULE, "holidays": {"country": "DE", "subdivision": "XX"}}, "holidays", "unknown subdivision"),
        ({**SCHEDULE, "off_days": ["2026-11-28"]}, "(body)", "both an off-day and an on-day"),
    ],
)
def test_a_bad_schedule_is_refused_and_creates_no_schedule(
    aws: EmbeddedAws, body: dict[str, Any], field: str, words: str
) -> None:
    response = aws.api.put("/environments/qa", json=body, principal=ALICE)

    assert response.status_code == 400
    problems = response.json()["problems"]
    assert any(p["field"].startswith(field) and words in p["problem"] for p in problems), problems
    group = aws.resource_name("EnvironmentSchedules")
    assert aws.client("scheduler").list_schedules(GroupName=group)["Schedules"] == []


def test_the_daily_check_stops_again_a_database_aws_started_after_seven_days(
    aws: EmbeddedAws, net: seed.Network
) -> None:
    seed.environment(aws, net, "qa")
    before = settled(aws)
    assert run(aws, "qa", "stop")["status"] == "SUCCEEDED"
    settled(aws)
    aws.emulation.rds.restart_after_seven_days("qa-orders")
    assert snapshot(aws)["db qa-orders"] == "available"

    check = fire(aws, aws.resource_name("DatabaseRecheckSchedule"), "2026-12-01T03:30:00+00:00")

    assert [r["target"] for r in check["runs"]] == ["env:qa"]
    restop = aws.wait_for_run(check["runs"][0]["run_id"])
    assert restop["status"] == "SUCCEEDED", restop["output"]
    assert restop["requester"]["kind"] == "schedule"
    assert restop["output"]["outcome"]["databases"]["changed"] == 1
    assert settled(aws)["db qa-orders"] == "stopped"
    assert fire(aws, aws.resource_name("DatabaseRecheckSchedule"), "2026-12-02T03:30:00+00:00")["runs"] == []
    # The save was left alone: start-up still restores everything.
    assert run(aws, "qa", "start")["status"] == "SUCCEEDED"
    assert settled(aws) == before


def test_resources_deleted_while_down_do_not_keep_the_environment_from_stopping_again(
    aws: EmbeddedAws, net: seed.Network
) -> None:
    env = seed.environment(aws, net, "qa")
    assert run(aws, "qa", "stop")["status"] == "SUCCEEDED"
    settled(aws)
    aws.client("ec2").terminate_instances(InstanceIds=[env.instances[0]])
    aws.client("autoscaling").delete_auto_scaling_group(AutoScalingGroupName="qa-jobs", ForceDelete=True)

    started = run(aws, "qa", "start")

    assert started["status"] == "SUCCEEDED", started["output"]
    assert set(started["output"]["gone"]) == {f"instance {env.instances[0]}", "auto scaling group qa-jobs"}
    assert "no longer exist" in started["output"]["summary"]
    day = settled(aws)
    assert day[f"instance {env.instances[1]}"] == "running"
    assert day["group qa-web"] == (2, 2, 4)
    # The save was marked restored: tonight's stop works, it does not find the environment "already down".
    again = run(aws, "qa", "stop")
    assert again["status"] == "SUCCEEDED"
    assert "already_down" not in again["output"]
    assert settled(aws)[f"instance {env.instances[1]}"] == "stopped"


def test_a_save_restored_before_resource_references_still_carries_forward_what_it_could_not_restore(
    aws: EmbeddedAws, net: seed.Network
) -> None:
    seed.environment(aws, net, "qa")
    before = settled(aws)
    stopped = run(aws, "qa", "stop")
    assert stopped["status"] == "SUCCEEDED"
    settled(aws)
    # A start-up by the release before resource references, which could not restore qa-web: its head
    # item exactly as that release's mark_restored left it, with labels for what was not restored.
    aws.client("dynamodb").update_item(
        TableName=aws.resource_name("CapacityTable"),
        Key={"environment": {"S": "qa"}, "part": {"S": "head"}},
        UpdateExpression="SET #status = :restored, restored_at = :now, restored_by = :by, "
        "not_restored = :not_restored",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={
            ":restored": {"S": "restored"},
            ":now": {"S": "2026-11-24T06:00:05Z"},
            ":by": {"S": "env-power-old-start"},
            ":not_restored": {"S": json.dumps(["auto scaling group qa-web"])},
        },
    )

    again = run(aws, "qa", "stop")
    started = run(aws, "qa", "start")

    assert again["status"] == "SUCCEEDED", again["output"]
    assert again["output"]["saved"]["groups"] == 1  # qa-web, at 0 since the failed start-up, as saved before
    assert started["status"] == "SUCCEEDED", started["output"]
    assert settled(aws)["group qa-web"] == before["group qa-web"]
