"""ASG refresh end to end, alone and chained after an AMI bake, on the embedded runtime with the
instance refresh emulation."""

from __future__ import annotations

import time
from typing import Any

from opsflow_local import EmbeddedAws, seed

ALICE = "arn:aws:iam::123456789012:user/alice"
QUICK = {"instance_warmup": 30}


def start(aws: EmbeddedAws, request: dict[str, Any]) -> str:
    response = aws.api.post("/runs", json=request, principal=ALICE)
    assert response.status_code == 202, response.json()
    return str(response.json()["run_id"])


def four_instance_group(aws: EmbeddedAws, net: seed.Network) -> str:
    template_id = seed.launch_template_group(aws, net, "web", capacity=4)
    return template_id


def instance_images(aws: EmbeddedAws, group_name: str = "web") -> list[str]:
    group = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])[
        "AutoScalingGroups"
    ][0]
    ids = [i["InstanceId"] for i in group["Instances"]]
    reservations = aws.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    return sorted(i["ImageId"] for r in reservations for i in r["Instances"])


def default_version(aws: EmbeddedAws, template_id: str) -> int:
    return int(
        aws.client("ec2").describe_launch_templates(LaunchTemplateIds=[template_id])["LaunchTemplates"][0][
            "DefaultVersionNumber"
        ]
    )


def test_bake_with_refresh_rolls_all_four_instances_onto_the_new_image(
    aws: EmbeddedAws, net: seed.Network
) -> None:
    template_id = four_instance_group(aws, net)
    old_image = instance_images(aws)[0]
    run_id = start(
        aws,
        {
            "workflow": "ami_bake",
            "instance_id": seed.instance(aws, net, "app-1"),
            "asg_name": "web",
            "refresh": {**QUICK, "checkpoints": {"percentages": [50, 100], "delay_seconds": 60}},
        },
    )
    run = aws.wait_for_run(run_id, timeout=120)

    assert run["status"] == "SUCCEEDED", run["error"]
    new_image = run["output"]["image_id"]
    assert new_image != old_image
    assert instance_images(aws) == [new_image] * 4
    assert default_version(aws, template_id) == 2
    group = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["web"])[
        "AutoScalingGroups"
    ][0]
    assert group["LaunchTemplate"]["Version"] == "2"
    milestones = [s["summary"] for s in run["steps"] if s["status"] == "milestone"]
    assert [m for m in milestones if m.startswith("checkpoint")] == [
        "checkpoint 50% reached: 50% of instances replaced",
        "checkpoint 100% reached: 100% of instances replaced",
    ]
    assert run["output"]["refresh"]["checkpoints_reached"] == [50, 100]
    assert run["output"]["refresh"]["default_version"] == 2


def test_an_alarm_mid_refresh_rolls_back_and_the_bake_fails_naming_it(
    aws: EmbeddedAws, net: seed.Network
) -> None:
    template_id = four_instance_group(aws, net)
    old_images = instance_images(aws)
    seed.alarm(aws, "web-5xx")
    run_id = start(
        aws,
        {
            "workflow": "ami_bake",
            "instance_id": seed.instance(aws, net, "app-1"),
            "asg_name": "web",
            "refresh": {"instance_warmup": 200, "alarms": ["web-5xx"]},
        },
    )
    autoscaling = aws.client("autoscaling")
    deadline = time.monotonic() + 60
    while True:
        refreshes = autoscaling.describe_instance_refreshes(AutoScalingGroupName="web")["InstanceRefreshes"]
        if refreshes and refreshes[0]["PercentageComplete"] >= 25:
            break
        assert time.monotonic() < deadline, "the refresh never got going"
        time.sleep(0.02)
    aws.client("cloudwatch").set_alarm_state(AlarmName="web-5xx", StateValue="ALARM", StateReason="5xx burst")
    run = aws.wait_for_run(run_id, timeout=120)

    assert run["status"] == "FAILED"
    assert run["error"]["step"] == "check_refresh"
    assert "web-5xx" in run["error"]["message"]
    assert "RollbackSuccessful" in run["error"]["message"]
    assert instance_images(aws) == old_images
    assert default_version(aws, template_id) == 1
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]
    assert group["LaunchTemplate"]["Version"] == "1"
    versions = aws.client("ec2").describe_launch_template_versions(LaunchTemplateId=template_id)[
        "LaunchTemplateVersions"
    ]
    assert [v["VersionNumber"] for v in versions] == [1]
    assert aws.client("ec2").describe_images(Owners=["self"])["Images"] == []


def test_a_group_on_latest_is_refused_before_anything_changes(aws: EmbeddedAws, net: seed.Network) -> None:
    template_id = four_instance_group(aws, net)
    autoscaling = aws.client("autoscaling")
    autoscaling.update_auto_scaling_group(
        AutoScalingGroupName="web", LaunchTemplate={"LaunchTemplateId": template_id, "Version": "$Latest"}
    )
    for request in (
        {"workflow": "asg_refresh", "asg_name": "web"},
        {
            "workflow": "ami_bake",
            "instance_id": seed.instance(aws, net, "app-1"),
            "asg_name": "web",
            "refresh": {},
        },
    ):
        response = aws.api.post("/runs", json=request, principal=ALICE)
        assert response.status_code == 422, response.json()
        message = response.json()["message"]
        assert "$Latest" in message
        assert "Pin the group to a version number" in message
        assert "auto_rollback" in message
    assert autoscaling.describe_instance_refreshes(AutoScalingGroupName="web")["InstanceRefreshes"] == []
    assert aws.client("ec2").describe_images(Owners=["self"])["Images"] == []


def test_a_second_refresh_while_one_runs_is_refused(aws: EmbeddedAws, net: seed.Network) -> None:
    template_id = four_instance_group(aws, net)
    autoscaling = aws.client("autoscaling")
    autoscaling.start_instance_refresh(
        AutoScalingGroupName="web",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateId": template_id, "Version": "1"}},
        Preferences={"InstanceWarmup": 3000},
    )
    response = aws.api.post("/runs", json={"workflow": "asg_refresh", "asg_name": "web"}, principal=ALICE)
    assert response.status_code == 409
    assert "cancel-instance-refresh" in response.json()["message"]
    assert len(autoscaling.describe_instance_refreshes(AutoScalingGroupName="web")["InstanceRefreshes"]) == 1


def test_a_refresh_run_holds_the_group_against_a_second_run(aws: EmbeddedAws, net: seed.Network) -> None:
    four_instance_group(aws, net)
    first = start(aws, {"workflow": "asg_refresh", "asg_name": "web", "instance_warmup": 3000})
    second = aws.api.post("/runs", json={"workflow": "asg_refresh", "asg_name": "web"}, principal=ALICE)
    assert second.status_code == 409
    assert first in second.json()["message"]


def test_refresh_alone_onto_a_chosen_version(aws: EmbeddedAws, net: seed.Network) -> None:
    template_id = four_instance_group(aws, net)
    ec2 = aws.client("ec2")
    new_image = seed.base_image_id(aws)
    other = next(
        i["ImageId"]
        for i in ec2.describe_images(
            Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-2023*-x86_64"]}]
        )["Images"]
        if i["ImageId"] != new_image
    )
    ec2.create_launch_template_version(
        LaunchTemplateId=template_id, SourceVersion="1", LaunchTemplateData={"ImageId": other}
    )
    run = aws.wait_for_run(
        start(aws, {"workflow": "asg_refresh", "asg_name": "web", "launch_template_version": 2, **QUICK}),
        timeout=120,
    )
    assert run["status"] == "SUCCEEDED", run["error"]
    assert instance_images(aws) == [other] * 4
    assert default_version(aws, template_id) == 2
    assert "version 2" in run["output"]["group_now"]


def test_a_bake_failing_mid_refresh_rolls_it_back_waits_then_cleans_up(
    aws: EmbeddedAws, net: seed.Network
) -> None:
    template_id = four_instance_group(aws, net)
    old_images = instance_images(aws)
    # Once a quarter of the group is replaced, the progress check fails (a throttle or a 500 would be
    # retried instead). The refresh pauses at that quarter for an hour, so the rollback finds it running
    # however slowly the run gets there; one that had already succeeded is left alone (tested below).
    broken = aws.faults.fail_invocation(
        aws.resource_name("AmiBakeStepsFunction"),
        "the progress check broke (injected)",
        when=lambda event: (
            event.get("step") == "check_refresh" and aws.emulation.autoscaling.percentage_done("web") >= 25
        ),
    )
    run = aws.wait_for_run(
        start(
            aws,
            {
                "workflow": "ami_bake",
                "instance_id": seed.instance(aws, net, "app-1"),
                "asg_name": "web",
                "refresh": {
                    "instance_warmup": 100,
                    "checkpoints": {"percentages": [25, 100], "delay_seconds": 3600},
                },
            },
        ),
        timeout=120,
    )

    assert broken.done
    assert run["status"] == "FAILED"
    # The invocation failed before the step ran, so the record names the step by the one that ran before.
    assert run["error"]["step"] == "unknown (after check_refresh)"
    assert "the progress check broke (injected)" in run["error"]["message"]
    undone = run["error"]["rollback"]["undone"]
    assert any(u.startswith("rolled back instance refresh") for u in undone)
    assert any("launch template" in u for u in undone)
    assert run["error"]["rollback"]["problems"] == []
    assert any(s["step"] == "rollback" and s["attempts"] > 1 for s in run["steps"])  # it waited for AWS
    refreshes = aws.client("autoscaling").describe_instance_refreshes(AutoScalingGroupName="web")[
        "InstanceRefreshes"
    ]
    assert refreshes[0]["Status"] == "RollbackSuccessful"
    assert instance_images(aws) == old_images
    assert [
        v["VersionNumber"]
        for v in aws.client("ec2").describe_launch_template_versions(LaunchTemplateId=template_id)[
            "LaunchTemplateVersions"
        ]
    ] == [1]
    assert aws.client("ec2").describe_images(Owners=["self"])["Images"] == []


def test_a_bake_failing_after_its_refresh_succeeded_keeps_the_new_image_and_says_so(
    aws: EmbeddedAws, net: seed.Network
) -> None:
    template_id = four_instance_group(aws, net)
    broken = aws.faults.fail_invocation(
        aws.resource_name("AmiBakeStepsFunction"),
        "making the new version the default broke (injected)",
        when=lambda event: event.get("step") == "make_default",
    )
    run = aws.wait_for_run(
        start(
            aws,
            {
                "workflow": "ami_bake",
                "instance_id": seed.instance(aws, net, "app-1"),
                "asg_name": "web",
                "refresh": QUICK,
            },
        ),
        timeout=120,
    )

    assert broken.done
    assert run["status"] == "FAILED"
    rollback = run["error"]["rollback"]
    # Every instance already runs the new image: deleting it or its launch template version would break
    # the group, not restore it.
    assert rollback["undone"] == []
    [problem] = rollback["problems"]
    assert "had already succeeded, so group web keeps the new image" in problem
    new_images = aws.client("ec2").describe_images(Owners=["self"])["Images"]
    assert [image["ImageId"] for image in new_images] == [instance_images(aws)[0]]
    assert set(instance_images(aws)) == {new_images[0]["ImageId"]}
    # The group still points at the new version; making it the launch template's default is left to a person.
    group = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["web"])[
        "AutoScalingGroups"
    ][0]
    assert group["LaunchTemplate"]["Version"] == "2"
    assert default_version(aws, template_id) == 1
