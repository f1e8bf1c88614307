"""EC2 Auto Scaling adapter: groups and launch configurations."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from opsflow.aws.ec2 import tags_of
from opsflow.aws.errors import aws_call
from opsflow.errors import NotFound

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient

# Attributes of a launch configuration that CreateLaunchConfiguration accepts back as they were
# described. Empty strings (KernelId, RamdiskId) are AWS's "unset" and must not be sent back.
_LAUNCH_CONFIGURATION_ATTRIBUTES = (
    "ImageId",
    "KeyName",
    "SecurityGroups",
    "ClassicLinkVPCId",
    "ClassicLinkVPCSecurityGroups",
    "UserData",
    "InstanceType",
    "KernelId",
    "RamdiskId",
    "BlockDeviceMappings",
    "InstanceMonitoring",
    "SpotPrice",
    "IamInstanceProfile",
    "EbsOptimized",
    "AssociatePublicIpAddress",
    "PlacementTenancy",
    "MetadataOptions",
)

# The tag EC2 Auto Scaling puts on each instance it launches, naming its group.
GROUP_TAG = "aws:autoscaling:groupName"


@dataclass(frozen=True)
class LaunchTemplateRef:
    template_id: str
    template_name: str
    version: str  # a number, "$Latest" or "$Default", as the group holds it


@dataclass(frozen=True)
class Group:
    name: str
    tags: dict[str, str]
    min_size: int
    max_size: int
    desired_capacity: int
    launch_template: LaunchTemplateRef | None
    launch_configuration_name: str | None
    uses_mixed_instances_policy: bool
    instance_ids: list[str]
    subnet_ids: list[str] = field(default_factory=list)


def _group(raw: Any) -> Group:
    template = raw.get("LaunchTemplate") or (
        ((raw.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}).get(
            "LaunchTemplateSpecification"
        )
    )
    return Group(
        name=raw["AutoScalingGroupName"],
        tags=tags_of(raw),
        min_size=int(raw.get("MinSize", 0)),
        max_size=int(raw.get("MaxSize", 0)),
        desired_capacity=int(raw.get("DesiredCapacity", 0)),
        launch_template=LaunchTemplateRef(
            template_id=template.get("LaunchTemplateId", ""),
            template_name=template.get("LaunchTemplateName", ""),
            version=str(template.get("Version") or "$Default"),
        )
        if template
        else None,
        launch_configuration_name=raw.get("LaunchConfigurationName") or None,
        uses_mixed_instances_policy=bool(raw.get("MixedInstancesPolicy")),
        instance_ids=[i["InstanceId"] for i in raw.get("Instances", [])],
        subnet_ids=[s.strip() for s in str(raw.get("VPCZoneIdentifier") or "").split(",") if s.strip()],
    )


@dataclass(frozen=True)
class InstanceRefresh:
    refresh_id: str
    status: str
    status_reason: str
    percentage_complete: int
    instances_to_update: int
    rollback_reason: str | None
    desired_template_id: str | None = None
    desired_version: str | None = None

    @property
    def active(self) -> bool:
        return self.status in ("Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking")


def _refresh(raw: Any) -> InstanceRefresh:
    return InstanceRefresh(
        refresh_id=raw["InstanceRefreshId"],
        status=raw.get("Status", "Unknown"),
        status_reason=raw.get("StatusReason", ""),
        percentage_complete=int(raw.get("PercentageComplete") or 0),
        instances_to_update=int(raw.get("InstancesToUpdate") or 0),
        rollback_reason=(raw.get("RollbackDetails") or {}).get("RollbackReason"),
        desired_template_id=((raw.get("DesiredConfiguration") or {}).get("LaunchTemplate") or {}).get(
            "LaunchTemplateId"
        ),
        desired_version=((raw.get("DesiredConfiguration") or {}).get("LaunchTemplate") or {}).get("Version"),
    )


class AutoScaling:
    def __init__(self, client: AutoScalingClient) -> None:
        self._asg = client

    def describe_group(self, name: str) -> Group:
        with aws_call("DescribeAutoScalingGroups"):
            groups = self._asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
        if not groups:
            raise NotFound(f"Auto Scaling group {name} does not exist")
        return _group(groups[0])

    def all_groups(self) -> list[Group]:
        groups: list[Group] = []
        with aws_call("DescribeAutoScalingGroups"):
            for page in self._asg.get_paginator("describe_auto_scaling_groups").paginate():
                groups.extend(_group(raw) for raw in page["AutoScalingGroups"])
        return groups

    def find_groups(self, tags: dict[str, str]) -> list[Group]:
        """Groups carrying every one of these tags, in pages of 100."""
        filters: list[Any] = [{"Name": f"tag:{key}", "Values": [value]} for key, value in tags.items()]
        groups: list[Group] = []
        with aws_call("DescribeAutoScalingGroups"):
            pages = self._asg.get_paginator("describe_auto_scaling_groups").paginate(
                Filters=filters, PaginationConfig={"PageSize": 100}
            )
            for page in pages:
                groups.extend(_group(raw) for raw in page["AutoScalingGroups"])
        # Filters match tag values as given; compare again so a differently-cased value never slips in.
        return [g for g in groups if all(g.tags.get(k) == v for k, v in tags.items())]

    def set_capacity(self, name: str, *, min_size: int, desired: int, max_size: int) -> None:
        with aws_call("UpdateAutoScalingGroup", not_found=f"Auto Scaling group {name} does not exist"):
            self._asg.update_auto_scaling_group(
                AutoScalingGroupName=name, MinSize=min_size, DesiredCapacity=desired, MaxSize=max_size
            )

    def launch_configuration(self, name: str) -> dict[str, Any]:
        with aws_call("DescribeLaunchConfigurations"):
            found = self._asg.describe_launch_configurations(LaunchConfigurationNames=[name])[
                "LaunchConfigurations"
            ]
        if not found:
            raise NotFound(f"launch configuration {name} does not exist")
        return cast(dict[str, Any], found[0])

    def all_launch_configurations(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        with aws_call("DescribeLaunchConfigurations"):
            for page in self._asg.get_paginator("describe_launch_configurations").paginate():
                found.extend(cast(list[dict[str, Any]], page["LaunchConfigurations"]))
        return found

    def copy_launch_configuration(self, source: dict[str, Any], *, new_name: str, image_id: str) -> None:
        """Create `new_name` with every attribute of `source`, block device mappings included, but the image."""
        attributes = {
            key: source[key]
            for key in _LAUNCH_CONFIGURATION_ATTRIBUTES
            if key in source and source[key] not in ("", None, [])
        }
        attributes["ImageId"] = image_id
        if "UserData" in attributes:
            # Described base64-encoded; botocore encodes it again on the way in, so pass the raw bytes.
            attributes["UserData"] = base64.b64decode(attributes["UserData"])
        with aws_call("CreateLaunchConfiguration"):
            self._asg.create_launch_configuration(LaunchConfigurationName=new_name, **attributes)

    def delete_launch_configuration(self, name: str) -> None:
        with aws_call("DeleteLaunchConfiguration"):
            self._asg.delete_launch_configuration(LaunchConfigurationName=name)

    def use_launch_template(self, group_name: str, template_id: str, version: str) -> None:
        with aws_call("UpdateAutoScalingGroup"):
            self._asg.update_auto_scaling_group(
                AutoScalingGroupName=group_name,
                LaunchTemplate={"LaunchTemplateId": template_id, "Version": version},
            )

    def use_launch_configuration(self, group_name: str, name: str) -> None:
        with aws_call("UpdateAutoScalingGroup"):
            self._asg.update_auto_scaling_group(AutoScalingGroupName=group_name, LaunchConfigurationName=name)

    # Instance refresh ---------------------------------------------------------------------------

    def instance_refreshes(self, group_name: str, refresh_id: str | None = None) -> list[InstanceRefresh]:
        """Newest first."""
        extra: dict[str, Any] = {"InstanceRefreshIds": [refresh_id]} if refresh_id else {}
        with aws_call("DescribeInstanceRefreshes"):
            found = self._asg.describe_instance_refreshes(AutoScalingGroupName=group_name, **extra)
        return [_refresh(raw) for raw in found.get("InstanceRefreshes", [])]

    def start_instance_refresh(
        self, group_name: str, preferences: dict[str, Any], desired: dict[str, Any] | None
    ) -> str:
        extra: dict[str, Any] = {"DesiredConfiguration": desired} if desired else {}
        with aws_call("StartInstanceRefresh"):
            return self._asg.start_instance_refresh(
                AutoScalingGroupName=group_name,
                Strategy="Rolling",
                Preferences=cast(Any, preferences),
                **extra,
            )["InstanceRefreshId"]

    def rollback_instance_refresh(self, group_name: str) -> str:
        with aws_call("RollbackInstanceRefresh"):
            return (
                self._asg.rollback_instance_refresh(AutoScalingGroupName=group_name)["InstanceRefreshId"]
                or ""
            )

    def cancel_instance_refresh(self, group_name: str) -> str:
        with aws_call("CancelInstanceRefresh"):
            return (
                self._asg.cancel_instance_refresh(AutoScalingGroupName=group_name)["InstanceRefreshId"] or ""
            )
