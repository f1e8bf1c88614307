"""EC2 adapter: instances, images, snapshots and launch template versions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from opsflow.aws.errors import aws_call, call_failed
from opsflow.errors import AwsCallFailed, NotFound

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client


def tags_of(resource: Any) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", []) or []}


@dataclass(frozen=True)
class Instance:
    instance_id: str
    state: str
    tags: dict[str, str]
    root_device_name: str | None
    devices: list[str]
    instance_type: str = ""
    root_device_type: str = "ebs"
    # Why it last changed state (API Reference, StateReason), e.g. Client.UserInitiatedShutdown.
    state_reason: str = ""


@dataclass(frozen=True)
class Image:
    image_id: str
    name: str
    state: str
    state_reason: str | None
    creation_date: str
    tags: dict[str, str]
    block_device_mappings: list[dict[str, Any]] = field(default_factory=list)
    deprecation_time: str | None = None

    @property
    def snapshot_ids(self) -> list[str]:
        return [
            m["Ebs"]["SnapshotId"] for m in self.block_device_mappings if m.get("Ebs", {}).get("SnapshotId")
        ]


@dataclass(frozen=True)
class LaunchTemplateVersion:
    template_id: str
    template_name: str
    version: int
    is_default: bool
    data: dict[str, Any]
    description: str | None

    @property
    def image_id(self) -> str | None:
        value = self.data.get("ImageId")
        return str(value) if value else None


@dataclass(frozen=True)
class InstanceStatus:
    state: str
    system: str
    instance: str

    @property
    def healthy(self) -> bool:
        return self.state == "running" and self.system == "ok" and self.instance == "ok"

    def describe(self) -> str:
        if self.state != "running":
            return self.state
        return f"running, system status {self.system}, instance status {self.instance}"


def _instance(raw: Any) -> Instance:
    return Instance(
        instance_id=raw["InstanceId"],
        state=raw.get("State", {}).get("Name", "unknown"),
        tags=tags_of(raw),
        root_device_name=raw.get("RootDeviceName"),
        devices=[m["DeviceName"] for m in raw.get("BlockDeviceMappings", [])],
        instance_type=str(raw.get("InstanceType", "")),
        root_device_type=str(raw.get("RootDeviceType", "ebs")),
        state_reason=str((raw.get("StateReason") or {}).get("Code", "")),
    )


def _image(raw: Any) -> Image:
    reason = raw.get("StateReason") or {}
    return Image(
        image_id=raw["ImageId"],
        name=raw.get("Name", ""),
        state=raw.get("State", "unknown"),
        state_reason=reason.get("Message") or reason.get("Code"),
        creation_date=str(raw.get("CreationDate", "")),
        tags=tags_of(raw),
        block_device_mappings=list(raw.get("BlockDeviceMappings", [])),
        deprecation_time=raw.get("DeprecationTime"),
    )


class Ec2:
    def __init__(self, client: EC2Client) -> None:
        self._ec2 = client

    # Instances -----------------------------------------------------------------------------------

    def describe_instance(self, instance_id: str) -> Instance:
        with aws_call("DescribeInstances", not_found=f"instance {instance_id} does not exist"):
            reservations = self._ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        instances = [i for r in reservations for i in r.get("Instances", [])]
        if not instances:
            raise NotFound(f"instance {instance_id} does not exist")
        return _instance(instances[0])

    def find_instances(self, tags: dict[str, str]) -> list[Instance]:
        """Instances carrying every one of these tags that are not terminated, in pages of 1,000."""
        filters: list[Any] = [{"Name": f"tag:{key}", "Values": [value]} for key, value in tags.items()]
        filters.append(
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}
        )
        found: list[Instance] = []
        with aws_call("DescribeInstances"):
            pages = self._ec2.get_paginator("describe_instances").paginate(
                Filters=filters, PaginationConfig={"PageSize": 1000}
            )
            for page in pages:
                for reservation in page["Reservations"]:
                    found.extend(_instance(raw) for raw in reservation.get("Instances", []))
        return found

    def run_builder(
        self,
        *,
        image_id: str,
        instance_type: str,
        subnet_id: str | None,
        security_group_ids: list[str],
        instance_profile: str,
        tags: dict[str, str],
        client_token: str,
    ) -> str:
        """Launch one instance; `client_token` makes a retry return the instance the first call launched."""
        profile = (
            {"Arn": instance_profile} if instance_profile.startswith("arn:") else {"Name": instance_profile}
        )
        request: dict[str, Any] = {
            "ImageId": image_id,
            "InstanceType": instance_type,
            "MinCount": 1,
            "MaxCount": 1,
            "IamInstanceProfile": profile,
            "ClientToken": client_token,
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": _tag_list(tags)},
                {"ResourceType": "volume", "Tags": _tag_list(tags)},
            ],
            # A builder that shuts itself down is gone, not stopped and billed for its volumes.
            "InstanceInitiatedShutdownBehavior": "terminate",
        }
        if subnet_id:
            request["SubnetId"] = subnet_id
        if security_group_ids:
            request["SecurityGroupIds"] = security_group_ids
        with aws_call("RunInstances"):
            launched = self._ec2.run_instances(**request)
        return str(launched["Instances"][0]["InstanceId"])

    def terminate_instances(self, instance_ids: list[str]) -> None:
        if not instance_ids:
            return
        with aws_call("TerminateInstances"):
            self._ec2.terminate_instances(InstanceIds=instance_ids)

    def stop_instances(self, instance_ids: list[str]) -> None:
        with aws_call("StopInstances"):
            self._ec2.stop_instances(InstanceIds=instance_ids)

    def start_instances(self, instance_ids: list[str]) -> None:
        with aws_call("StartInstances"):
            self._ec2.start_instances(InstanceIds=instance_ids)

    def reboot_instances(self, instance_ids: list[str]) -> None:
        with aws_call("RebootInstances"):
            self._ec2.reboot_instances(InstanceIds=instance_ids)

    def has_instance_store(self, instance_type: str) -> bool:
        """Whether the instance type comes with instance store volumes (DescribeInstanceTypes)."""
        with aws_call("DescribeInstanceTypes"):
            found = self._ec2.describe_instance_types(InstanceTypes=[instance_type])["InstanceTypes"]  # type: ignore[list-item]
        return bool(found and found[0].get("InstanceStorageSupported"))

    def instance_status(self, instance_id: str) -> InstanceStatus:
        """The instance's state and its two status checks (`ok`, `impaired`, `initializing`,
        `insufficient-data`, `not-applicable`); checks are `not-applicable` unless it runs."""
        with aws_call("DescribeInstanceStatus", not_found=f"no instance {instance_id}"):
            found = self._ec2.describe_instance_status(InstanceIds=[instance_id], IncludeAllInstances=True)[
                "InstanceStatuses"
            ]
        if not found:
            raise NotFound(f"no instance {instance_id}")
        status = found[0]
        return InstanceStatus(
            state=str(status["InstanceState"]["Name"]),
            system=str(status.get("SystemStatus", {}).get("Status", "not-applicable")),
            instance=str(status.get("InstanceStatus", {}).get("Status", "not-applicable")),
        )

    # Images and snapshots ------------------------------------------------------------------------

    def create_image(
        self,
        *,
        instance_id: str,
        name: str,
        description: str,
        no_reboot: bool,
        image_tags: dict[str, str],
        snapshot_tags: dict[str, str],
    ) -> str:
        with aws_call("CreateImage"):
            response = self._ec2.create_image(
                InstanceId=instance_id,
                Name=name,
                Description=description,
                NoReboot=no_reboot,
                TagSpecifications=[
                    {"ResourceType": "image", "Tags": _tag_list(image_tags)},
                    {"ResourceType": "snapshot", "Tags": _tag_list(snapshot_tags)},
                ],
            )
        return response["ImageId"]

    def describe_image(self, image_id: str) -> Image:
        with aws_call("DescribeImages", not_found=f"image {image_id} does not exist"):
            images = self._ec2.describe_images(ImageIds=[image_id])["Images"]
        if not images:
            raise NotFound(f"image {image_id} does not exist")
        return _image(images[0])

    def find_images(self, tags: dict[str, str]) -> list[Image]:
        filters = [{"Name": f"tag:{key}", "Values": [value]} for key, value in tags.items()]
        with aws_call("DescribeImages"):
            # Disabled images too: DescribeImages leaves them out unless asked.
            images = self._ec2.describe_images(
                Owners=["self"], Filters=cast(Any, filters), IncludeDisabled=True
            )["Images"]
        return [_image(raw) for raw in images]

    def images_of_instances(self) -> dict[str, list[str]]:
        """Image id -> the instances (not terminated) launched from it, in this account and region."""
        found: dict[str, list[str]] = {}
        states = ["pending", "running", "stopping", "stopped"]
        with aws_call("DescribeInstances"):
            pages = self._ec2.get_paginator("describe_instances").paginate(
                Filters=[{"Name": "instance-state-name", "Values": states}],
                PaginationConfig={"PageSize": 1000},
            )
            for page in pages:
                for reservation in page["Reservations"]:
                    for raw in reservation.get("Instances", []):
                        found.setdefault(raw["ImageId"], []).append(raw["InstanceId"])
        return found

    def deprecate_image(self, image_id: str, at: str) -> None:
        """`at`: ISO 8601 in UTC, in the future (EC2 rounds it to the minute)."""
        with aws_call("EnableImageDeprecation", not_found=f"image {image_id} does not exist"):
            self._ec2.enable_image_deprecation(ImageId=image_id, DeprecateAt=cast(Any, at))

    def disable_image(self, image_id: str) -> None:
        with aws_call("DisableImage", not_found=f"image {image_id} does not exist"):
            self._ec2.disable_image(ImageId=image_id)

    def copy_image(
        self,
        *,
        source_image_id: str,
        source_region: str,
        name: str,
        description: str,
        client_token: str,
        kms_key_id: str | None,
        tags: dict[str, str],
    ) -> str | None:
        """Start copying an image into this client's region; None when the region's concurrent-copy quota is
        full (`ResourceLimitExceeded`), so the caller tries again later. The same `client_token` returns the
        same copy, so a retried call never makes two."""
        encryption: dict[str, Any] = {"Encrypted": True, "KmsKeyId": kms_key_id} if kms_key_id else {}
        try:
            with aws_call("CopyImage"):
                response = self._ec2.copy_image(
                    SourceImageId=source_image_id,
                    SourceRegion=source_region,
                    Name=name,
                    Description=description[:255],
                    ClientToken=client_token[:64],
                    TagSpecifications=[
                        {"ResourceType": "image", "Tags": _tag_list(tags)},
                        {"ResourceType": "snapshot", "Tags": _tag_list(tags)},
                    ],
                    **encryption,
                )
        except AwsCallFailed as error:
            if error.aws_code == "ResourceLimitExceeded":
                return None
            raise
        return response["ImageId"]

    def share_image(
        self, image_id: str, *, accounts: list[str], organizations: list[str], units: list[str]
    ) -> None:
        permissions: list[Any] = [
            *({"UserId": account} for account in accounts),
            *({"OrganizationArn": arn} for arn in organizations),
            *({"OrganizationalUnitArn": arn} for arn in units),
        ]
        if not permissions:
            return
        with aws_call("ModifyImageAttribute", not_found=f"image {image_id} does not exist"):
            self._ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": permissions})

    def share_snapshot(self, snapshot_id: str, accounts: list[str]) -> None:
        with aws_call("ModifySnapshotAttribute", not_found=f"snapshot {snapshot_id} does not exist"):
            self._ec2.modify_snapshot_attribute(
                SnapshotId=snapshot_id,
                Attribute="createVolumePermission",
                OperationType="add",
                UserIds=accounts,
            )

    def find_snapshot_ids(self, tags: dict[str, str]) -> list[str]:
        filters = [{"Name": f"tag:{key}", "Values": [value]} for key, value in tags.items()]
        ids: list[str] = []
        with aws_call("DescribeSnapshots"):
            for page in self._ec2.get_paginator("describe_snapshots").paginate(
                OwnerIds=["self"], Filters=cast(Any, filters)
            ):
                ids.extend(s["SnapshotId"] for s in page.get("Snapshots", []))
        return ids

    def tag(self, resource_ids: list[str], tags: dict[str, str]) -> None:
        if not resource_ids:
            return
        with aws_call("CreateTags"):
            self._ec2.create_tags(Resources=resource_ids, Tags=_tag_list(tags))

    def deregister_image(self, image_id: str) -> None:
        with aws_call("DeregisterImage"):
            self._ec2.deregister_image(ImageId=image_id)

    def delete_snapshot(self, snapshot_id: str) -> None:
        with aws_call("DeleteSnapshot"):
            self._ec2.delete_snapshot(SnapshotId=snapshot_id)

    # Launch templates ----------------------------------------------------------------------------

    def launch_template_version(self, template_id: str, version: str) -> LaunchTemplateVersion:
        with aws_call(
            "DescribeLaunchTemplateVersions",
            not_found=f"launch template {template_id} has no version {version}",
        ):
            versions = self._ec2.describe_launch_template_versions(
                LaunchTemplateId=template_id, Versions=[version]
            )["LaunchTemplateVersions"]
        if not versions:
            raise NotFound(f"launch template {template_id} has no version {version}")
        return _version(versions[0])

    def launch_template_named(self, name: str) -> tuple[str, dict[str, str]]:
        """The launch template's id and tags."""
        with aws_call("DescribeLaunchTemplates", not_found=f"launch template {name} does not exist"):
            found = self._ec2.describe_launch_templates(LaunchTemplateNames=[name])["LaunchTemplates"]
        if not found:
            raise NotFound(f"launch template {name} does not exist")
        return found[0]["LaunchTemplateId"], tags_of(found[0])

    def launch_template_versions(self, template_id: str) -> list[LaunchTemplateVersion]:
        """Every version of the template, newest first."""
        versions: list[LaunchTemplateVersion] = []
        with aws_call(
            "DescribeLaunchTemplateVersions", not_found=f"launch template {template_id} does not exist"
        ):
            for page in self._ec2.get_paginator("describe_launch_template_versions").paginate(
                LaunchTemplateId=template_id
            ):
                versions += [_version(raw) for raw in page["LaunchTemplateVersions"]]
        return sorted(versions, key=lambda v: v.version, reverse=True)

    def create_launch_template_version(
        self,
        *,
        template_id: str,
        source: LaunchTemplateVersion,
        image_id: str,
        image_devices: set[str],
        description: str,
    ) -> int:
        """A new version that differs from `source` only by its image.

        SourceVersion drops the snapshots of the source's block device mappings unless they are passed
        again. For a device the new image has, that is right (its snapshot holds what was just baked;
        the mapping's other settings still apply). A device only the template provides keeps its snapshot.
        """
        data: dict[str, Any] = {"ImageId": image_id}
        mappings = source.data.get("BlockDeviceMappings") or []
        if any(
            (m.get("Ebs") or {}).get("SnapshotId") and m.get("DeviceName") not in image_devices
            for m in mappings
        ):
            data["BlockDeviceMappings"] = [
                {**m, "Ebs": {k: v for k, v in m["Ebs"].items() if k != "SnapshotId"}}
                if m.get("Ebs") and m.get("DeviceName") in image_devices
                else m
                for m in mappings
            ]
        with aws_call("CreateLaunchTemplateVersion"):
            response = self._ec2.create_launch_template_version(
                LaunchTemplateId=template_id,
                SourceVersion=str(source.version),
                VersionDescription=description[:255],
                LaunchTemplateData=cast(Any, data),
            )
        return int(response["LaunchTemplateVersion"]["VersionNumber"])

    def set_default_version(self, template_id: str, version: int) -> None:
        with aws_call("ModifyLaunchTemplate"):
            self._ec2.modify_launch_template(LaunchTemplateId=template_id, DefaultVersion=str(version))

    def instance_images(self, instance_ids: list[str]) -> dict[str, str]:
        """Instance id -> image id, for the instances that exist."""
        if not instance_ids:
            return {}
        with aws_call("DescribeInstances"):
            reservations = self._ec2.describe_instances(InstanceIds=instance_ids)["Reservations"]
        return {i["InstanceId"]: i["ImageId"] for r in reservations for i in r.get("Instances", [])}

    def delete_launch_template_version(self, template_id: str, version: int) -> None:
        with aws_call("DeleteLaunchTemplateVersions"):
            response = self._ec2.delete_launch_template_versions(
                LaunchTemplateId=template_id, Versions=[str(version)]
            )
        failures = response.get("UnsuccessfullyDeletedLaunchTemplateVersions", [])
        if failures:
            error = failures[0].get("ResponseError", {})
            raise call_failed(
                "DeleteLaunchTemplateVersions", str(error.get("Code", "")), str(error.get("Message", ""))
            )


def _version(raw: Any) -> LaunchTemplateVersion:
    return LaunchTemplateVersion(
        template_id=raw["LaunchTemplateId"],
        template_name=raw.get("LaunchTemplateName", ""),
        version=int(raw["VersionNumber"]),
        is_default=bool(raw.get("DefaultVersion")),
        data=cast(dict[str, Any], raw.get("LaunchTemplateData", {})),
        description=raw.get("VersionDescription"),
    )


def _tag_list(tags: dict[str, str]) -> list[Any]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]
