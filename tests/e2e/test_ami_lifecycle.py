"""AMI lifecycle end to end on the embedded runtime: retention by count and age that never retires an image
something uses, deprecation, and disabling before deregistration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opsflow_local import EmbeddedAws, seed

ALICE = "arn:aws:iam::123456789012:user/alice"


def start(aws: EmbeddedAws, request: dict[str, Any], key: str | None = None) -> str:
    headers = {"Idempotency-Key": key} if key else None
    response = aws.api.post("/runs", json=request, principal=ALICE, headers=headers)
    assert response.status_code == 202, response.json()
    return str(response.json()["run_id"])


def images(aws: EmbeddedAws) -> dict[str, dict[str, Any]]:
    found = aws.client("ec2").describe_images(Owners=["self"], IncludeDisabled=True)["Images"]
    return {image["ImageId"]: image for image in found}


def snapshots_of(image: dict[str, Any]) -> set[str]:
    return {m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m}


def live_snapshots(aws: EmbeddedAws) -> set[str]:
    return {s["SnapshotId"] for s in aws.client("ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]}


@pytest.fixture
def baked(aws: EmbeddedAws, net: seed.Network) -> dict[int, str]:
    """Images baked for group web 100, 60, 40 and 5 days ago; the group's launch template version 2, which
    it uses, is the 100-day-old one."""
    template_id = seed.launch_template_group(aws, net, "web")
    made = {days: seed.baked_image(aws, net, "web", days) for days in (100, 60, 40, 5)}
    aws.client("ec2").create_launch_template_version(
        LaunchTemplateId=template_id, SourceVersion="1", LaunchTemplateData={"ImageId": made[100]}
    )
    aws.client("autoscaling").update_auto_scaling_group(
        AutoScalingGroupName="web", LaunchTemplate={"LaunchTemplateId": template_id, "Version": "2"}
    )
    return made


def test_retention_by_age_retires_old_images_but_keeps_the_one_in_use(
    aws: EmbeddedAws, baked: dict[int, str]
) -> None:
    old = [images(aws)[baked[days]] for days in (60, 40)]
    run = aws.wait_for_run(
        start(aws, {"workflow": "ami_lifecycle", "asg_name": "web", "keep": 1, "max_age_days": 30})
    )

    assert run["status"] == "SUCCEEDED", run["error"]
    left = images(aws)
    assert set(left) == {baked[100], baked[5]}
    assert not any(snapshots_of(image) & live_snapshots(aws) for image in old)
    why = {d["image_id"]: (d["action"], d["why"]) for d in run["output"]["decisions"]}
    assert why[baked[5]] == ("keep", "one of the newest 1")
    action, reason = why[baked[100]]
    assert action == "keep"
    assert reason.startswith("beyond the newest 1 and 100 day(s) old, older than 30 days, but used by launch")
    assert "which group web uses" in reason
    assert why[baked[60]][0] == why[baked[40]][0] == "deregister"
    assert run["output"]["summary"] == "2 image(s) deregistered, 0 disabled, 0 deprecated, 2 kept."


def test_an_image_an_instance_runs_is_kept_too(
    aws: EmbeddedAws, net: seed.Network, baked: dict[int, str]
) -> None:
    running = aws.client("ec2").run_instances(ImageId=baked[60], MinCount=1, MaxCount=1)["Instances"][0]

    run = aws.wait_for_run(start(aws, {"workflow": "ami_lifecycle", "asg_name": "web", "keep": 1}))

    assert run["status"] == "SUCCEEDED", run["error"]
    assert set(images(aws)) == {baked[100], baked[60], baked[5]}
    reason = next(d["why"] for d in run["output"]["decisions"] if d["image_id"] == baked[60])
    assert reason.endswith(f"but used by instance(s) {running['InstanceId']}")


def test_a_dry_run_says_what_it_would_remove_and_why_and_removes_nothing(
    aws: EmbeddedAws, baked: dict[int, str]
) -> None:
    request = {"workflow": "ami_lifecycle", "asg_name": "web", "keep": 1, "max_age_days": 50, "dry_run": True}
    response = aws.api.post("/runs", json=request, principal=ALICE)

    assert response.status_code == 200, response.json()
    actions = response.json()["plan"]["actions"]
    assert [line.split(" ")[0] for line in actions] == ["Keep", "Keep", "Deregister", "Keep"]
    assert actions[1].endswith("40 day(s) old, younger than 50 days")
    assert actions[2].startswith(f"Deregister {baked[60]} (web-60-days-old")
    assert len(images(aws)) == 4


def test_kept_images_are_deprecated_after_their_days(aws: EmbeddedAws, baked: dict[int, str]) -> None:
    request = {"workflow": "ami_lifecycle", "asg_name": "web", "keep": 4, "deprecate_after_days": 30}
    run = aws.wait_for_run(start(aws, request))

    assert run["status"] == "SUCCEEDED", run["error"]
    left = images(aws)
    created = datetime.fromisoformat(left[baked[5]]["CreationDate"].replace("Z", "+00:00"))
    deprecated = datetime.fromisoformat(left[baked[5]]["DeprecationTime"].replace("Z", "+00:00"))
    assert abs(deprecated - (created + timedelta(days=30))) < timedelta(minutes=1)
    # Past its date already: deprecated within the minute (EC2 takes no date in the past).
    soon = datetime.fromisoformat(left[baked[100]]["DeprecationTime"].replace("Z", "+00:00"))
    assert soon - datetime.now(UTC) < timedelta(minutes=2)
    # A second run finds them deprecated and leaves them.
    again = aws.wait_for_run(start(aws, request, key="the-next-day"))
    assert again["output"]["summary"] == "0 image(s) deregistered, 0 disabled, 0 deprecated, 4 kept."


def test_disabling_first_deregisters_only_on_a_run_the_given_days_later(
    aws: EmbeddedAws, baked: dict[int, str]
) -> None:
    request = {
        "workflow": "ami_lifecycle",
        "asg_name": "web",
        "keep": 1,
        "max_age_days": 30,
        "disable_days": 7,
    }
    first = aws.wait_for_run(start(aws, request))

    assert first["status"] == "SUCCEEDED", first["error"]
    assert {images(aws)[baked[d]]["State"] for d in (60, 40)} == {"disabled"}
    # A week and a day later, as the tag a lifecycle run writes tells it:
    week_ago = (datetime.now(UTC) - timedelta(days=8)).isoformat(timespec="seconds")
    aws.client("ec2").create_tags(
        Resources=[baked[60], baked[40]], Tags=[{"Key": "opsflow:disabled-at", "Value": week_ago}]
    )
    second = aws.wait_for_run(start(aws, request, key="a-week-later"))

    assert second["status"] == "SUCCEEDED", second["error"]
    assert set(images(aws)) == {baked[100], baked[5]}
