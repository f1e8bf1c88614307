"""CopyImage as the EC2 API Reference and User Guide ("Copy an Amazon EC2 AMI") document it: made in the
destination region, pending then available, new snapshots like the source's, tags only as asked, no launch
permissions, ClientToken idempotency, the concurrent-copy limit, and a copy that fails or is deregistered."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from opsflow_local.emulation.ec2 import Ec2Emulation

SOURCE, DESTINATION = "us-east-1", "eu-west-1"
VOLUMES = [
    {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8, "VolumeType": "gp3"}},
    {"DeviceName": "/dev/sdb", "Ebs": {"VolumeSize": 100, "VolumeType": "gp3", "Encrypted": True}},
]


def ec2(region: str = SOURCE) -> Any:
    return boto3.client("ec2", region_name=region)


def wait_until_not_pending(image_id: str, region: str = DESTINATION) -> dict[str, Any]:
    for _ in range(2000):
        image = ec2(region).describe_images(ImageIds=[image_id])["Images"][0]
        if image["State"] != "pending":
            return dict(image)
        time.sleep(0.005)
    raise AssertionError("image stayed pending")


@pytest.fixture
def source(ec2_emulation: Ec2Emulation) -> str:
    """An available image with two volumes (one encrypted), tagged team=web."""
    client = ec2()
    base = client.describe_images(
        Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-2023*-x86_64"]}]
    )["Images"][0]["ImageId"]
    instance = client.run_instances(ImageId=base, MinCount=1, MaxCount=1, BlockDeviceMappings=VOLUMES)
    image_id = client.create_image(
        InstanceId=instance["Instances"][0]["InstanceId"],
        Name="web-1",
        TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "team", "Value": "web"}]}],
    )["ImageId"]
    client.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": "222222222222"}]})
    wait_until_not_pending(image_id, SOURCE)
    return str(image_id)


def copy(source: str, **params: Any) -> str:
    return str(
        ec2(DESTINATION).copy_image(SourceImageId=source, SourceRegion=SOURCE, Name="web-1", **params)[
            "ImageId"
        ]
    )


def test_a_copy_is_pending_then_available_with_new_snapshots_like_the_sources(
    ec2_emulation: Ec2Emulation, source: str
) -> None:
    ec2_emulation.image_copy_seconds = 3000  # 3 s: long enough to observe on a busy machine
    copy_id = copy(source)
    pending = ec2(DESTINATION).describe_images(ImageIds=[copy_id])["Images"][0]
    assert pending["State"] == "pending"

    copied = wait_until_not_pending(copy_id)
    assert copied["State"] == "available"
    original = ec2().describe_images(ImageIds=[source])["Images"][0]
    devices = {m["DeviceName"]: m["Ebs"] for m in copied["BlockDeviceMappings"]}
    assert set(devices) == {m["DeviceName"] for m in original["BlockDeviceMappings"]}
    snapshot_ids = [ebs["SnapshotId"] for ebs in devices.values()]
    snapshots = {
        s["SnapshotId"]: s for s in ec2(DESTINATION).describe_snapshots(SnapshotIds=snapshot_ids)["Snapshots"]
    }
    assert {s["VolumeSize"] for s in snapshots.values()} == {8, 100}
    assert {s["State"] for s in snapshots.values()} == {"completed"}
    assert snapshots[devices["/dev/sdb"]["SnapshotId"]]["Encrypted"] is True
    assert snapshots[devices["/dev/xvda"]["SnapshotId"]]["Encrypted"] is False
    assert not set(snapshot_ids) & {m["Ebs"]["SnapshotId"] for m in original["BlockDeviceMappings"]}


def test_a_copy_gets_neither_the_sources_tags_nor_its_launch_permissions_unless_asked(source: str) -> None:
    plain = copy(source)
    tagged = ec2(DESTINATION).copy_image(
        SourceImageId=source,
        SourceRegion=SOURCE,
        Name="web-1-tagged",
        CopyImageTags=True,
        TagSpecifications=[
            {"ResourceType": "image", "Tags": [{"Key": "opsflow:run-id", "Value": "run-1"}]},
            {"ResourceType": "snapshot", "Tags": [{"Key": "opsflow:run-id", "Value": "run-1"}]},
        ],
    )["ImageId"]

    plain_image, tagged_image = wait_until_not_pending(plain), wait_until_not_pending(tagged)
    assert plain_image.get("Tags", []) == []
    assert {t["Key"]: t["Value"] for t in tagged_image["Tags"]} == {"team": "web", "opsflow:run-id": "run-1"}
    snapshot_ids = [m["Ebs"]["SnapshotId"] for m in tagged_image["BlockDeviceMappings"]]
    for snapshot in ec2(DESTINATION).describe_snapshots(SnapshotIds=snapshot_ids)["Snapshots"]:
        assert {t["Key"]: t["Value"] for t in snapshot["Tags"]} == {"opsflow:run-id": "run-1"}
    permissions = ec2(DESTINATION).describe_image_attribute(ImageId=plain, Attribute="launchPermission")
    assert permissions["LaunchPermissions"] == []


def test_a_key_encrypts_every_snapshot_of_the_copy_and_needs_encrypted(source: str) -> None:
    key = boto3.client("kms", region_name=DESTINATION).create_key()["KeyMetadata"]["Arn"]
    with pytest.raises(ClientError, match="InvalidParameterDependency"):
        copy(source, KmsKeyId=key)

    copied = wait_until_not_pending(copy(source, Encrypted=True, KmsKeyId=key))

    snapshot_ids = [m["Ebs"]["SnapshotId"] for m in copied["BlockDeviceMappings"]]
    for snapshot in ec2(DESTINATION).describe_snapshots(SnapshotIds=snapshot_ids)["Snapshots"]:
        assert snapshot["Encrypted"] is True
        assert snapshot["KmsKeyId"] == key


def test_the_same_client_token_returns_the_same_copy(source: str) -> None:
    first = copy(source, ClientToken="run-1-eu-west-1")
    again = copy(source, ClientToken="run-1-eu-west-1")

    assert first == again
    assert len(ec2(DESTINATION).describe_images(Owners=["self"])["Images"]) == 1


def test_copies_beyond_the_concurrent_limit_are_refused_until_one_ends(
    ec2_emulation: Ec2Emulation, source: str
) -> None:
    ec2_emulation.image_copy_seconds = (
        5000  # 5 s: the first copy outlasts the refused third on a busy machine
    )
    ec2_emulation.copy_limit_per_source = 2
    first = ec2(DESTINATION).copy_image(SourceImageId=source, SourceRegion=SOURCE, Name="web-a")["ImageId"]
    ec2(DESTINATION).copy_image(SourceImageId=source, SourceRegion=SOURCE, Name="web-b")

    with pytest.raises(ClientError) as refused:
        ec2(DESTINATION).copy_image(SourceImageId=source, SourceRegion=SOURCE, Name="web-c")
    assert refused.value.response["Error"]["Code"] == "ResourceLimitExceeded"

    wait_until_not_pending(first)
    time.sleep(0.05)
    assert ec2(DESTINATION).copy_image(SourceImageId=source, SourceRegion=SOURCE, Name="web-c")["ImageId"]


def test_a_failed_copy_ends_failed_with_its_reason_and_a_deregistered_one_never_ends(
    ec2_emulation: Ec2Emulation, source: str
) -> None:
    ec2_emulation.fail_next_copy(DESTINATION, "Copy of snapshot failed: internal error")
    failed = wait_until_not_pending(copy(source))
    assert failed["State"] == "failed"
    assert failed["StateReason"]["Message"] == "Copy of snapshot failed: internal error"

    ec2_emulation.image_copy_seconds = 50
    stopped = ec2(DESTINATION).copy_image(SourceImageId=source, SourceRegion=SOURCE, Name="stopped")[
        "ImageId"
    ]
    ec2(DESTINATION).deregister_image(ImageId=stopped)
    time.sleep(0.1)
    assert [i["ImageId"] for i in ec2(DESTINATION).describe_images(Owners=["self"])["Images"]] == [
        failed["ImageId"]
    ]
