"""Remediation end to end on the embedded runtime, IAM held: an instance's status check fails, its alarm
goes to ALARM, the rule's guard lets it act, and the run reboots (or stops and starts) the instance and waits
on its events until the alarm is OK again, or says the action did not help. Around it the guards: the
cooldown, the breaker, the concurrency cap, another run holding the group, and a dry run."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from opsflow.store.locks import DynamoLockStore
from opsflow_local import EmbeddedAws, seed

from .waiting import notifications_about

RULE: dict[str, Any] = {
    "trigger": {"kind": "status_check"},
    "action": {"kind": "reboot"},
    "scope": {"environment": "prod", "asg_name": "web"},
    "cooldown_minutes": 30,
    "breaker": {"max_actions": 3, "within_minutes": 60},
    "concurrency": {"max_resources": 10},
}


def wait_for(what: str, condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.05)


def put_rule(aws: EmbeddedAws, name: str = "web-reboot", **changes: Any) -> None:
    response = aws.api.put(f"/remediations/{name}", json={**RULE, **changes})
    assert response.status_code == 200, response.text


def remediations(aws: EmbeddedAws) -> list[dict[str, Any]]:
    return list(aws.api.get("/runs?workflow=remediate").json()["runs"])


def runs_for(aws: EmbeddedAws, instance_id: str, count: int = 1) -> list[dict[str, Any]]:
    wait_for(
        f"{count} remediation(s) of {instance_id}",
        lambda: len([r for r in remediations(aws) if instance_id in r["target"]]) >= count,
    )
    return [r for r in remediations(aws) if instance_id in r["target"]]


def alarm_state(aws: EmbeddedAws, name: str) -> str:
    return str(aws.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"])


def checks(aws: EmbeddedAws, instance_id: str) -> tuple[str, str, str]:
    [status] = aws.client("ec2").describe_instance_status(
        InstanceIds=[instance_id], IncludeAllInstances=True
    )["InstanceStatuses"]
    return (
        status["InstanceState"]["Name"],
        status["SystemStatus"]["Status"],
        status["InstanceStatus"]["Status"],
    )


@pytest.fixture
def web(aws: EmbeddedAws, net: seed.Network) -> list[str]:
    instances = seed.fleet(aws, net, "web", 4)
    for instance_id in instances:
        seed.status_check_alarm(aws, f"{instance_id}-status", InstanceId=instance_id)
    return instances


def test_a_failed_instance_check_is_rebooted_once_and_the_alarm_is_ok_again(
    aws: EmbeddedAws, web: list[str]
) -> None:
    put_rule(aws)
    instance_id = web[0]
    aws.emulation.ec2.impair(instance_id, "instance")
    assert alarm_state(aws, f"{instance_id}-status") == "ALARM"

    [run] = runs_for(aws, instance_id)
    done = aws.wait_for_run(run["run_id"])

    assert done["status"] == "SUCCEEDED", done
    assert done["output"]["outcome"] == "helped"
    assert done["output"]["action"] == "reboot"
    assert done["requester"] == {"kind": "remediation", "identity": "remediation rule web-reboot"}
    assert alarm_state(aws, f"{instance_id}-status") == "OK"
    assert checks(aws, instance_id) == ("running", "ok", "ok")
    # The other instances were left alone.
    assert all(alarm_state(aws, f"{other}-status") == "OK" for other in web[1:])
    assert len(remediations(aws)) == 1

    rule = aws.api.get("/remediations/web-reboot").json()
    assert rule["under_way"] == []
    assert [c["outcome"] for c in rule["cooling_down"]] == ["helped"]

    messages = [n.text for n in notifications_about(aws, run["run_id"])]
    assert any("rebooted" in text and "web-reboot" in text for text in messages), messages
    assert any("succeeded" in text.lower() for text in messages), messages


def test_a_second_failure_inside_the_cooldown_is_skipped_and_recorded(
    aws: EmbeddedAws, web: list[str]
) -> None:
    put_rule(aws)
    instance_id = web[0]
    aws.emulation.ec2.impair(instance_id, "instance")
    [first] = runs_for(aws, instance_id)
    aws.wait_for_run(first["run_id"])

    aws.emulation.ec2.impair(instance_id, "instance")
    runs = runs_for(aws, instance_id, 2)
    [skipped] = [r for r in runs if r["run_id"] != first["run_id"]]
    assert skipped["status"] == "SKIPPED"
    shown = aws.api.get(f"/runs/{skipped['run_id']}").json()
    assert "in its cooldown until" in shown["output"]["summary"]
    # Not rebooted again: the instance still fails its check.
    assert checks(aws, instance_id) == ("running", "ok", "impaired")


def test_a_reboot_that_cannot_fix_a_system_check_fails_and_says_so(aws: EmbeddedAws, web: list[str]) -> None:
    put_rule(aws, outcome_timeout_minutes=2)
    instance_id = web[0]
    aws.emulation.ec2.impair(instance_id, "system")

    [run] = runs_for(aws, instance_id)
    done = aws.wait_for_run(run["run_id"])

    assert done["status"] == "FAILED"
    assert done["error"]["error"] == "DidNotHelp"
    assert "did not help within 2 min" in done["error"]["message"]
    assert "system status impaired" in done["error"]["message"]
    rule = aws.api.get("/remediations/web-reboot").json()
    assert [c["outcome"] for c in rule["cooling_down"]] == ["did not help"]


def test_a_stop_and_start_moves_an_instance_off_failed_hardware(aws: EmbeddedAws, web: list[str]) -> None:
    put_rule(aws, trigger={"kind": "status_check", "check": "system"}, action={"kind": "stop_start"})
    instance_id = web[1]
    seed.status_check_alarm(aws, f"{instance_id}-system", "StatusCheckFailed_System", InstanceId=instance_id)
    aws.emulation.ec2.impair(instance_id, "system")

    [run] = runs_for(aws, instance_id)
    done = aws.wait_for_run(run["run_id"])

    assert done["status"] == "SUCCEEDED", done
    assert done["output"]["outcome"] == "helped"
    assert checks(aws, instance_id) == ("running", "ok", "ok")
    assert [s["step"] for s in done["steps"]][:3] == ["check", "act", "watch"]
    states = [
        e.detail["state"]
        for e in aws.emulation.events.sent
        if e.detail_type == "EC2 Instance State-change Notification"
        and e.detail["instance-id"] == instance_id
    ]
    assert states == ["stopping", "stopped", "pending", "running"]


def test_a_storm_opens_the_breaker_after_three_actions_and_tells_the_team_once(
    aws: EmbeddedAws, web: list[str]
) -> None:
    put_rule(aws)
    for instance_id in web:
        aws.emulation.ec2.impair(instance_id, "instance", reboot_fixes=False)
    wait_for("four answers", lambda: len(remediations(aws)) == 4)

    statuses = sorted(r["status"] for r in remediations(aws))
    assert statuses.count("SKIPPED") == 1
    rule = aws.api.get("/remediations/web-reboot").json()
    assert rule["breaker"]["state"] == "open"
    assert rule["breaker"]["reason"].startswith("3 actions within 60 min (the limit is 3)")
    warnings = [n.text for n in aws.notifications if "circuit breaker of rule web-reboot opened" in n.text]
    assert len(warnings) == 2  # one message, on Slack and on Teams

    # It stays open: the next failure is skipped too, until the breaker is closed through the API.
    aws.client("cloudwatch").set_alarm_state(
        AlarmName=f"{web[0]}-status", StateValue="OK", StateReason="test"
    )
    aws.client("cloudwatch").set_alarm_state(
        AlarmName=f"{web[0]}-status", StateValue="ALARM", StateReason="test"
    )
    wait_for("a fifth answer", lambda: len(remediations(aws)) == 5)
    assert sorted(r["status"] for r in remediations(aws)).count("SKIPPED") == 2
    assert aws.api.delete("/remediations/web-reboot/breaker").json()["breaker"] == {"state": "closed"}


def test_a_group_wide_alarm_acts_on_a_quarter_of_the_group_at_once(
    aws: EmbeddedAws, net: seed.Network
) -> None:
    fleet = seed.fleet(aws, net, "web", 8)
    seed.status_check_alarm(aws, "web-group-status", AutoScalingGroupName="web")
    put_rule(aws, concurrency={"max_resources": 10, "max_percent": 25}, outcome_timeout_minutes=60)
    for instance_id in fleet:
        aws.emulation.ec2.impair(instance_id, "instance", reboot_fixes=False)

    # A group's alarm aggregates its instances' metrics, which the emulation leaves to the test.
    aws.client("cloudwatch").set_alarm_state(
        AlarmName="web-group-status", StateValue="ALARM", StateReason="test"
    )
    wait_for("an answer for each impaired instance", lambda: len(remediations(aws)) == 8)

    runs = remediations(aws)
    started = [r for r in runs if r["status"] == "RUNNING"]
    skipped = [r for r in runs if r["status"] == "SKIPPED"]
    assert (len(started), len(skipped)) == (2, 6)  # 25% of 8
    reasons = {aws.api.get(f"/runs/{r['run_id']}").json()["output"]["summary"] for r in skipped}
    assert all("2 of web's 8 instances already under way" in reason for reason in reasons), reasons
    assert {u["resource"] for u in aws.api.get("/remediations/web-reboot").json()["under_way"]} == {
        r["target"] for r in started
    }
    for run in started:
        aws.api.post(f"/runs/{run['run_id']}/abort")


def test_an_instance_whose_group_another_run_holds_is_left_alone(aws: EmbeddedAws, web: list[str]) -> None:
    put_rule(aws)
    locks = DynamoLockStore(aws.client("dynamodb"), aws.resource_name("LocksTable"))
    assert locks.acquire("asg:web", "asg-refresh-0123456789abcdef01234567", 3600) is None
    instance_id = web[2]
    aws.emulation.ec2.impair(instance_id, "instance")

    [run] = runs_for(aws, instance_id)
    assert run["status"] == "SKIPPED"
    shown = aws.api.get(f"/runs/{run['run_id']}").json()
    assert "held by run asg-refresh-0123456789abcdef01234567" in shown["output"]["summary"]
    assert checks(aws, instance_id) == ("running", "ok", "impaired")
    assert aws.api.get("/remediations/web-reboot").json()["under_way"] == []


def test_a_dry_run_rule_records_what_it_would_do_and_touches_nothing(
    aws: EmbeddedAws, web: list[str]
) -> None:
    put_rule(aws, dry_run=True)
    instance_id = web[3]
    aws.emulation.ec2.impair(instance_id, "instance")

    [run] = runs_for(aws, instance_id)
    assert run["status"] == "DRY_RUN"
    shown = aws.api.get(f"/runs/{run['run_id']}").json()
    assert shown["plan"]["action"] == "reboot"
    assert checks(aws, instance_id) == ("running", "ok", "impaired")


def test_recover_starts_an_ebs_backed_instance_on_new_hardware(aws: EmbeddedAws, web: list[str]) -> None:
    put_rule(aws, trigger={"kind": "status_check", "check": "system"}, action={"kind": "recover"})
    instance_id = web[2]
    seed.status_check_alarm(aws, f"{instance_id}-system", "StatusCheckFailed_System", InstanceId=instance_id)
    aws.emulation.ec2.impair(instance_id, "system")

    [run] = runs_for(aws, instance_id)
    done = aws.wait_for_run(run["run_id"])

    assert done["status"] == "SUCCEEDED", done
    assert (done["output"]["action"], done["output"]["outcome"]) == ("recover", "helped")
    assert checks(aws, instance_id) == ("running", "ok", "ok")
    assert alarm_state(aws, f"{instance_id}-system") == "OK"


def test_recover_refuses_an_instance_with_instance_store_volumes(aws: EmbeddedAws, net: seed.Network) -> None:
    put_rule(aws, action={"kind": "recover"}, scope={"environment": "prod"})
    [instance] = aws.client("ec2").run_instances(
        ImageId=net.base_image_id,
        InstanceType="m5d.large",
        MinCount=1,
        MaxCount=1,
        SubnetId=net.subnet_id,
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [seed.OPT_IN, {"Key": seed.ENVIRONMENT_TAG, "Value": "prod"}],
            }
        ],
    )["Instances"]
    instance_id = instance["InstanceId"]
    seed.status_check_alarm(aws, f"{instance_id}-status", InstanceId=instance_id)
    wait_for("the instance running", lambda: checks(aws, instance_id)[0] == "running")
    aws.emulation.ec2.impair(instance_id, "system")

    [run] = runs_for(aws, instance_id)
    shown = aws.api.get(f"/runs/{run['run_id']}").json()
    assert run["status"] == "SKIPPED", shown
    assert "has instance store volumes, whose data a stop loses" in shown["output"]["summary"]
    assert checks(aws, instance_id) == ("running", "impaired", "ok")


def test_an_instance_that_stops_unasked_is_started_again_and_one_stopped_on_purpose_is_not(
    aws: EmbeddedAws, web: list[str]
) -> None:
    put_rule(aws, trigger={"kind": "instance_stopped"}, action={"kind": "stop_start"})
    crashed, stopped_on_purpose = web[0], web[1]
    # Stopped first: its event is answered (with nothing) long before the crashed instance's run ends.
    aws.client("ec2").stop_instances(InstanceIds=[stopped_on_purpose])
    wait_for("the stop to end", lambda: checks(aws, stopped_on_purpose)[0] == "stopped")
    aws.emulation.ec2.stop_unexpectedly(crashed)

    [run] = runs_for(aws, crashed)
    done = aws.wait_for_run(run["run_id"])

    assert done["status"] == "SUCCEEDED", done
    assert done["output"]["outcome"] == "helped"
    assert "stopped without anyone asking (Server.InternalError)" in done["output"]["cause"]
    assert checks(aws, crashed) == ("running", "ok", "ok")
    assert [r for r in remediations(aws) if stopped_on_purpose in r["target"]] == []


def test_a_service_that_cannot_start_its_tasks_is_redeployed_until_its_deployment_completes(
    aws: EmbeddedAws,
) -> None:
    put_rule(
        aws,
        "worker-redeploy",
        trigger={"kind": "ecs_tasks_stopping", "cluster": "prod"},
        action={"kind": "ecs_redeploy"},
        scope={"environment": "prod"},
    )
    # A dependency the tasks need at start-up is down: ECS says the service cannot start them consistently.
    aws.emulation.ecs.fail_tasks("prod", "worker", reason="Essential container in task exited")
    seed.service(aws, "prod", "worker", desired=2)

    [run] = runs_for(aws, "prod/worker")
    wait_for(
        "the redeploy",
        lambda: any(s["step"] == "act" for s in aws.api.get(f"/runs/{run['run_id']}").json()["steps"]),
    )
    aws.emulation.ecs.stop_failing_tasks("prod", "worker")  # the dependency is back
    done = aws.wait_for_run(run["run_id"])

    assert done["status"] == "SUCCEEDED", done
    assert (done["output"]["action"], done["output"]["outcome"]) == ("ecs_redeploy", "helped")
    assert "SERVICE_TASK_START_IMPAIRED" in done["output"]["cause"]
    assert done["output"]["found"] == "2 of 2 tasks running, deployment COMPLETED"
    [service] = aws.client("ecs").describe_services(cluster="prod", services=["worker"])["services"]
    assert [(d["status"], d["rolloutState"]) for d in service["deployments"]] == [("PRIMARY", "COMPLETED")]


def test_a_runbook_restarts_an_instance_as_the_runbook_role_and_helped(
    aws: EmbeddedAws, web: list[str]
) -> None:
    put_rule(
        aws,
        "web-runbook",
        trigger={"kind": "status_check", "check": "system"},
        action={
            "kind": "runbook",
            "document": "AWS-RestartEC2Instance",
            "parameters": {"InstanceId": ["{{resource}}"]},
        },
    )
    instance_id = web[3]
    seed.status_check_alarm(aws, f"{instance_id}-system", "StatusCheckFailed_System", InstanceId=instance_id)
    aws.emulation.ec2.impair(instance_id, "system")

    [run] = runs_for(aws, instance_id)
    done = aws.wait_for_run(run["run_id"])

    assert done["status"] == "SUCCEEDED", done
    assert (done["output"]["action"], done["output"]["outcome"]) == ("runbook", "helped")
    assert checks(aws, instance_id) == ("running", "ok", "ok")
    [execution] = aws.emulation.ssm.automations()
    assert execution.document_name == "AWS-RestartEC2Instance"
    [role] = execution.parameters["AutomationAssumeRole"]
    assert role == aws.template.arn("RunbookRole")
    assert aws.iam.denials == []
