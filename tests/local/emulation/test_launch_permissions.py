"""Launch permissions as the EC2 API Reference documents ModifyImageAttribute and DescribeImageAttribute
(`LaunchPermission` Add/Remove of `UserId`, `OrganizationArn`, `OrganizationalUnitArn`) and ModifySnapshotAttribute
(`createVolumePermission`). moto keeps them as documented; these tests hold it to that, since distribution
relies on them."""

from __future__ import annotations

from typing import Any

import boto3

from opsflow_local.emulation.ec2 import Ec2Emulation

ACCOUNT = "222222222222"
ORGANIZATION = "arn:aws:organizations::123456789012:organization/o-a1b2c3d4e5"
UNIT = "arn:aws:organizations::123456789012:ou/o-a1b2c3d4e5/ou-ab12-cdef3456"


def ec2() -> Any:
    return boto3.client("ec2", region_name="us-east-1")


def image(client: Any) -> str:
    base = client.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = client.run_instances(ImageId=base, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    return str(client.create_image(InstanceId=instance, Name="web-1")["ImageId"])


def permissions(client: Any, image_id: str) -> list[dict[str, str]]:
    return list(
        client.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"]
    )


def test_an_image_is_shared_with_an_account_an_organization_and_an_ou_and_unshared_one_by_one(
    ec2_emulation: Ec2Emulation,
) -> None:
    client = ec2()
    image_id = image(client)
    assert permissions(client, image_id) == []

    client.modify_image_attribute(
        ImageId=image_id,
        LaunchPermission={
            "Add": [{"UserId": ACCOUNT}, {"OrganizationArn": ORGANIZATION}, {"OrganizationalUnitArn": UNIT}]
        },
    )
    assert permissions(client, image_id) == [
        {"UserId": ACCOUNT},
        {"OrganizationArn": ORGANIZATION},
        {"OrganizationalUnitArn": UNIT},
    ]

    client.modify_image_attribute(ImageId=image_id, LaunchPermission={"Remove": [{"UserId": ACCOUNT}]})
    assert permissions(client, image_id) == [
        {"OrganizationArn": ORGANIZATION},
        {"OrganizationalUnitArn": UNIT},
    ]


def test_a_snapshot_is_shared_for_volumes_with_an_account(ec2_emulation: Ec2Emulation) -> None:
    client = ec2()
    image_id = image(client)
    [snapshot_id] = [
        m["Ebs"]["SnapshotId"]
        for m in client.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"]
        if "Ebs" in m
    ]

    client.modify_snapshot_attribute(
        SnapshotId=snapshot_id, Attribute="createVolumePermission", OperationType="add", UserIds=[ACCOUNT]
    )
    shared = client.describe_snapshot_attribute(SnapshotId=snapshot_id, Attribute="createVolumePermission")
    assert shared["CreateVolumePermissions"] == [{"UserId": ACCOUNT}]

    client.modify_snapshot_attribute(
        SnapshotId=snapshot_id, Attribute="createVolumePermission", OperationType="remove", UserIds=[ACCOUNT]
    )
    unshared = client.describe_snapshot_attribute(SnapshotId=snapshot_id, Attribute="createVolumePermission")
    assert unshared["CreateVolumePermissions"] == []
