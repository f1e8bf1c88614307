"""Each image's fate in an AMI lifecycle run, on fakes: kept by rank, by age or by use, retired, disabled
first, deprecated."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from opsflow.aws.ec2 import Image
from opsflow.workflows.ami_lifecycle.request import AmiLifecycleRequest
from opsflow.workflows.ami_lifecycle.retention import DISABLED_AT, decide

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def image(
    image_id: str, days_old: int, state: str = "available", deprecation: str | None = None, **tags: str
) -> Image:
    created = (NOW - timedelta(days=days_old)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return Image(image_id, f"web-{days_old}", state, None, created, tags, deprecation_time=deprecation)


@dataclass
class FakeEc2:
    images: list[Image]
    instances: dict[str, list[str]] = field(default_factory=dict)

    def find_images(self, tags: dict[str, str]) -> list[Image]:
        return list(self.images)

    def images_of_instances(self) -> dict[str, list[str]]:
        return self.instances


@dataclass
class FakeAutoScaling:
    configurations: list[dict[str, Any]] = field(default_factory=list)

    def all_launch_configurations(self) -> list[dict[str, Any]]:
        return self.configurations

    def all_groups(self) -> list[Any]:
        return []


@dataclass
class FakeAws:
    ec2: FakeEc2
    autoscaling: FakeAutoScaling = field(default_factory=FakeAutoScaling)


def fates(request: dict[str, Any], aws: FakeAws) -> dict[str, str]:
    model = AmiLifecycleRequest.model_validate({"workflow": "ami_lifecycle", "asg_name": "web", **request})
    return {d.image_id: d.action for d in decide(model, aws, NOW)}  # type: ignore[arg-type]


def test_the_newest_are_kept_whatever_their_age_and_the_rest_retired_without_an_age() -> None:
    aws = FakeAws(FakeEc2([image("ami-old", 90), image("ami-new", 1), image("ami-mid", 30)]))

    assert fates({"keep": 2}, aws) == {"ami-new": "keep", "ami-mid": "keep", "ami-old": "deregister"}


def test_with_an_age_only_older_images_beyond_the_newest_are_retired() -> None:
    aws = FakeAws(FakeEc2([image("ami-1", 1), image("ami-10", 10), image("ami-40", 40)]))

    assert fates({"keep": 1, "max_age_days": 30}, aws) == {
        "ami-1": "keep",
        "ami-10": "keep",
        "ami-40": "deregister",
    }


def test_an_image_a_launch_configuration_or_an_instance_uses_is_kept() -> None:
    aws = FakeAws(
        FakeEc2([image("ami-1", 1), image("ami-lc", 50), image("ami-run", 60)], {"ami-run": ["i-1"]}),
        FakeAutoScaling([{"ImageId": "ami-lc", "LaunchConfigurationName": "batch-v3"}]),
    )
    model = AmiLifecycleRequest.model_validate({"workflow": "ami_lifecycle", "asg_name": "web", "keep": 1})
    why = {d.image_id: (d.action, d.why) for d in decide(model, aws, NOW)}  # type: ignore[arg-type]

    assert why["ami-lc"] == ("keep", "beyond the newest 1, but used by launch configuration batch-v3")
    assert why["ami-run"] == ("keep", "beyond the newest 1, but used by instance(s) i-1")


def test_disabling_first_then_deregistering_after_the_days() -> None:
    week_ago = (NOW - timedelta(days=8)).isoformat()
    yesterday = (NOW - timedelta(days=1)).isoformat()
    aws = FakeAws(
        FakeEc2(
            [
                image("ami-1", 1),
                image("ami-fresh", 40),
                image("ami-week", 50, "disabled", **{DISABLED_AT: week_ago}),
                image("ami-day", 60, "disabled", **{DISABLED_AT: yesterday}),
            ]
        )
    )

    assert fates({"keep": 1, "disable_days": 7}, aws) == {
        "ami-1": "keep",
        "ami-fresh": "disable",
        "ami-week": "deregister",
        "ami-day": "keep",
    }


def test_kept_images_are_deprecated_once_and_never_in_the_past() -> None:
    deprecated = image("ami-done", 5, deprecation="2027-01-01T00:00:00.000Z")
    aws = FakeAws(FakeEc2([image("ami-1", 1), image("ami-old", 100), deprecated]))
    model = AmiLifecycleRequest.model_validate(
        {"workflow": "ami_lifecycle", "asg_name": "web", "keep": 3, "deprecate_after_days": 30}
    )
    found = {d.image_id: d for d in decide(model, aws, NOW)}  # type: ignore[arg-type]

    assert found["ami-1"].deprecate_at == "2026-12-31T12:00:00Z"
    assert found["ami-old"].deprecate_at == "2026-12-02T12:01:00Z"  # past due: within the minute
    assert found["ami-done"].action == "keep"
