"""The EC2 emulation against the EC2 API reference (CreateImage, RunInstances' EbsBlockDevice,
CreateLaunchTemplateVersion, DeleteLaunchTemplateVersions) and the EC2 User Guide."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from opsflow_local.emulation.ec2 import Ec2Emulation

pytestmark = pytest.mark.usefixtures("ec2_emulation")

THREE_VOLUMES = [
    {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8, "VolumeType": "gp3", "DeleteOnTermination": True}},
    {
        "DeviceName": "/dev/sdb",
        "Ebs": {"VolumeSize": 100, "VolumeType": "gp3", "Iops": 4000, "Throughput": 250},
    },
    {"DeviceName": "/dev/sdc", "Ebs": {"VolumeSize": 50, "VolumeType": "io2", "Iops": 5000}},
]


def ec2() -> Any:
    return boto3.client("ec2", region_name="us-east-1")


def launch(mappings: list[dict[str, Any]] = THREE_VOLUMES) -> str:
    client = ec2()
    image_id = client.describe_images(
        Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-2023*-x86_64"]}]
    )["Images"][0]["ImageId"]
    return client.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, BlockDeviceMappings=mappings)[
        "Instances"
    ][0]["InstanceId"]


def wait_until_not_pending(image_id: str) -> dict[str, Any]:
    for _ in range(2000):  # ten seconds at most, for a busy machine
        image = ec2().describe_images(ImageIds=[image_id])["Images"][0]
        if image["State"] != "pending":
            return dict(image)
        time.sleep(0.005)
    raise AssertionError("image stayed pending")


def by_device(image: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["DeviceName"]: m for m in image["BlockDeviceMappings"]}


def test_run_instances_keeps_provisioned_iops_and_throughput() -> None:
    """EbsBlockDevice: Iops is required for io1/io2 and kept for gp3, Throughput for gp3."""
    instance_id = launch()
    volumes = {
        v["Attachments"][0]["Device"]: v
        for v in ec2().describe_volumes(
            Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
        )["Volumes"]
    }
    assert (volumes["/dev/sdb"]["Iops"], volumes["/dev/sdb"]["Throughput"]) == (4000, 250)
    assert (volumes["/dev/sdc"]["VolumeType"], volumes["/dev/sdc"]["Iops"]) == ("io2", 5000)


def test_create_image_snapshots_every_volume_and_keeps_its_attributes() -> None:
    """CreateImage: the AMI has a snapshot of each EBS volume attached to the instance, and its block
    device mappings describe each volume (size, type, IOPS, throughput, encryption, DeleteOnTermination)."""
    instance_id = launch()
    image_id = ec2().create_image(InstanceId=instance_id, Name="three-volumes")["ImageId"]
    image = wait_until_not_pending(image_id)
    mappings = by_device(image)
    assert set(mappings) == {"/dev/xvda", "/dev/sdb", "/dev/sdc"}
    assert {d: (m["Ebs"]["VolumeSize"], m["Ebs"]["VolumeType"]) for d, m in mappings.items()} == {
        "/dev/xvda": (8, "gp3"),
        "/dev/sdb": (100, "gp3"),
        "/dev/sdc": (50, "io2"),
    }
    assert mappings["/dev/sdb"]["Ebs"]["Iops"] == 4000
    assert mappings["/dev/sdb"]["Ebs"]["Throughput"] == 250
    assert mappings["/dev/xvda"]["Ebs"]["Iops"] == 3000  # gp3's documented baseline
    assert mappings["/dev/sdc"]["Ebs"]["Iops"] == 5000
    assert mappings["/dev/xvda"]["Ebs"]["DeleteOnTermination"] is True
    assert mappings["/dev/sdc"]["Ebs"]["DeleteOnTermination"] is False
    snapshot_ids = {m["Ebs"]["SnapshotId"] for m in mappings.values()}
    assert len(snapshot_ids) == 3
    snapshots = ec2().describe_snapshots(SnapshotIds=sorted(snapshot_ids))["Snapshots"]
    assert sorted(s["VolumeSize"] for s in snapshots) == [8, 50, 100]
    assert all(s["State"] == "completed" for s in snapshots)


def test_create_image_is_pending_then_available(ec2_emulation: Ec2Emulation) -> None:
    """CreateImage: the new AMI is `pending` until its snapshots complete, then `available`."""
    ec2_emulation.image_pending_seconds = 3000  # 3 s: long enough to observe on a busy machine
    image_id = ec2().create_image(InstanceId=launch(), Name="slow")["ImageId"]
    assert ec2().describe_images(ImageIds=[image_id])["Images"][0]["State"] == "pending"
    assert wait_until_not_pending(image_id)["State"] == "available"


def test_a_failed_image_ends_failed_with_a_state_reason(ec2_emulation: Ec2Emulation) -> None:
    """DescribeImages: State `failed` with StateReason {Code, Message}."""
    ec2_emulation.fail_next_image("Snapshot creation failed")
    image = wait_until_not_pending(ec2().create_image(InstanceId=launch(), Name="doomed")["ImageId"])
    assert image["State"] == "failed"
    assert image["StateReason"]["Message"] == "Snapshot creation failed"
    assert ec2().create_image(InstanceId=launch(), Name="fine")["ImageId"]  # only the next one fails


def test_tag_specifications_tag_the_image_and_every_snapshot() -> None:
    """CreateImage TagSpecifications: ResourceType `image` tags the AMI, `snapshot` tags all its snapshots."""
    image_id = ec2().create_image(
        InstanceId=launch(),
        Name="tagged",
        TagSpecifications=[
            {"ResourceType": "image", "Tags": [{"Key": "team", "Value": "web"}]},
            {"ResourceType": "snapshot", "Tags": [{"Key": "run", "Value": "r1"}]},
        ],
    )["ImageId"]
    image = wait_until_not_pending(image_id)
    assert {"Key": "team", "Value": "web"} in image["Tags"]
    snapshots = ec2().describe_snapshots(Filters=[{"Name": "tag:run", "Values": ["r1"]}])["Snapshots"]
    assert len(snapshots) == 3


def test_block_device_mappings_exclude_add_and_change_delete_on_termination() -> None:
    """CreateImage BlockDeviceMappings: NoDevice leaves a volume out, a new device may be added, and
    DeleteOnTermination is the only option that can be changed for an existing mapping."""
    image_id = ec2().create_image(
        InstanceId=launch(),
        Name="overrides",
        BlockDeviceMappings=[
            {"DeviceName": "/dev/sdb", "NoDevice": ""},
            {"DeviceName": "/dev/sdc", "Ebs": {"DeleteOnTermination": True}},
            {"DeviceName": "/dev/sdd", "Ebs": {"VolumeSize": 20, "VolumeType": "gp3"}},
        ],
    )["ImageId"]
    mappings = by_device(wait_until_not_pending(image_id))
    assert set(mappings) == {"/dev/xvda", "/dev/sdc", "/dev/sdd"}
    assert mappings["/dev/sdc"]["Ebs"]["DeleteOnTermination"] is True
    assert "SnapshotId" not in mappings["/dev/sdd"]["Ebs"]
    assert mappings["/dev/sdd"]["Ebs"]["VolumeSize"] == 20


def test_changing_the_size_of_an_existing_volume_is_refused() -> None:
    """CreateImage BlockDeviceMappings: "You can't change the volume size using the VolumeSize parameter"."""
    with pytest.raises(ClientError) as caught:
        ec2().create_image(
            InstanceId=launch(),
            Name="bigger",
            BlockDeviceMappings=[{"DeviceName": "/dev/sdb", "Ebs": {"VolumeSize": 200}}],
        )
    assert caught.value.response["Error"]["Code"] == "InvalidBlockDeviceMapping"


def test_image_names_are_unique_per_account() -> None:
    """CreateImage: InvalidAMIName.Duplicate when the name is in use by an AMI of this account."""
    instance_id = launch()
    ec2().create_image(InstanceId=instance_id, Name="same")
    with pytest.raises(ClientError) as caught:
        ec2().create_image(InstanceId=instance_id, Name="same")
    assert caught.value.response["Error"]["Code"] == "InvalidAMIName.Duplicate"


def test_snapshots_of_a_registered_image_cannot_be_deleted_until_it_is_deregistered() -> None:
    """DeleteSnapshot: a snapshot used by a registered AMI is InvalidSnapshot.InUse."""
    image_id = ec2().create_image(InstanceId=launch(), Name="in-use")["ImageId"]
    snapshot_id = by_device(wait_until_not_pending(image_id))["/dev/sdb"]["Ebs"]["SnapshotId"]
    with pytest.raises(ClientError) as caught:
        ec2().delete_snapshot(SnapshotId=snapshot_id)
    assert caught.value.response["Error"]["Code"] == "InvalidSnapshot.InUse"
    ec2().deregister_image(ImageId=image_id)
    ec2().delete_snapshot(SnapshotId=snapshot_id)


def template(data: dict[str, Any]) -> str:
    return ec2().create_launch_template(LaunchTemplateName="web", LaunchTemplateData=data)["LaunchTemplate"][
        "LaunchTemplateId"
    ]


def version_data(template_id: str, version: str) -> dict[str, Any]:
    return dict(
        ec2().describe_launch_template_versions(LaunchTemplateId=template_id, Versions=[version])[
            "LaunchTemplateVersions"
        ][0]["LaunchTemplateData"]
    )


def test_source_version_is_copied_and_overridden_key_by_key() -> None:
    """CreateLaunchTemplateVersion SourceVersion: the new version takes the source's launch template data;
    the data in the request overrides it, and what it does not name is inherited."""
    source = {"ImageId": "ami-11111111", "InstanceType": "m5.large", "UserData": "ZWNobw==", "KeyName": "ops"}
    template_id = template(source)
    created = ec2().create_launch_template_version(
        LaunchTemplateId=template_id, SourceVersion="1", LaunchTemplateData={"ImageId": "ami-22222222"}
    )["LaunchTemplateVersion"]
    assert created["VersionNumber"] == 2
    assert version_data(template_id, "2") == {**source, "ImageId": "ami-22222222"}
    plain = ec2().create_launch_template_version(
        LaunchTemplateId=template_id, LaunchTemplateData={"ImageId": "ami-33333333"}
    )["LaunchTemplateVersion"]
    assert version_data(template_id, str(plain["VersionNumber"])) == {"ImageId": "ami-33333333"}


def test_delete_versions_never_the_default_and_numbers_are_not_reused() -> None:
    """DeleteLaunchTemplateVersions: the default version cannot be deleted; deleted version numbers are
    not reused by later versions."""
    template_id = template({"ImageId": "ami-11111111"})
    ec2().create_launch_template_version(
        LaunchTemplateId=template_id, LaunchTemplateData={"ImageId": "ami-2"}
    )
    response = ec2().delete_launch_template_versions(LaunchTemplateId=template_id, Versions=["2", "1", "9"])
    assert [v["VersionNumber"] for v in response["SuccessfullyDeletedLaunchTemplateVersions"]] == [2]
    failed = {
        v["VersionNumber"]: v["ResponseError"]["Code"]
        for v in response["UnsuccessfullyDeletedLaunchTemplateVersions"]
    }
    assert failed[9] == "launchTemplateVersionDoesNotExist"
    assert 1 in failed
    with pytest.raises(ClientError) as caught:
        version_data(template_id, "2")
    assert caught.value.response["Error"]["Code"] == "InvalidLaunchTemplateId.VersionNotFound"
    again = ec2().create_launch_template_version(
        LaunchTemplateId=template_id, LaunchTemplateData={"ImageId": "ami-3"}
    )
    assert again["LaunchTemplateVersion"]["VersionNumber"] == 3
    assert version_data(template_id, "$Latest")["ImageId"] == "ami-3"
    assert version_data(template_id, "$Default")["ImageId"] == "ami-11111111"


def test_source_version_snapshots_are_dropped_unless_passed_again() -> None:
    """CreateLaunchTemplateVersion SourceVersion: "Snapshots applied to the block device mapping are ignored
    when creating a new version unless they are explicitly included"."""
    client = ec2()
    volume_id = client.create_volume(Size=10, AvailabilityZone="us-east-1a")["VolumeId"]
    snapshot_id = client.create_snapshot(VolumeId=volume_id)["SnapshotId"]
    mappings = [{"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": snapshot_id, "VolumeSize": 10}}]
    template_id = template({"ImageId": "ami-11111111", "BlockDeviceMappings": mappings})
    client.create_launch_template_version(
        LaunchTemplateId=template_id, SourceVersion="1", LaunchTemplateData={"ImageId": "ami-2"}
    )
    client.create_launch_template_version(
        LaunchTemplateId=template_id,
        SourceVersion="1",
        LaunchTemplateData={"ImageId": "ami-3", "BlockDeviceMappings": mappings},
    )
    assert "SnapshotId" not in version_data(template_id, "2")["BlockDeviceMappings"][0]["Ebs"]
    assert version_data(template_id, "3")["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] == snapshot_id


# StopInstances / StartInstances ------------------------------------------------------------------


def launch_plain(count: int) -> list[str]:
    """`count` instances without extra volumes, from an image of moto's default catalogue."""
    instances = ec2().run_instances(ImageId="ami-12c6146b", MinCount=count, MaxCount=count)["Instances"]
    return [i["InstanceId"] for i in instances]


def states(instance_ids: list[str]) -> dict[str, tuple[int, str]]:
    reservations = ec2().describe_instances(InstanceIds=instance_ids)["Reservations"]
    return {
        i["InstanceId"]: (i["State"]["Code"], i["State"]["Name"])
        for r in reservations
        for i in r["Instances"]
    }


def wait_for_state(instance_ids: list[str], name: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while {state for _, state in states(instance_ids).values()} != {name}:
        assert time.monotonic() < deadline, states(instance_ids)
        time.sleep(0.005)


def change(answer: list[dict[str, Any]]) -> dict[str, tuple[tuple[int, str], tuple[int, str]]]:
    """InstanceStateChange list -> {id: ((current code, name), (previous code, name))}."""
    return {
        c["InstanceId"]: (
            (c["CurrentState"]["Code"], c["CurrentState"]["Name"]),
            (c["PreviousState"]["Code"], c["PreviousState"]["Name"]),
        )
        for c in answer
    }


def test_run_instances_are_running_at_once() -> None:
    """Unchanged by the stop/start emulation: RunInstances' instances are `running` when described."""
    assert set(states(launch_plain(2)).values()) == {(16, "running")}


def test_stop_instances_goes_stopping_then_stopped(ec2_emulation: Ec2Emulation) -> None:
    """StopInstances: each instance is `stopping` (64), then `stopped` (80); the response reports
    CurrentState `stopping` and PreviousState `running` for each, and the state filter sees them."""
    ec2_emulation.instance_stop_seconds = 2000  # 2 s: observable on a busy machine
    ids = launch_plain(3)
    answer = change(ec2().stop_instances(InstanceIds=ids)["StoppingInstances"])
    assert answer == dict.fromkeys(ids, ((64, "stopping"), (16, "running")))
    assert set(states(ids).values()) == {(64, "stopping")}
    filtered = ec2().describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["stopping"]}])
    assert sorted(i["InstanceId"] for r in filtered["Reservations"] for i in r["Instances"]) == sorted(ids)
    wait_for_state(ids, "stopped")
    assert set(states(ids).values()) == {(80, "stopped")}


def test_start_instances_goes_pending_then_running(ec2_emulation: Ec2Emulation) -> None:
    """StartInstances: each stopped instance is `pending` (0), then `running` (16); the response reports
    CurrentState `pending` and PreviousState `stopped`."""
    ids = launch_plain(2)
    ec2().stop_instances(InstanceIds=ids)
    wait_for_state(ids, "stopped")
    ec2_emulation.instance_start_seconds = 4000  # 4 s: room for a loaded machine between start and describe
    answer = change(ec2().start_instances(InstanceIds=ids)["StartingInstances"])
    assert answer == dict.fromkeys(ids, ((0, "pending"), (80, "stopped")))
    assert set(states(ids).values()) == {(0, "pending")}
    wait_for_state(ids, "running")


def test_stop_and_start_leave_an_instance_already_on_its_way_as_it_is(ec2_emulation: Ec2Emulation) -> None:
    """InstanceStateChange reports the state an instance is in: stopping a stopping or stopped instance,
    or starting a pending or running one, changes nothing and says so."""
    ec2_emulation.instance_stop_seconds = 10**6  # stays stopping for the whole test
    (running,) = launch_plain(1)
    assert change(ec2().start_instances(InstanceIds=[running])["StartingInstances"]) == {
        running: ((16, "running"), (16, "running"))
    }
    ec2().stop_instances(InstanceIds=[running])
    assert change(ec2().stop_instances(InstanceIds=[running])["StoppingInstances"]) == {
        running: ((64, "stopping"), (64, "stopping"))
    }
    ec2_emulation.instance_stop_seconds = 1
    (other,) = launch_plain(1)
    ec2().stop_instances(InstanceIds=[other])
    wait_for_state([other], "stopped")
    assert change(ec2().stop_instances(InstanceIds=[other])["StoppingInstances"]) == {
        other: ((80, "stopped"), (80, "stopped"))
    }


def test_starting_a_stopping_instance_is_refused(ec2_emulation: Ec2Emulation) -> None:
    """StartInstances on an instance still `stopping`: IncorrectInstanceState, "not in a state from which
    it can be started"; one refused instance fails the whole request, and the stop goes on."""
    ec2_emulation.instance_stop_seconds = 2000
    stopping, stopped = launch_plain(2)
    ec2().stop_instances(InstanceIds=[stopping])
    with pytest.raises(ClientError) as caught:
        ec2().start_instances(InstanceIds=[stopped, stopping])
    assert caught.value.response["Error"]["Code"] == "IncorrectInstanceState"
    assert stopping in caught.value.response["Error"]["Message"]
    assert states([stopping, stopped]) == {stopping: (64, "stopping"), stopped: (16, "running")}
    wait_for_state([stopping], "stopped")


def test_a_pending_instance_cannot_be_stopped_nor_a_terminated_one_started(
    ec2_emulation: Ec2Emulation,
) -> None:
    """Instance lifecycle: only a running instance is stopped, and a terminated one never starts again."""
    ec2_emulation.instance_stop_seconds = 1
    pending, terminated = launch_plain(2)
    ec2().stop_instances(InstanceIds=[pending])
    wait_for_state([pending], "stopped")
    ec2_emulation.instance_start_seconds = 10**6  # stays pending for the whole test
    ec2().start_instances(InstanceIds=[pending])
    ec2().terminate_instances(InstanceIds=[terminated])
    for call, instance_id in ((ec2().stop_instances, pending), (ec2().start_instances, terminated)):
        with pytest.raises(ClientError) as caught:
            call(InstanceIds=[instance_id])
        assert caught.value.response["Error"]["Code"] == "IncorrectInstanceState"
    assert states([pending, terminated]) == {pending: (0, "pending"), terminated: (48, "terminated")}


def test_many_instances_stop_and_start_in_one_call() -> None:
    """StopInstances and StartInstances take many instance IDs at once; all of them change."""
    ids = launch_plain(100)
    answer = change(ec2().stop_instances(InstanceIds=ids)["StoppingInstances"])
    assert set(answer.values()) == {((64, "stopping"), (16, "running"))}
    assert len(answer) == 100
    wait_for_state(ids, "stopped")
    answer = change(ec2().start_instances(InstanceIds=ids)["StartingInstances"])
    assert set(answer.values()) == {((0, "pending"), (80, "stopped"))}
    wait_for_state(ids, "running")


def test_image_deprecation_is_rounded_to_the_minute_and_reported_until_disabled() -> None:
    image_id = ec2().create_image(InstanceId=launch(), Name="deprecated-later")["ImageId"]
    at = (datetime.now(UTC) + timedelta(days=30)).replace(second=40, microsecond=0)

    assert ec2().enable_image_deprecation(ImageId=image_id, DeprecateAt=at)["Return"] is True
    shown = ec2().describe_images(ImageIds=[image_id])["Images"][0]["DeprecationTime"]
    assert shown == (at + timedelta(seconds=20)).strftime("%Y-%m-%dT%H:%M:00.000Z")

    ec2().disable_image_deprecation(ImageId=image_id)
    assert "DeprecationTime" not in ec2().describe_images(ImageIds=[image_id])["Images"][0]


@pytest.mark.parametrize("days", [-1, 3660])
def test_a_deprecation_in_the_past_or_over_ten_years_away_is_refused(days: int) -> None:
    image_id = ec2().create_image(InstanceId=launch(), Name=f"deprecated-{days + 10}")["ImageId"]
    with pytest.raises(ClientError) as raised:
        ec2().enable_image_deprecation(ImageId=image_id, DeprecateAt=datetime.now(UTC) + timedelta(days=days))
    assert raised.value.response["Error"]["Code"] == "InvalidParameterValue"
