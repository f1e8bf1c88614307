"""AMI bake end to end: the real API handler, state machine definition and step handlers on the
embedded runtime. Assertions are on the resulting AWS state and on the run record."""

from __future__ import annotations

from typing import Any

import pytest

from opsflow.workflows.ami_bake.image import DEVICE, GROUP, REQUESTED_BY, RUN_ID, SOURCE_INSTANCE
from opsflow_local import EmbeddedAws, seed

from .waiting import notifications_about, wait_until_waiting_for_its_image

ALICE = "arn:aws:iam::123456789012:user/alice"


def bake(aws: EmbeddedAws, **request: Any) -> dict[str, Any]:
    response = aws.api.post("/runs", json={"workflow": "ami_bake", **request}, principal=ALICE)
    assert response.status_code == 202, response.json()
    return aws.wait_for_run(response.json()["run_id"], timeout=60)


def group(aws: EmbeddedAws, name: str) -> dict[str, Any]:
    return dict(
        aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
            "AutoScalingGroups"
        ][0]
    )


def own_images(aws: EmbeddedAws) -> list[dict[str, Any]]:
    return list(aws.client("ec2").describe_images(Owners=["self"])["Images"])


def own_snapshot_ids(aws: EmbeddedAws) -> set[str]:
    return {s["SnapshotId"] for s in aws.client("ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def versions(aws: EmbeddedAws, template_id: str) -> dict[int, dict[str, Any]]:
    listed = aws.client("ec2").describe_launch_template_versions(LaunchTemplateId=template_id)
    return {v["VersionNumber"]: v["LaunchTemplateData"] for v in listed["LaunchTemplateVersions"]}


def test_three_volumes_become_three_tagged_snapshots_and_a_new_template_version(
    aws: EmbeddedAws, net: seed.Network
) -> None:
    instance_id = seed.instance(aws, net, "app-1")
    template_id = seed.launch_template_group(aws, net, "web")

    run = bake(aws, instance_id=instance_id, asg_name="web", tags={"team": "payments"})

    assert run["status"] == "SUCCEEDED", run["error"]
    image_id = run["output"]["image_id"]
    image = aws.client("ec2").describe_images(ImageIds=[image_id])["Images"][0]
    assert image["State"] == "available"
    mappings = {m["DeviceName"]: m["Ebs"] for m in image["BlockDeviceMappings"]}
    assert {d: (e["VolumeSize"], e["VolumeType"], e["Iops"]) for d, e in mappings.items()} == {
        "/dev/xvda": (8, "gp3", 3000),
        "/dev/sdb": (100, "gp3", 4000),
        "/dev/sdc": (50, "io2", 5000),
    }
    snapshots = aws.client("ec2").describe_snapshots(
        SnapshotIds=[e["SnapshotId"] for e in mappings.values()]
    )["Snapshots"]
    assert len(snapshots) == 3
    for snapshot in snapshots:
        tags = {t["Key"]: t["Value"] for t in snapshot["Tags"]}
        assert tags[RUN_ID] == run["run_id"]
        assert tags[SOURCE_INSTANCE] == instance_id
        assert tags[GROUP] == "web"
        assert tags[REQUESTED_BY] == ALICE
        assert tags["team"] == "payments"
        assert mappings[tags[DEVICE]]["SnapshotId"] == snapshot["SnapshotId"]

    data = versions(aws, template_id)
    assert data[2] == {**data[1], "ImageId": image_id}
    assert group(aws, "web")["LaunchTemplate"] == {
        "LaunchTemplateId": template_id,
        "LaunchTemplateName": "web",
        "Version": "2",
    }
    assert [s["step"] for s in run["steps"]] == [
        "guard",
        "create_image",
        "check_image",
        "publish",
        "point_group",
        "prune",
    ]
    assert run["requester"] == {"kind": "iam", "identity": ALICE}


def test_a_legacy_group_gets_a_copied_launch_configuration(aws: EmbeddedAws, net: seed.Network) -> None:
    old_name = seed.launch_configuration_group(aws, net, "legacy")
    run = bake(aws, instance_id=seed.instance(aws, net, "legacy-1"), asg_name="legacy")

    assert run["status"] == "SUCCEEDED", run["error"]
    new_name = group(aws, "legacy")["LaunchConfigurationName"]
    assert new_name != old_name
    described = aws.client("autoscaling").describe_launch_configurations(
        LaunchConfigurationNames=[old_name, new_name]
    )
    old, new = sorted(
        described["LaunchConfigurations"], key=lambda c: c["LaunchConfigurationName"] != old_name
    )
    assert new["ImageId"] == run["output"]["image_id"]
    for attribute in (
        "InstanceType",
        "SecurityGroups",
        "UserData",
        "BlockDeviceMappings",
        "InstanceMonitoring",
    ):
        assert new[attribute] == old[attribute], attribute


@pytest.mark.parametrize("kind", ["launch_template", "launch_configuration"])
def test_a_failed_image_leaves_nothing_behind_and_the_group_unchanged(
    aws: EmbeddedAws, net: seed.Network, kind: str
) -> None:
    if kind == "launch_template":
        template_id = seed.launch_template_group(aws, net, "web")
    else:
        seed.launch_configuration_group(aws, net, "web")
    instance_id = seed.instance(aws, net, "app-1")
    group_before = group(aws, "web")
    snapshots_before = own_snapshot_ids(aws)
    configurations_before = aws.client("autoscaling").describe_launch_configurations()["LaunchConfigurations"]

    aws.emulation.ec2.fail_next_image("Snapshot of /dev/sdc failed: internal error")
    run = bake(aws, instance_id=instance_id, asg_name="web")

    assert run["status"] == "FAILED"
    assert run["error"]["step"] == "check_image"
    assert "Snapshot of /dev/sdc failed" in run["error"]["message"]
    assert run["error"]["group_unchanged"] is True
    assert own_images(aws) == []
    assert own_snapshot_ids(aws) == snapshots_before
    assert group(aws, "web") == group_before
    assert (
        aws.client("autoscaling").describe_launch_configurations()["LaunchConfigurations"]
        == configurations_before
    )
    if kind == "launch_template":
        assert set(versions(aws, template_id)) == {1}
    execution = aws.client("stepfunctions").describe_execution(executionArn=run["execution_arn"])
    assert execution["status"] == "FAILED"


def test_a_failure_after_publishing_removes_the_new_version_and_image(
    aws: EmbeddedAws, net: seed.Network
) -> None:
    template_id = seed.launch_template_group(aws, net, "web")
    instance_id = seed.instance(aws, net, "app-1")
    group_before = group(aws, "web")

    aws.faults.fail_call(
        "autoscaling",
        "UpdateAutoScalingGroup",
        "AccessDenied",
        "User is not authorized to perform: autoscaling:UpdateAutoScalingGroup",
        status=403,
        caller=aws.resource_name("AmiBakeStepsFunction"),
    )
    run = bake(aws, instance_id=instance_id, asg_name="web")

    assert run["status"] == "FAILED"
    assert run["error"]["step"] == "point_group"
    assert "AccessDenied" in run["error"]["message"]
    assert any("launch template" in undone for undone in run["error"]["rollback"]["undone"])
    assert set(versions(aws, template_id)) == {1}
    assert own_images(aws) == []
    assert group(aws, "web") == group_before


def test_a_bake_of_nothing_is_a_4xx_naming_what_to_give(aws: EmbeddedAws) -> None:
    response = aws.api.post("/runs", json={"workflow": "ami_bake", "asg_name": "web"}, principal=ALICE)
    assert response.status_code == 400
    assert response.json()["problems"] == [
        {"field": "(body)", "problem": "give exactly one of instance_id (an instance to image) or builder"}
    ]
    assert "instance_id" in response.json()["message"]


def test_an_instance_without_the_opt_in_tag_is_refused_and_nothing_is_created(
    aws: EmbeddedAws, net: seed.Network
) -> None:
    template_id = seed.launch_template_group(aws, net, "web")
    instance_id = seed.instance(aws, net, "not-mine", opted_in=False)
    response = aws.api.post(
        "/runs", json={"workflow": "ami_bake", "instance_id": instance_id, "asg_name": "web"}, principal=ALICE
    )
    assert response.status_code == 403
    assert "opsflow:managed=true" in response.json()["message"]
    assert own_images(aws) == []
    assert set(versions(aws, template_id)) == {1}
    machine = aws.state_machine_arn("AmiBakeStateMachine")
    assert aws.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"] == []
    assert aws.client("dynamodb").scan(TableName=aws.resource_name("RunsTable"))["Count"] == 0


def test_a_group_without_the_opt_in_tag_is_refused(aws: EmbeddedAws, net: seed.Network) -> None:
    seed.launch_template_group(aws, net, "web", opted_in=False)
    response = aws.api.post(
        "/runs",
        json={"workflow": "ami_bake", "instance_id": seed.instance(aws, net, "app-1"), "asg_name": "web"},
        principal=ALICE,
    )
    assert response.status_code == 403
    assert "Auto Scaling group web" in response.json()["message"]


def test_dry_run_returns_the_plan_and_changes_nothing(aws: EmbeddedAws, net: seed.Network) -> None:
    template_id = seed.launch_template_group(aws, net, "web")
    response = aws.api.post(
        "/runs",
        json={
            "workflow": "ami_bake",
            "instance_id": seed.instance(aws, net, "app-1"),
            "asg_name": "web",
            "dry_run": True,
        },
        principal=ALICE,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "DRY_RUN"
    assert any("launch template web" in action for action in body["plan"]["actions"])
    assert own_images(aws) == []
    assert set(versions(aws, template_id)) == {1}
    assert aws.api.get(f"/runs/{body['run_id']}").json()["status"] == "DRY_RUN"


def test_the_same_idempotency_key_returns_the_same_run(aws: EmbeddedAws, net: seed.Network) -> None:
    seed.launch_template_group(aws, net, "web")
    request = {"workflow": "ami_bake", "instance_id": seed.instance(aws, net, "app-1"), "asg_name": "web"}
    first = aws.api.post("/runs", json=request, principal=ALICE, headers={"Idempotency-Key": "release-7"})
    again = aws.api.post("/runs", json=request, principal=ALICE, headers={"Idempotency-Key": "release-7"})
    assert first.status_code == again.status_code == 202
    assert first.json()["run_id"] == again.json()["run_id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    aws.wait_for_run(first.json()["run_id"])
    machine = aws.state_machine_arn("AmiBakeStateMachine")
    assert len(aws.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"]) == 1
    assert len(own_images(aws)) == 1


def test_a_second_bake_of_a_busy_group_is_refused(aws: EmbeddedAws, net: seed.Network) -> None:
    seed.launch_template_group(aws, net, "web")
    instance_id = seed.instance(aws, net, "app-1")
    aws.emulation.ec2.image_pending_seconds = 600
    first = aws.api.post(
        "/runs", json={"workflow": "ami_bake", "instance_id": instance_id, "asg_name": "web"}
    )
    second = aws.api.post(
        "/runs",
        json={"workflow": "ami_bake", "instance_id": instance_id, "asg_name": "web", "keep_images": 2},
    )
    assert second.status_code == 409
    assert first.json()["run_id"] in second.json()["message"]


def test_old_images_beyond_keep_images_are_pruned_unless_in_use(aws: EmbeddedAws, net: seed.Network) -> None:
    seed.launch_template_group(aws, net, "web")
    instance_id = seed.instance(aws, net, "app-1")
    first = bake(aws, instance_id=instance_id, asg_name="web", keep_images=1)
    first_snapshots = {s["snapshot_id"] for s in first["output"]["snapshots"]}
    second = bake(
        aws, instance_id=instance_id, asg_name="web", keep_images=1, image_name="web-second-{timestamp}"
    )

    assert second["status"] == "SUCCEEDED", second["error"]
    remaining = {image["ImageId"] for image in own_images(aws)}
    assert remaining == {second["output"]["image_id"]}
    assert second["output"]["pruned"]["deregistered"][0]["image_id"] == first["output"]["image_id"]
    assert not first_snapshots & own_snapshot_ids(aws)


def test_an_unknown_run_is_404_and_an_unknown_route_is_api_gateways_403(aws: EmbeddedAws) -> None:
    assert aws.api.get("/runs/ami-bake-000").status_code == 404
    assert aws.api.get("/nowhere").status_code == 403


def test_template_snapshots_are_kept_only_for_devices_the_image_lacks(
    aws: EmbeddedAws, net: seed.Network
) -> None:
    ec2 = aws.client("ec2")
    volume_id = ec2.create_volume(Size=20, AvailabilityZone="us-east-1a")["VolumeId"]
    snapshot_id = ec2.create_snapshot(VolumeId=volume_id)["SnapshotId"]
    template_id = seed.launch_template_group(aws, net, "web")
    ec2.create_launch_template_version(
        LaunchTemplateId=template_id,
        SourceVersion="1",
        LaunchTemplateData={
            "BlockDeviceMappings": [
                {"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": snapshot_id}},
                {"DeviceName": "/dev/sdb", "Ebs": {"SnapshotId": snapshot_id, "VolumeSize": 200}},
            ]
        },
    )
    aws.client("autoscaling").update_auto_scaling_group(
        AutoScalingGroupName="web", LaunchTemplate={"LaunchTemplateId": template_id, "Version": "2"}
    )
    run = bake(aws, instance_id=seed.instance(aws, net, "app-1"), asg_name="web")
    assert run["status"] == "SUCCEEDED", run["error"]
    data = versions(aws, template_id)
    mappings = {m["DeviceName"]: m["Ebs"] for m in data[3]["BlockDeviceMappings"]}
    # A device only the template provides keeps its snapshot; for a device the new image has, the
    # image's freshly baked snapshot applies and the template's other settings stay.
    assert mappings["/dev/sdf"] == {"SnapshotId": snapshot_id}
    assert mappings["/dev/sdb"] == {"VolumeSize": 200}
    assert {k: v for k, v in data[3].items() if k != "BlockDeviceMappings"} == {
        **{k: v for k, v in data[2].items() if k != "BlockDeviceMappings"},
        "ImageId": run["output"]["image_id"],
    }


def test_an_old_image_another_group_uses_is_not_pruned(aws: EmbeddedAws, net: seed.Network) -> None:
    seed.launch_template_group(aws, net, "web")
    instance_id = seed.instance(aws, net, "app-1")
    first = bake(aws, instance_id=instance_id, asg_name="web", keep_images=1)
    first_image = first["output"]["image_id"]
    other_template = aws.client("ec2").create_launch_template(
        LaunchTemplateName="reports", LaunchTemplateData={"ImageId": first_image, "InstanceType": "t3.micro"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    aws.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="reports",
        LaunchTemplate={"LaunchTemplateId": other_template, "Version": "1"},
        MinSize=0,
        MaxSize=1,
        VPCZoneIdentifier=net.subnet_id,
    )
    second = bake(
        aws, instance_id=instance_id, asg_name="web", keep_images=1, image_name="web-second-{timestamp}"
    )

    assert second["status"] == "SUCCEEDED", second["error"]
    assert second["output"]["pruned"]["kept_in_use"] == [first_image]
    assert second["output"]["pruned"]["deregistered"] == []
    assert {image["ImageId"] for image in own_images(aws)} == {first_image, second["output"]["image_id"]}


def test_an_aborted_run_frees_the_group_at_once(aws: EmbeddedAws, net: seed.Network) -> None:
    seed.launch_template_group(aws, net, "web")
    request = {"workflow": "ami_bake", "instance_id": seed.instance(aws, net, "app-1"), "asg_name": "web"}
    aws.emulation.ec2.image_pending_seconds = 3600
    first = aws.api.post("/runs", json=request, principal=ALICE).json()
    wait_until_waiting_for_its_image(aws, first["run_id"])
    aws.client("stepfunctions").stop_execution(
        executionArn=first["execution_arn"], cause="operator stopped it"
    )
    run = aws.wait_for_run(first["run_id"])
    assert any("aborted" in n.text.lower() for n in notifications_about(aws, first["run_id"])), [
        n.text for n in aws.notifications
    ]

    assert aws.api.get(f"/runs/{first['run_id']}").json()["status"] == "ABORTED"
    assert run["status"] == "ABORTED"
    again = aws.api.post("/runs", json={**request, "keep_images": 4}, principal=ALICE)
    assert again.status_code == 202, again.json()
