"""A distribution's steps on fakes: copies queued while a region's quota is full, a failed or slow copy, the
encryption that cannot be shared, and an undo that puts a launch template's default back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opsflow.aws.ec2 import Image, LaunchTemplateVersion
from opsflow.errors import CopyFailed, NotFound, Refused
from opsflow.workflows.ami_bake import distribute
from opsflow.workflows.ami_bake.state import BakedImage, BakeState, DeviceSnapshot

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@dataclass
class FakeEc2:
    """One region of one account."""

    quota: int = 50
    copies: dict[str, Image] = field(default_factory=dict)
    versions: list[LaunchTemplateVersion] = field(default_factory=list)
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def copy_image(self, **kwargs: Any) -> str | None:
        self.calls.append(("copy_image", kwargs))
        pending = [i for i in self.copies.values() if i.state == "pending"]
        if len(pending) >= self.quota:
            return None
        image_id = f"ami-{len(self.copies):017x}"
        self.copies[image_id] = image(image_id, "pending", kwargs["tags"])
        return image_id

    def describe_image(self, image_id: str) -> Image:
        if image_id not in self.copies:
            raise NotFound(image_id)
        return self.copies[image_id]

    def find_images(self, tags: dict[str, str]) -> list[Image]:
        return [i for i in self.copies.values() if tags.items() <= i.tags.items()]

    def find_snapshot_ids(self, tags: dict[str, str]) -> list[str]:
        return []

    def deregister_image(self, image_id: str) -> None:
        self.calls.append(("deregister_image", image_id))
        self.copies.pop(image_id)

    def delete_snapshot(self, snapshot_id: str) -> None:
        self.calls.append(("delete_snapshot", snapshot_id))

    def launch_template_named(self, name: str) -> tuple[str, dict[str, str]]:
        return "lt-0123456789abcdef0", {"opsflow:managed": "true"}

    def launch_template_versions(self, template_id: str) -> list[LaunchTemplateVersion]:
        return sorted(self.versions, key=lambda v: v.version, reverse=True)

    def set_default_version(self, template_id: str, version: int) -> None:
        self.calls.append(("set_default_version", version))

    def delete_launch_template_version(self, template_id: str, version: int) -> None:
        self.calls.append(("delete_launch_template_version", version))


def image(image_id: str, state: str, tags: dict[str, str] | None = None, reason: str | None = None) -> Image:
    mappings = [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": f"snap-{image_id[4:]}"}}]
    return Image(image_id, "web-1", state, reason, NOW.isoformat(), tags or {}, mappings)


@dataclass
class FakeAws:
    regions: dict[str, FakeEc2]
    account: str | None = None
    region: str = "us-east-1"

    def ec2_in(self, account: str | None, region: str) -> FakeEc2:
        return self.regions[region]


def state(asked: dict[str, Any], encrypted: bool = False, **results: Any) -> BakeState:
    baked = BakedImage(
        image_id="ami-0aaaaaaaaaaaaaaaa",
        name="web-1",
        created_at=NOW.isoformat(),
        state="available",
        snapshots=[DeviceSnapshot(device="/dev/xvda", snapshot_id="snap-0a", encrypted=encrypted)],
    )
    request = {
        "workflow": "ami_bake",
        "instance_id": "i-0123456789abcdef0",
        "asg_name": "web",
        "distribute": asked,
    }
    return BakeState(
        run_id="run-1", workflow="ami_bake", target="asg:web", request=request, image=baked, **results
    )


def test_a_copy_the_regions_quota_refuses_stays_queued_and_starts_when_a_slot_frees() -> None:
    eu, oregon = FakeEc2(), FakeEc2(quota=0)
    aws = FakeAws({"eu-west-1": eu, "us-west-2": oregon})
    first = distribute.copy_images(state({"regions": ["eu-west-1", "us-west-2"]}), aws, 3600, NOW)  # type: ignore[arg-type]

    assert [(c.region, c.state) for c in first.copies] == [("eu-west-1", "pending"), ("us-west-2", "queued")]
    assert first.done is False
    call = eu.calls[0][1]
    assert call["source_region"] == "us-east-1"
    assert call["client_token"] == "run-1-eu-west-1"
    assert call["tags"]["opsflow:run-id"] == "run-1"
    assert call["tags"]["opsflow:source-image"] == "ami-0aaaaaaaaaaaaaaaa"

    oregon.quota = 1
    [eu_copy] = eu.copies
    eu.copies[eu_copy] = image(eu_copy, "available")
    second = distribute.copy_images(
        state({"regions": ["eu-west-1", "us-west-2"]}, distribution=first),
        aws,
        3600,
        NOW,  # type: ignore[arg-type]
    )
    assert [(c.region, c.state) for c in second.copies] == [
        ("eu-west-1", "available"),
        ("us-west-2", "pending"),
    ]
    assert second.copies[0].snapshot_ids == [f"snap-{eu_copy[4:]}"]
    assert len(eu.calls) == 1, "an available copy is not copied again"


def test_a_failed_copy_fails_the_distribution_naming_its_region_and_reason() -> None:
    eu = FakeEc2()
    aws = FakeAws({"eu-west-1": eu})
    started = distribute.copy_images(state({"regions": ["eu-west-1"]}), aws, 3600, NOW)  # type: ignore[arg-type]
    [copy_id] = eu.copies
    eu.copies[copy_id] = image(copy_id, "failed", reason="Copy of snapshot failed")

    with pytest.raises(CopyFailed, match=r"into eu-west-1 ended failed: Copy of snapshot failed"):
        distribute.copy_images(state({"regions": ["eu-west-1"]}, distribution=started), aws, 3600, NOW)  # type: ignore[arg-type]


def test_copies_still_pending_past_the_limit_fail_the_distribution() -> None:
    aws = FakeAws({"eu-west-1": FakeEc2()})
    started = distribute.copy_images(state({"regions": ["eu-west-1"]}), aws, 3600, NOW)  # type: ignore[arg-type]

    with pytest.raises(CopyFailed, match=r"eu-west-1 are still pending after 3601 s \(limit 3600 s\)"):
        distribute.copy_images(
            state({"regions": ["eu-west-1"]}, distribution=started),
            aws,  # type: ignore[arg-type]
            3600,
            NOW + timedelta(seconds=3601),
        )


def test_an_encrypted_image_shared_without_a_key_for_a_region_is_refused_before_any_copy() -> None:
    eu = FakeEc2()
    aws = FakeAws({"eu-west-1": eu, "us-west-2": FakeEc2()})
    request = {
        "regions": ["eu-west-1", "us-west-2"],
        "accounts": ["222222222222"],
        "kms_key_ids": {"us-west-2": "arn:aws:kms:us-west-2:111111111111:key/1234abcd"},
    }

    with pytest.raises(
        Refused, match=r"copies into eu-west-1 would be encrypted with the region's AWS managed"
    ):
        distribute.copy_images(state(request, encrypted=True), aws, 3600, NOW)  # type: ignore[arg-type]
    assert eu.calls == []


def test_undo_puts_the_default_back_only_where_the_runs_version_is_still_the_default() -> None:
    def version(number: int, default: bool, run: str | None) -> LaunchTemplateVersion:
        description = f"Opsflow run {run}: image ami-1 (from version 3)" if run else None
        return LaunchTemplateVersion("lt-0123456789abcdef0", "web", number, default, {}, description)

    eu = FakeEc2(versions=[version(3, False, None), version(4, True, "run-1"), version(5, False, "run-2")])
    oregon = FakeEc2(versions=[version(3, False, None), version(4, False, "run-1"), version(5, True, None)])
    aws = FakeAws({"eu-west-1": eu, "us-west-2": oregon})
    distribution = {
        "regions": ["eu-west-1", "us-west-2"],
        "launch_templates": [{"name": "web", "region": "eu-west-1"}, {"name": "web", "region": "us-west-2"}],
    }

    undone, problems = distribute.undo(state(distribution), aws)  # type: ignore[arg-type]

    assert problems == []
    assert eu.calls == [("set_default_version", 3), ("delete_launch_template_version", 4)]
    assert oregon.calls == [("delete_launch_template_version", 4)]
    assert "made version 3 of launch template web in eu-west-1 the default again" in undone
