"""IAM held in the embedded runtime: a run made with a template that lacks a permission fails as it would
on AWS, denied, naming the role, the action and the resource, and leaves nothing behind."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from opsflow_local import EmbeddedAws, seed
from opsflow_local.emulation.scheduler import ScheduleTargetDenied
from opsflow_local.iam import translate
from opsflow_local.runtime import DEFAULT_TEMPLATE, DeploymentError
from opsflow_local.template import Template

ALICE = "arn:aws:iam::123456789012:user/alice"
ROOT = DEFAULT_TEMPLATE.parent


def template_copy(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of template.yaml, changed, beside the real functions, layer and state machines."""
    body = Template.load(DEFAULT_TEMPLATE, "us-east-1").body
    change(body)
    for shared in ("functions", "layers", "statemachines"):
        (tmp_path / shared).symlink_to(ROOT / shared)
    path = tmp_path / "template.yaml"
    path.write_text(json.dumps(body, indent=1))  # CloudFormation reads JSON templates as well
    return path


def statements(body: dict[str, Any], function: str) -> list[dict[str, Any]]:
    return body["Resources"][function]["Properties"]["Policies"][0]["Statement"]


def without_statements(function: str, *sids: str) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        kept = [s for s in statements(body, function) if s.get("Sid") not in sids]
        assert len(kept) == len(statements(body, function)) - len(sids), "a statement to remove is missing"
        body["Resources"][function]["Properties"]["Policies"][0]["Statement"] = kept

    return change


@pytest.fixture
def deploy(tmp_path: Path) -> Iterator[Callable[[Callable[[dict[str, Any]], None]], EmbeddedAws]]:
    deployed: list[EmbeddedAws] = []

    def start(change: Callable[[dict[str, Any]], None], **options: Any) -> EmbeddedAws:
        aws = EmbeddedAws(template_copy(tmp_path, change), **options)
        deployed.append(aws.__enter__())
        return aws

    yield start
    for aws in deployed:
        aws.__exit__(None, None, None)


def bake(aws: EmbeddedAws, **request: Any) -> dict[str, Any]:
    response = aws.api.post("/runs", json={"workflow": "ami_bake", **request}, principal=ALICE)
    assert response.status_code == 202, response.json()
    return aws.wait_for_run(response.json()["run_id"], timeout=60)


def own_images(aws: EmbeddedAws) -> list[dict[str, Any]]:
    return list(aws.client("ec2").describe_images(Owners=["self"])["Images"])


def test_a_bake_without_create_image_is_denied_naming_the_action(deploy: Any) -> None:
    aws = deploy(
        without_statements(
            "AmiBakeStepsFunction", "ImageOnlyOptedInInstances", "CreateOnlyTaggedImagesAndSnapshots"
        )
    )
    net = seed.network(aws)
    instance_id = seed.instance(aws, net, "app-1")
    seed.launch_template_group(aws, net, "web")

    run = bake(aws, instance_id=instance_id, asg_name="web")

    assert run["status"] == "FAILED"
    message = run["error"]["message"]
    assert "UnauthorizedOperation" in message
    assert "assumed-role/opsflow-AmiBakeStepsFunctionRole/" in message
    assert "is not authorized to perform: ec2:CreateImage on resource: " in message
    assert own_images(aws) == []
    denied = [d.authorization.action.full_name for d in aws.iam.denials]
    assert denied == ["ec2:CreateImage"]


def test_a_tag_condition_the_instance_does_not_meet_is_denied(deploy: Any) -> None:
    def ask_for_another_value(body: dict[str, Any]) -> None:
        (statement,) = [
            s for s in statements(body, "AmiBakeStepsFunction") if s["Sid"] == "ImageOnlyOptedInInstances"
        ]
        statement["Condition"]["StringEquals"]["aws:ResourceTag/opsflow:managed"] = "yes"

    aws = deploy(ask_for_another_value)
    net = seed.network(aws)
    instance_id = seed.instance(aws, net, "app-1")  # tagged opsflow:managed=true, as the guard asks
    seed.launch_template_group(aws, net, "web")

    run = bake(aws, instance_id=instance_id, asg_name="web")

    assert run["status"] == "FAILED"
    assert (
        f"ec2:CreateImage on resource: arn:aws:ec2:us-east-1:123456789012:instance/{instance_id} because no "
        "identity-based policy allows the ec2:CreateImage action"
    ) in run["error"]["message"]
    assert own_images(aws) == []


def test_a_group_pointed_at_a_launch_template_needs_run_instances(deploy: Any) -> None:
    aws = deploy(without_statements("AmiBakeStepsFunction", "LaunchWhatTheGroupLaunches"))
    net = seed.network(aws)
    instance_id = seed.instance(aws, net, "app-1")
    template_id = seed.launch_template_group(aws, net, "web")

    run = bake(aws, instance_id=instance_id, asg_name="web")

    assert run["status"] == "FAILED"
    assert run["error"]["step"] == "point_group"
    message = run["error"]["message"]
    assert "UpdateAutoScalingGroup failed: AccessDenied" in message
    assert "is not authorized to perform: ec2:RunInstances on resource: " in message
    assert "(checked by AWS for autoscaling:UpdateAutoScalingGroup)" in message
    # Rolled back: the group still on version 1, the new version and the image removed.
    group = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["web"])
    assert group["AutoScalingGroups"][0]["LaunchTemplate"]["Version"] in ("1", "$Default")
    listed = aws.client("ec2").describe_launch_template_versions(LaunchTemplateId=template_id)
    assert [v["VersionNumber"] for v in listed["LaunchTemplateVersions"]] == [1]
    assert own_images(aws) == []


def test_with_iam_off_the_same_template_bakes(tmp_path: Path) -> None:
    path = template_copy(tmp_path, without_statements("AmiBakeStepsFunction", "LaunchWhatTheGroupLaunches"))
    with EmbeddedAws(path, iam=False) as aws:
        net = seed.network(aws)
        instance_id = seed.instance(aws, net, "app-1")
        seed.launch_template_group(aws, net, "web")
        assert bake(aws, instance_id=instance_id, asg_name="web")["status"] == "SUCCEEDED"


def test_a_role_its_service_cannot_assume_does_not_deploy(tmp_path: Path) -> None:
    def trust_ec2(body: dict[str, Any]) -> None:
        body["Resources"]["AmiBakeStepsFunction"]["Properties"]["AssumeRolePolicyDocument"] = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }

    with pytest.raises(
        DeploymentError, match=r"AmiBakeStepsFunction.*cannot be assumed by lambda\.amazonaws\.com"
    ):
        EmbeddedAws(template_copy(tmp_path, trust_ec2)).__enter__()


def test_every_role_is_assumed_by_its_service_only() -> None:
    roles = translate(Template.load(DEFAULT_TEMPLATE, "us-east-1"))
    expected = {
        **{r: "lambda.amazonaws.com" for r in roles.function_roles.values()},
        **{r: "states.amazonaws.com" for r in roles.state_machine_roles.values()},
        "SchedulerRole": "scheduler.amazonaws.com",
        "ApiGatewayCloudWatchRole": "apigateway.amazonaws.com",
        "RunbookRole": "ssm.amazonaws.com",
    }
    assert set(expected) == set(roles.roles)
    for logical_id, role in roles.roles.items():
        principals = [s["Principal"] for s in role.trust_policy["Statement"]]
        assert principals in ([{"Service": [expected[logical_id]]}], [{"Service": expected[logical_id]}]), (
            logical_id
        )


def test_a_schedule_whose_role_may_not_invoke_its_target_is_refused(deploy: Any) -> None:
    def no_invoke(body: dict[str, Any]) -> None:
        body["Resources"]["SchedulerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0][
            "Resource"
        ] = {"Fn::GetAtt": ["NotifyFunction", "Arn"]}

    aws = deploy(no_invoke)
    with pytest.raises(ScheduleTargetDenied, match=r"lambda:InvokeFunction on resource: .*ScheduleFunction"):
        aws.emulation.scheduler.fire(aws.resource_name("DatabaseRecheckSchedule"), datetime.now(UTC))


def alarm_event() -> dict[str, Any]:
    return dict(json.loads((ROOT / "events/cloudwatch/alarm_state_change.json").read_text()))


def secret_under_a_customer_key(aws: EmbeddedAws) -> None:
    key = aws.client("kms").create_key(Description="webhooks")["KeyMetadata"]["KeyId"]
    aws.client("secretsmanager").update_secret(SecretId="opsflow/local/slack", KmsKeyId=key)


def test_a_webhook_secret_under_a_customer_key_is_read_through_secrets_manager(
    aws_default: EmbeddedAws,
) -> None:
    secret_under_a_customer_key(aws_default)
    aws_default.lambdas.invoke(aws_default.resource_name("NotifyFunction"), alarm_event())
    assert any(n.platform == "slack" for n in aws_default.notifications)
    assert aws_default.iam.denials == []


def test_without_kms_decrypt_the_secret_cannot_be_read(deploy: Any) -> None:
    aws = deploy(without_statements("NotifyFunction", "DecryptWebhookSecrets"))
    secret_under_a_customer_key(aws)
    aws.lambdas.invoke(aws.resource_name("NotifyFunction"), alarm_event())
    assert not any(n.platform == "slack" for n in aws.notifications)
    assert any(n.platform == "teams" for n in aws.notifications)  # its secret is under the AWS managed key
    (denial,) = aws.iam.denials
    assert denial.authorization.action.full_name == "kms:Decrypt"
    assert denial.authorization.on_behalf_of == "secretsmanager:GetSecretValue"


def test_the_notify_function_may_write_only_its_own_items_of_the_idempotency_table(deploy: Any) -> None:
    """dynamodb:LeadingKeys held: with the statement narrowed to another prefix, its de-duplication write
    is denied; the message still goes out, since a state store that fails costs the quiet, not the message."""

    def other_prefix(body: dict[str, Any]) -> None:
        (statement,) = [
            s for s in statements(body, "NotifyFunction") if s.get("Sid") == "RememberWhatWasSent"
        ]
        statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] = ["ci-hook#*"]

    aws = deploy(other_prefix)
    aws.lambdas.invoke(aws.resource_name("NotifyFunction"), alarm_event())

    assert any(n.platform == "slack" for n in aws.notifications)
    denied = {(d.authorization.action.full_name, str(d.authorization.context)) for d in aws.iam.denials}
    assert (
        "dynamodb:PutItem",
        str({"dynamodb:LeadingKeys": ["notify-event#c4c1c1c9-6542-e61b-6ef0-8c4d36933a92#local-slack"]}),
    ) in denied


CHATBOT_TOPIC = "arn:aws:sns:us-east-1:123456789012:opsflow-chatbot"


CHATBOT_CHANNEL = {
    "NotifyChannels": json.dumps([{"name": "q", "platform": "chatbot", "topic_arn": CHATBOT_TOPIC}]),
    "ChatbotTopicArns": CHATBOT_TOPIC,
}


def topic_under_a_customer_key(aws: EmbeddedAws) -> None:
    key = aws.client("kms").create_key(Description="chatbot topic")["KeyMetadata"]["Arn"]
    aws.client("sns").create_topic(Name="opsflow-chatbot", Attributes={"KmsMasterKeyId": key})


@pytest.mark.parametrize("granted", [True, False])
def test_publishing_to_a_topic_under_a_customer_key_needs_its_data_keys(deploy: Any, granted: bool) -> None:
    def change(body: dict[str, Any]) -> None:
        if not granted:
            kept = [
                s for s in statements(body, "NotifyFunction") if "EncryptChatbotNotifications" not in str(s)
            ]
            body["Resources"]["NotifyFunction"]["Properties"]["Policies"][0]["Statement"] = kept

    aws = deploy(change, parameters=CHATBOT_CHANNEL)
    topic_under_a_customer_key(aws)
    (outcome,) = aws.lambdas.invoke(aws.resource_name("NotifyFunction"), alarm_event())["outcomes"]

    if granted:
        assert outcome["outcome"] == "delivered"
        assert aws.iam.denials == []
    else:
        assert outcome["outcome"] == "dead-lettered"
        assert {d.authorization.action.full_name for d in aws.iam.denials} >= {"kms:GenerateDataKey"}
        assert all(d.authorization.on_behalf_of == "sns:Publish" for d in aws.iam.denials)


@pytest.fixture
def aws_default() -> Iterator[EmbeddedAws]:
    with EmbeddedAws() as embedded:
        yield embedded


def group_with_instance_profile(aws: EmbeddedAws, net: seed.Network, role_path: str) -> None:
    iam = aws.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    iam.create_role(RoleName="web-instance", Path=role_path, AssumeRolePolicyDocument=json.dumps(trust))
    iam.create_instance_profile(InstanceProfileName="web-instance")
    iam.add_role_to_instance_profile(InstanceProfileName="web-instance", RoleName="web-instance")
    template_id = seed.launch_template_group(aws, net, "web")
    aws.client("ec2").create_launch_template_version(
        LaunchTemplateId=template_id,
        SourceVersion="1",
        LaunchTemplateData={"IamInstanceProfile": {"Name": "web-instance"}},
    )
    aws.client("autoscaling").update_auto_scaling_group(
        AutoScalingGroupName="web", LaunchTemplate={"LaunchTemplateId": template_id, "Version": "2"}
    )


@pytest.mark.parametrize(("role_path", "status"), [("/app/", "SUCCEEDED"), ("/", "FAILED")])
def test_only_roles_under_the_passable_path_are_passed_to_ec2(role_path: str, status: str) -> None:
    with EmbeddedAws(parameters={"PassableRolePath": "/app/"}) as aws:
        net = seed.network(aws)
        instance_id = seed.instance(aws, net, "app-1")
        group_with_instance_profile(aws, net, role_path)

        run = bake(aws, instance_id=instance_id, asg_name="web")

        assert run["status"] == status, run["error"]
        if status == "FAILED":
            assert (
                "is not authorized to perform: iam:PassRole on resource: "
                "arn:aws:iam::123456789012:role/web-instance"
            ) in run["error"]["message"]
