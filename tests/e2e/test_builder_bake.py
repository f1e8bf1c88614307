"""AMI bake on a builder end to end, with the SSM Run Command emulation: a temporary instance launched like
the group's runs the build, is imaged, and is terminated whatever happens."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from opsflow_local import EmbeddedAws, seed

ALICE = "arn:aws:iam::123456789012:user/alice"
BUILD = [
    "cd /opt/web",
    "curl -fsSL https://artifacts.example.com/web-2.4.1.tar.gz | tar xz",
    "systemctl enable web",
]


@pytest.fixture
def group(aws: EmbeddedAws, net: seed.Network) -> str:
    seed.launch_template_group(aws, net, "web")
    seed.builder_profile(aws, "web-builder")
    return "web"


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "waited too long"
        time.sleep(0.05)


def start(aws: EmbeddedAws, request: dict[str, Any]) -> Any:
    return aws.api.post("/runs", json=request, principal=ALICE)


def builder_bake(**builder: Any) -> dict[str, Any]:
    return {
        "workflow": "ami_bake",
        "asg_name": "web",
        "builder": {"instance_profile": "web-builder", "commands": BUILD, **builder},
    }


def builders(aws: EmbeddedAws) -> dict[str, str]:
    """Every builder ever launched, with its state."""
    reservations = aws.client("ec2").describe_instances(
        Filters=[{"Name": "tag:opsflow:builder", "Values": ["web"]}]
    )["Reservations"]
    return {i["InstanceId"]: i["State"]["Name"] for r in reservations for i in r["Instances"]}


def group_version(aws: EmbeddedAws) -> str:
    found = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["web"])
    return str(found["AutoScalingGroups"][0]["LaunchTemplate"]["Version"])


def test_a_builder_bake_runs_the_build_images_the_builder_and_terminates_it(
    aws: EmbeddedAws, group: str
) -> None:
    response = start(aws, builder_bake())
    assert response.status_code == 202, response.json()
    assert response.json()["plan"]["actions"][1].startswith(
        "Run 3 shell command(s) on it with SSM Run Command"
    )
    run = aws.wait_for_run(response.json()["run_id"], timeout=120)

    assert run["status"] == "SUCCEEDED", run["error"]
    [(builder, state)] = builders(aws).items()
    assert state == "terminated"
    image = aws.client("ec2").describe_images(ImageIds=[run["output"]["image_id"]])["Images"][0]
    tags = {t["Key"]: t["Value"] for t in image["Tags"]}
    assert tags["opsflow:source-instance"] == builder
    assert group_version(aws) == "2"
    [invocation] = [i for i in aws.emulation.ssm.invocations() if i.instance_id == builder]
    assert invocation.status == "Success"
    steps = list(dict.fromkeys(s["step"] for s in run["steps"] if s["status"] == "succeeded"))
    assert steps[:5] == ["guard", "launch_builder", "check_builder", "run_command", "check_command"]
    assert "terminate_builder" in steps


def test_a_failing_build_leaves_no_image_terminates_the_builder_and_quotes_the_output(
    aws: EmbeddedAws, group: str
) -> None:
    aws.emulation.ssm.respond(
        exit_code=1, stdout="fetching web 2.4.1\n", stderr="tar: Error is not recoverable\n"
    )
    response = start(aws, builder_bake())
    run = aws.wait_for_run(response.json()["run_id"], timeout=120)

    assert run["status"] == "FAILED"
    assert run["error"]["step"] == "check_command"
    message = run["error"]["message"]
    assert "ended Failed with exit code 1" in message
    assert "tar: Error is not recoverable" in message
    [(builder, state)] = builders(aws).items()
    assert state == "terminated"
    assert f"terminated builder {builder}" in run["error"]["rollback"]["undone"]
    assert aws.client("ec2").describe_images(Owners=["self"])["Images"] == []
    assert group_version(aws) == "1"


def test_an_aborted_builder_bake_terminates_its_builder(aws: EmbeddedAws, group: str) -> None:
    aws.emulation.ssm.respond(run_seconds=36_000)  # a build of ten hours
    run_id = start(aws, builder_bake(timeout_seconds=40_000)).json()["run_id"]
    wait_for(lambda: any(s["step"] == "run_command" for s in aws.api.get(f"/runs/{run_id}").json()["steps"]))

    assert aws.api.post(f"/runs/{run_id}/abort", principal=ALICE).status_code == 202
    wait_for(lambda: set(builders(aws).values()) == {"terminated"})
    assert aws.client("ec2").describe_images(Owners=["self"])["Images"] == []


@pytest.mark.parametrize(
    ("builder", "says"),
    [
        (
            {"instance_profile": "web-builder"},
            "give commands (shell lines to run on the builder) or a document",
        ),
        ({"commands": []}, "give commands"),
        ({"commands": ["make"], "document": "Build-Web"}, "give commands or a document, not both"),
    ],
)
def test_a_builder_without_a_build_is_refused_naming_the_field(
    aws: EmbeddedAws, group: str, builder: dict[str, Any], says: str
) -> None:
    response = start(aws, {"workflow": "ami_bake", "asg_name": "web", "builder": builder})

    assert response.status_code == 400, response.json()
    [problem] = response.json()["problems"]
    assert problem["field"] == "builder"
    assert says in problem["problem"]
    assert builders(aws) == {}


def test_a_builder_without_an_instance_profile_is_refused_before_anything_launches(
    aws: EmbeddedAws, group: str
) -> None:
    response = start(aws, {"workflow": "ami_bake", "asg_name": "web", "builder": {"commands": BUILD}})

    assert response.status_code == 422, response.json()
    assert "builder.instance_profile" in response.json()["message"]
    assert builders(aws) == {}
