"""Which authorizations a call makes, implicit checks included, on fake lookups: the resource ARNs and
context keys AWS documents for each (see opsflow_local/iam/implicit.py for the documents)."""

from __future__ import annotations

from typing import Any

import pytest

from opsflow_local.iam.calls import Authorization, Call, NotModelled
from opsflow_local.iam.enforcer import authorizations

ACCOUNT, REGION = "123456789012", "us-east-1"
TEMPLATE_ARN = f"arn:aws:ec2:{REGION}:{ACCOUNT}:launch-template/lt-1"


class FakeLookups:
    """What AWS knows about the account: one group on subnets a and b, one launch template."""

    region, account = REGION, ACCOUNT

    def __init__(self, template_data: dict[str, Any] | None = None, secret_key: str | None = None) -> None:
        self.template_data = template_data or {"ImageId": "ami-1", "SecurityGroupIds": ["sg-1"]}
        self.secret_key = secret_key
        self.tags_read: list[str] = []

    def tags(self, arn: str) -> dict[str, str]:
        self.tags_read.append(arn)
        return {"opsflow:managed": "true"}

    def group(self, name: str) -> dict[str, Any]:
        return {
            "AutoScalingGroupARN": f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:uuid-1:autoScalingGroupName/{name}",
            "VPCZoneIdentifier": "subnet-a,subnet-b",
        }

    def launch_configuration_arn(self, name: str) -> str:
        return f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:launchConfiguration:uuid-2:launchConfigurationName/{name}"

    def launch_template_id(self, template: dict[str, Any]) -> str:
        return "lt-1"

    def launch_template_data(self, template_id: str, version: str | None) -> dict[str, Any]:
        return self.template_data

    def instance_profile_role_arns(self, profile: dict[str, Any]) -> list[str]:
        return [f"arn:aws:iam::{ACCOUNT}:role/app-instance"]

    def secret(self, secret_id: str) -> dict[str, Any]:
        arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{secret_id}-AbCdEf"
        return {"ARN": arn, **({"KmsKeyId": self.secret_key} if self.secret_key else {})}

    def secret_arn(self, secret_id: str) -> str:
        return str(self.secret(secret_id)["ARN"])

    def kms_key_arn(self, key_id: str) -> str | None:
        return None if key_id.startswith("alias/aws/") else f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}"

    def table_hash_key(self, table: str) -> str | None:
        return {"idempotency": "id"}.get(table)


def checks(service: str, operation: str, lookups: Any = None, **params: Any) -> list[Authorization]:
    return authorizations(Call(service, operation, params, REGION, ACCOUNT), lookups or FakeLookups())


def summary(found: list[Authorization]) -> list[tuple[str, str]]:
    return [(a.action.full_name, a.arn) for a in found]


def test_an_action_without_resource_types_is_authorized_on_star() -> None:
    assert summary(checks("ec2", "DescribeInstances")) == [("ec2:DescribeInstances", "*")]


def test_a_call_on_resources_without_a_rule_fails_loudly() -> None:
    with pytest.raises(NotModelled, match="ec2:ModifyInstanceAttribute"):
        checks("ec2", "ModifyInstanceAttribute", InstanceId="i-1", DisableApiStop={"Value": True})


def test_create_image_is_authorized_on_the_instance_the_image_and_its_snapshots_and_tags_them() -> None:
    lookups = FakeLookups()
    found = checks(
        "ec2",
        "CreateImage",
        lookups,
        InstanceId="i-1",
        Name="web",
        TagSpecifications=[
            {"ResourceType": "image", "Tags": [{"Key": "opsflow:created-by", "Value": "opsflow"}]},
            {"ResourceType": "snapshot", "Tags": [{"Key": "opsflow:created-by", "Value": "opsflow"}]},
        ],
    )
    assert summary(found) == [
        ("ec2:CreateImage", f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-1"),
        ("ec2:CreateImage", f"arn:aws:ec2:{REGION}::image/*"),
        ("ec2:CreateImage", f"arn:aws:ec2:{REGION}::snapshot/*"),
        ("ec2:CreateTags", f"arn:aws:ec2:{REGION}::image/*"),
        ("ec2:CreateTags", f"arn:aws:ec2:{REGION}::snapshot/*"),
    ]
    image, tag_image = found[1], found[3]
    assert image.context["aws:RequestTag/opsflow:created-by"] == "opsflow"
    assert tag_image.context["ec2:CreateAction"] == "CreateImage"
    assert tag_image.on_behalf_of == "ec2:CreateImage"
    # The instance's tags are read only when a policy asks for them, and the new image has none.
    assert found[0].lookup_key("aws:ResourceTag/opsflow:managed") == "true"
    assert image.lookup_key("aws:ResourceTag/opsflow:managed") is None
    assert lookups.tags_read == [f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-1"]


def test_a_group_updated_with_a_launch_template_is_checked_for_what_it_launches() -> None:
    lookups = FakeLookups(
        {
            "ImageId": "ami-1",
            "SecurityGroupIds": ["sg-1"],
            "KeyName": "ops",
            "IamInstanceProfile": {"Name": "app"},
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "web"}]}],
        }
    )
    found = checks(
        "autoscaling",
        "UpdateAutoScalingGroup",
        lookups,
        AutoScalingGroupName="web",
        LaunchTemplate={"LaunchTemplateId": "lt-1", "Version": "2"},
    )
    ec2 = f"arn:aws:ec2:{REGION}:{ACCOUNT}"
    assert summary(found) == [
        ("autoscaling:UpdateAutoScalingGroup", lookups.group("web")["AutoScalingGroupARN"]),
        ("ec2:RunInstances", TEMPLATE_ARN),
        ("ec2:RunInstances", f"arn:aws:ec2:{REGION}::image/ami-1"),
        ("ec2:RunInstances", f"{ec2}:instance/*"),
        ("ec2:RunInstances", f"{ec2}:volume/*"),
        ("ec2:RunInstances", f"{ec2}:network-interface/*"),
        ("ec2:RunInstances", f"{ec2}:security-group/sg-1"),
        ("ec2:RunInstances", f"{ec2}:subnet/subnet-a"),
        ("ec2:RunInstances", f"{ec2}:subnet/subnet-b"),
        ("ec2:RunInstances", f"{ec2}:key-pair/ops"),
        ("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/app-instance"),
        ("ec2:CreateTags", f"{ec2}:instance/*"),
    ]
    by_arn = {a.arn: a for a in found}
    # The group's subnets are not the template's; everything else comes from the template.
    assert by_arn[f"{ec2}:subnet/subnet-a"].context["ec2:IsLaunchTemplateResource"] is False
    assert by_arn[f"{ec2}:security-group/sg-1"].context["ec2:IsLaunchTemplateResource"] is True
    assert by_arn[f"{ec2}:subnet/subnet-a"].context["ec2:LaunchTemplate"] == TEMPLATE_ARN
    assert by_arn[f"arn:aws:iam::{ACCOUNT}:role/app-instance"].context == {
        "iam:PassedToService": "ec2.amazonaws.com"
    }
    assert found[3].context == {
        "ec2:LaunchTemplate": TEMPLATE_ARN,
        "ec2:IsLaunchTemplateResource": True,
        "aws:RequestTag/team": "web",
        "aws:TagKeys": ["team"],
    }
    assert found[-1].context["ec2:CreateAction"] == "RunInstances"


def test_an_image_from_a_parameter_is_read_with_ssm_get_parameters() -> None:
    lookups = FakeLookups({"ImageId": "resolve:ssm:/golden/web"})
    found = checks(
        "autoscaling",
        "StartInstanceRefresh",
        lookups,
        AutoScalingGroupName="web",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateId": "lt-1", "Version": "3"}},
    )
    assert ("ssm:GetParameters", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/golden/web") in summary(found)
    assert not any("image/" in arn for _, arn in summary(found))


def test_a_template_version_on_a_parameter_reads_it() -> None:
    found = checks(
        "ec2",
        "CreateLaunchTemplateVersion",
        LaunchTemplateId="lt-1",
        LaunchTemplateData={
            "ImageId": "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
        },
    )
    assert summary(found)[1] == (
        "ssm:GetParameters",
        f"arn:aws:ssm:{REGION}::parameter/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
    )
    assert (
        len(
            checks(
                "ec2",
                "CreateLaunchTemplateVersion",
                LaunchTemplateId="lt-1",
                LaunchTemplateData={"ImageId": "ami-1"},
            )
        )
        == 1
    )


def test_a_group_resized_or_refreshed_without_a_template_launches_nothing_yet() -> None:
    for operation, params in (
        ("UpdateAutoScalingGroup", {"MinSize": 0, "MaxSize": 0, "DesiredCapacity": 0}),
        ("StartInstanceRefresh", {}),
    ):
        found = checks("autoscaling", operation, AutoScalingGroupName="web", **params)
        assert [a.action.full_name for a in found] == [f"autoscaling:{operation}"]


def test_a_launch_configuration_needs_ec2_reads_and_passes_its_profile() -> None:
    found = checks(
        "autoscaling",
        "CreateLaunchConfiguration",
        LaunchConfigurationName="batch-2",
        ImageId="ami-1",
        IamInstanceProfile="app",
    )
    actions = [a.action.full_name for a in found]
    assert actions[0] == "autoscaling:CreateLaunchConfiguration"
    assert {"ec2:DescribeImages", "ec2:DescribeKeyPairs", "ec2:DescribeSecurityGroups"} <= set(actions)
    assert summary(found)[-1] == ("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/app-instance")


def test_ecs_tags_on_create_and_task_roles() -> None:
    found = checks(
        "ecs",
        "RegisterTaskDefinition",
        family="web",
        containerDefinitions=[],
        taskRoleArn=f"arn:aws:iam::{ACCOUNT}:role/web-task",
        tags=[{"key": "opsflow:managed", "value": "true"}],
    )
    assert summary(found) == [
        ("ecs:RegisterTaskDefinition", f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/web:*"),
        ("ecs:TagResource", f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/web:*"),
        ("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/web-task"),
    ]
    assert found[1].context["ecs:CreateAction"] == "RegisterTaskDefinition"
    assert found[2].context["iam:PassedToService"] == "ecs-tasks.amazonaws.com"


def test_a_secret_under_a_customer_key_is_decrypted_through_secrets_manager() -> None:
    assert [
        a.action.full_name for a in checks("secretsmanager", "GetSecretValue", SecretId="opsflow/slack")
    ] == ["secretsmanager:GetSecretValue"]
    found = checks(
        "secretsmanager", "GetSecretValue", FakeLookups(secret_key="k-1"), SecretId="opsflow/slack"
    )
    decrypt = found[-1]
    assert (decrypt.action.full_name, decrypt.arn) == (
        "kms:Decrypt",
        f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k-1",
    )
    assert decrypt.context == {
        "kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com",
        "kms:EncryptionContext:SecretARN": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:opsflow/slack-AbCdEf",
    }


def test_a_schedule_passes_its_role_to_the_scheduler() -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/opsflow-SchedulerRole"
    found = checks(
        "scheduler", "CreateSchedule", Name="qa-stop", GroupName="envs", Target={"Arn": "x", "RoleArn": role}
    )
    assert summary(found) == [
        ("scheduler:CreateSchedule", f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/envs/qa-stop"),
        ("iam:PassRole", role),
    ]
    assert found[1].context == {"iam:PassedToService": "scheduler.amazonaws.com"}


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("GetItem", {"Key": {"id": {"S": "notify-event#e-1#ops"}}}),
        ("PutItem", {"Item": {"id": {"S": "notify-event#e-1#ops"}, "expiration": {"N": "1"}}}),
        ("UpdateItem", {"Key": {"id": {"S": "notify-event#e-1#ops"}}}),
        ("DeleteItem", {"Key": {"id": {"S": "notify-event#e-1#ops"}}}),
    ],
)
def test_an_items_partition_key_is_its_leading_key(operation: str, params: dict[str, Any]) -> None:
    (found,) = checks("dynamodb", operation, TableName="idempotency", **params)

    assert found.arn == f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/idempotency"
    assert found.context == {"dynamodb:LeadingKeys": ["notify-event#e-1#ops"]}


def test_a_table_that_does_not_exist_carries_no_leading_key() -> None:
    (found,) = checks("dynamodb", "GetItem", TableName="gone", Key={"id": {"S": "x"}})

    assert found.context == {}


def test_a_transaction_needs_each_items_own_permission() -> None:
    found = checks(
        "dynamodb",
        "TransactWriteItems",
        TransactItems=[{"Put": {"TableName": "capacity"}}, {"ConditionCheck": {"TableName": "runs"}}],
    )
    assert summary(found) == [
        ("dynamodb:PutItem", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/capacity"),
        ("dynamodb:ConditionCheckItem", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/runs"),
    ]


def test_a_condition_key_the_reference_does_not_list_is_a_modelling_error() -> None:
    from opsflow_local.iam import reference

    with pytest.raises(NotModelled, match="ec2:InstanceType"):
        Authorization(
            reference.action("ec2", "DeleteSnapshot"), "snapshot", "arn", {"ec2:InstanceType": "t3"}
        )


def test_a_builder_launch_is_authorized_on_what_it_uses_and_creates_and_passes_its_profile_role() -> None:
    tags = [{"Key": "opsflow:created-by", "Value": "opsflow"}]
    found = checks(
        "ec2",
        "RunInstances",
        ImageId="ami-1",
        SubnetId="subnet-a",
        SecurityGroupIds=["sg-1"],
        IamInstanceProfile={"Name": "web-builder"},
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": tags},
            {"ResourceType": "volume", "Tags": tags},
        ],
    )

    assert summary(found) == [
        ("ec2:RunInstances", f"arn:aws:ec2:{REGION}::image/ami-1"),
        ("ec2:RunInstances", f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/*"),
        ("ec2:RunInstances", f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/*"),
        ("ec2:RunInstances", f"arn:aws:ec2:{REGION}:{ACCOUNT}:network-interface/*"),
        ("ec2:RunInstances", f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/subnet-a"),
        ("ec2:RunInstances", f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-1"),
        ("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/app-instance"),
        ("ec2:CreateTags", f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/*"),
        ("ec2:CreateTags", f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/*"),
    ]
    assert found[1].context["aws:RequestTag/opsflow:created-by"] == "opsflow"
    assert found[6].context == {"iam:PassedToService": "ec2.amazonaws.com"}
    assert found[7].context["ec2:CreateAction"] == "RunInstances"


def test_a_command_is_authorized_on_its_document_and_each_instance() -> None:
    lookups = FakeLookups()
    found = checks("ssm", "SendCommand", lookups, DocumentName="AWS-RunShellScript", InstanceIds=["i-1"])

    # AWS's own documents belong to no account.
    assert summary(found) == [
        ("ssm:SendCommand", f"arn:aws:ssm:{REGION}::document/AWS-RunShellScript"),
        ("ssm:SendCommand", f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-1"),
    ]
    assert found[1].lookup_key("aws:ResourceTag/opsflow:managed") == "true"
    own = checks("ssm", "SendCommand", DocumentName="Build-Web", InstanceIds=["i-1"])
    assert own[0].arn == f"arn:aws:ssm:{REGION}:{ACCOUNT}:document/Build-Web"


def test_copy_image_is_authorized_on_the_source_in_its_own_region_and_on_the_tagged_copy() -> None:
    lookups = FakeLookups()
    found = authorizations(
        Call(
            "ec2",
            "CopyImage",
            {
                "SourceImageId": "ami-1",
                "SourceRegion": REGION,
                "Name": "web",
                "TagSpecifications": [
                    {"ResourceType": "image", "Tags": [{"Key": "opsflow:created-by", "Value": "opsflow"}]},
                    {"ResourceType": "snapshot", "Tags": [{"Key": "opsflow:created-by", "Value": "opsflow"}]},
                ],
            },
            "eu-west-1",
            ACCOUNT,
        ),
        lookups,
    )

    assert summary(found) == [
        ("ec2:CopyImage", f"arn:aws:ec2:{REGION}::image/ami-1"),
        ("ec2:CopyImage", "arn:aws:ec2:eu-west-1::image/*"),
        ("ec2:CopyImage", "arn:aws:ec2:eu-west-1::snapshot/*"),
        ("ec2:CreateTags", "arn:aws:ec2:eu-west-1::image/*"),
        ("ec2:CreateTags", "arn:aws:ec2:eu-west-1::snapshot/*"),
    ]
    source, copy, tag_copy = found[0], found[1], found[3]
    assert source.lookup_key("aws:ResourceTag/opsflow:managed") == "true"
    assert lookups.tags_read == [f"arn:aws:ec2:{REGION}::image/ami-1"]
    assert copy.context["aws:RequestTag/opsflow:created-by"] == "opsflow"
    assert tag_copy.context["ec2:CreateAction"] == "CopyImage"


def test_sharing_is_authorized_on_the_image_and_each_snapshot() -> None:
    image = checks(
        "ec2", "ModifyImageAttribute", ImageId="ami-1", LaunchPermission={"Add": [{"UserId": "2" * 12}]}
    )
    snapshot = checks(
        "ec2", "ModifySnapshotAttribute", SnapshotId="snap-1", Attribute="createVolumePermission"
    )

    assert summary(image) == [("ec2:ModifyImageAttribute", f"arn:aws:ec2:{REGION}::image/ami-1")]
    assert summary(snapshot) == [("ec2:ModifySnapshotAttribute", f"arn:aws:ec2:{REGION}::snapshot/snap-1")]


def test_an_automation_is_authorized_on_its_definition_document_and_new_execution() -> None:
    found = checks("ssm", "StartAutomationExecution", DocumentName="AWS-RestartEC2Instance")

    # AWS-owned runbooks belong to no account; the version is the one asked for ($DEFAULT when none is).
    assert summary(found) == [
        (
            "ssm:StartAutomationExecution",
            f"arn:aws:ssm:{REGION}::automation-definition/AWS-RestartEC2Instance:$DEFAULT",
        ),
        ("ssm:StartAutomationExecution", f"arn:aws:ssm:{REGION}::document/AWS-RestartEC2Instance"),
        ("ssm:StartAutomationExecution", f"arn:aws:ssm:{REGION}:{ACCOUNT}:automation-execution/*"),
    ]
    assert found[2].context == {}
    own = checks(
        "ssm",
        "StartAutomationExecution",
        DocumentName="Team-Restart",
        DocumentVersion="2",
        Tags=[{"Key": "team", "Value": "web"}],
    )
    assert own[0].arn == f"arn:aws:ssm:{REGION}:{ACCOUNT}:automation-definition/Team-Restart:2"
    assert own[1].arn == f"arn:aws:ssm:{REGION}:{ACCOUNT}:document/Team-Restart"
    assert own[2].context == {"aws:RequestTag/team": "web", "aws:TagKeys": ["team"]}


def test_reading_or_stopping_an_automation_is_authorized_on_the_execution() -> None:
    for operation in ("GetAutomationExecution", "StopAutomationExecution"):
        found = checks("ssm", operation, AutomationExecutionId="4105a4fc-f944-11e6-9d32-0a1b2c3d495e")
        assert summary(found) == [
            (
                f"ssm:{operation}",
                f"arn:aws:ssm:{REGION}:{ACCOUNT}:automation-execution/4105a4fc-f944-11e6-9d32-0a1b2c3d495e",
            )
        ]
