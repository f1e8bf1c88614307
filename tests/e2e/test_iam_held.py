"""IAM held in the embedded runtime: a run made with a template that lacks a permission fails as it would
on AWS, denied, naming the role, the action and the resource, and leaves nothing behind."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from opsflow_local import EmbeddedAws, seed
from opsflow_local.runtime import DEFAULT_TEMPLATE
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

    def start(change: Callable[[dict[str, Any]], None]) -> EmbeddedAws:
        aws = EmbeddedAws(template_copy(tmp_path, change))
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
