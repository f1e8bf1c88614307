"""Realistic resources to run workflows against: a VPC, instances with several EBS volumes, groups on a
launch template and on a legacy launch configuration. Used by the demo and the end-to-end tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opsflow_local.runtime import EmbeddedAws

OPT_IN = {"Key": "opsflow:managed", "Value": "true"}

# A root volume and two data volumes of different types and sizes.
APP_SERVER_VOLUMES: list[dict[str, Any]] = [
    {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8, "VolumeType": "gp3", "DeleteOnTermination": True}},
    {
        "DeviceName": "/dev/sdb",
        "Ebs": {"VolumeSize": 100, "VolumeType": "gp3", "Iops": 4000, "Throughput": 250},
    },
    {"DeviceName": "/dev/sdc", "Ebs": {"VolumeSize": 50, "VolumeType": "io2", "Iops": 5000}},
]


@dataclass(frozen=True)
class Network:
    vpc_id: str
    subnet_id: str
    security_group_id: str
    base_image_id: str


def network(aws: EmbeddedAws) -> Network:
    ec2 = aws.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.40.1.0/24", AvailabilityZone=f"{aws.region}a")[
        "Subnet"
    ]["SubnetId"]
    group_id = ec2.create_security_group(GroupName="app", Description="app servers", VpcId=vpc_id)["GroupId"]
    return Network(vpc_id, subnet_id, group_id, base_image_id(aws))


def base_image_id(aws: EmbeddedAws) -> str:
    """The newest Amazon Linux 2023 image moto knows (filtered: listing all of them takes seconds)."""
    images = aws.client("ec2").describe_images(
        Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-2023*-x86_64"]}]
    )["Images"]
    return str(max(images, key=lambda image: image["CreationDate"])["ImageId"])


def instance(
    aws: EmbeddedAws,
    net: Network,
    name: str,
    volumes: list[dict[str, Any]] = APP_SERVER_VOLUMES,
    opted_in: bool = True,
) -> str:
    tags = [{"Key": "Name", "Value": name}] + ([OPT_IN] if opted_in else [])
    return str(
        aws.client("ec2").run_instances(
            ImageId=net.base_image_id,
            MinCount=1,
            MaxCount=1,
            InstanceType="m6i.large",
            SubnetId=net.subnet_id,
            SecurityGroupIds=[net.security_group_id],
            BlockDeviceMappings=volumes,
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )["Instances"][0]["InstanceId"]
    )


def launch_template_group(
    aws: EmbeddedAws, net: Network, name: str, capacity: int = 2, opted_in: bool = True
) -> str:
    """A group on launch template `name` version 1 (pinned). Returns the template id."""
    template_id = aws.client("ec2").create_launch_template(
        LaunchTemplateName=name,
        LaunchTemplateData={
            "ImageId": net.base_image_id,
            "InstanceType": "m6i.large",
            "SecurityGroupIds": [net.security_group_id],
            "UserData": "IyEvYmluL2Jhc2gKc3lzdGVtY3RsIHN0YXJ0IGFwcAo=",
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "app", "Value": name}]}],
        },
    )["LaunchTemplate"]["LaunchTemplateId"]
    aws.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateId": template_id, "Version": "1"},
        MinSize=capacity,
        MaxSize=capacity * 2,
        DesiredCapacity=capacity,
        VPCZoneIdentifier=net.subnet_id,
        Tags=[{**OPT_IN, "PropagateAtLaunch": False}] if opted_in else [],
    )
    return str(template_id)


def launch_configuration_group(aws: EmbeddedAws, net: Network, name: str, capacity: int = 1) -> str:
    """A legacy group on a launch configuration. Returns the configuration's name."""
    configuration = f"{name}-v1"
    autoscaling = aws.client("autoscaling")
    autoscaling.create_launch_configuration(
        LaunchConfigurationName=configuration,
        ImageId=net.base_image_id,
        InstanceType="t3.medium",
        SecurityGroups=[net.security_group_id],
        UserData="#!/bin/bash\nsystemctl start legacy-app\n",
        BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 20, "VolumeType": "gp3"}}],
        InstanceMonitoring={"Enabled": True},
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchConfigurationName=configuration,
        MinSize=capacity,
        MaxSize=capacity,
        DesiredCapacity=capacity,
        VPCZoneIdentifier=net.subnet_id,
        Tags=[{**OPT_IN, "PropagateAtLaunch": False}],
    )
    return configuration


def alarm(aws: EmbeddedAws, name: str) -> str:
    """A CloudWatch alarm on a load balancer's 5xx count, in state OK until a test sets it."""
    aws.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        MetricName="HTTPCode_Target_5XX_Count",
        Namespace="AWS/ApplicationELB",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=10,
        ComparisonOperator="GreaterThanThreshold",
    )
    return name
