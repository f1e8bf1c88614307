"""An AMI bake distributed across regions and accounts end to end: copies into other regions of the group's
account (pending, then available, tagged like the image), launch permissions for another account, and a new
default version of a launch template in each place; a copy that fails leaves nothing of the run anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from opsflow_local import EmbeddedAws, seed

HUB, SPOKE = "111111111111", "222222222222"
HOME, EU, OREGON = "us-east-1", "eu-west-1", "us-west-2"
ALICE = f"arn:aws:iam::{HUB}:user/alice"


@pytest.fixture
def org() -> Iterator[EmbeddedAws]:
    with EmbeddedAws(accounts=[HUB, SPOKE], regions=[HOME, EU, OREGON], time_scale=0.002) as embedded:
        for account in (HUB, SPOKE):
            response = embedded.api.put(
                f"/accounts/{account}", json={"regions": [HOME, EU, OREGON]}, principal=ALICE
            )
            assert response.status_code == 200, response.json()
        yield embedded


@pytest.fixture
def web(org: EmbeddedAws) -> dict[str, str]:
    """The group web at home, and launch template web in the hub's eu-west-1 and the spoke's us-west-2."""
    net = seed.network(org)
    seed.launch_template_group(org, net, "web")
    return {
        "instance_id": seed.instance(org, net, "app-1"),
        "eu_template": seed.opted_in_template(org.located(HUB, EU), "web"),
        "spoke_template": seed.opted_in_template(org.located(SPOKE, OREGON), "web"),
    }


def distributed_bake(instance_id: str, **distribute: Any) -> dict[str, Any]:
    return {
        "workflow": "ami_bake",
        "instance_id": instance_id,
        "asg_name": "web",
        "distribute": {
            "regions": [EU, OREGON],
            "accounts": [SPOKE],
            "launch_templates": [
                {"name": "web", "region": EU},
                {"name": "web", "region": OREGON, "account": SPOKE},
            ],
            **distribute,
        },
    }


def start(org: EmbeddedAws, request: dict[str, Any]) -> Any:
    return org.api.post("/runs", json=request, principal=ALICE)


def own_images(org: EmbeddedAws, account: str, region: str) -> list[dict[str, Any]]:
    return list(org.client("ec2", account=account, region=region).describe_images(Owners=["self"])["Images"])


def own_snapshots(org: EmbeddedAws, account: str, region: str) -> list[str]:
    ec2 = org.client("ec2", account=account, region=region)
    return [s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]]


def template_versions(org: EmbeddedAws, account: str, region: str, template_id: str) -> dict[int, Any]:
    ec2 = org.client("ec2", account=account, region=region)
    versions = ec2.describe_launch_template_versions(LaunchTemplateId=template_id)["LaunchTemplateVersions"]
    return {v["VersionNumber"]: v for v in versions}


def test_a_bake_distributed_to_two_regions_and_an_account_publishes_each_regions_copy(
    org: EmbeddedAws, web: dict[str, str]
) -> None:
    response = start(org, distributed_bake(web["instance_id"]))
    assert response.status_code == 202, response.json()
    run = org.wait_for_run(response.json()["run_id"], timeout=90)

    assert run["status"] == "SUCCEEDED", run["error"]
    image_id = run["output"]["image_id"]
    copies = {region: own_images(org, HUB, region) for region in (EU, OREGON)}
    for region, images in copies.items():
        assert len(images) == 1, f"{region}: {images}"
        copy = images[0]
        assert copy["State"] == "available"
        tags = {t["Key"]: t["Value"] for t in copy["Tags"]}
        assert tags["opsflow:run-id"] == run["run_id"]
        assert tags["opsflow:source-image"] == image_id
        assert tags["opsflow:asg"] == "web"
        ec2 = org.client("ec2", account=HUB, region=region)
        snapshot_ids = [m["Ebs"]["SnapshotId"] for m in copy["BlockDeviceMappings"] if "Ebs" in m]
        assert snapshot_ids
        for snapshot in ec2.describe_snapshots(SnapshotIds=snapshot_ids)["Snapshots"]:
            assert {t["Key"]: t["Value"] for t in snapshot["Tags"]}["opsflow:run-id"] == run["run_id"]
        permissions = ec2.describe_image_attribute(ImageId=copy["ImageId"], Attribute="launchPermission")
        assert permissions["LaunchPermissions"] == [{"UserId": SPOKE}]
    home = org.client("ec2").describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
    assert home["LaunchPermissions"] == [{"UserId": SPOKE}]

    eu = template_versions(org, HUB, EU, web["eu_template"])
    assert eu[2]["LaunchTemplateData"]["ImageId"] == copies[EU][0]["ImageId"]
    assert eu[2]["DefaultVersion"] is True
    assert eu[1]["DefaultVersion"] is False
    spoke = template_versions(org, SPOKE, OREGON, web["spoke_template"])
    assert spoke[2]["LaunchTemplateData"]["ImageId"] == copies[OREGON][0]["ImageId"]
    assert spoke[2]["DefaultVersion"] is True
    # The spoke account holds no copy of its own: it launches the hub's, shared with it.
    assert own_images(org, SPOKE, OREGON) == []
    assert org.iam.denials == []


def test_a_copy_that_fails_leaves_nothing_of_the_run_in_any_region_or_account(
    org: EmbeddedAws, web: dict[str, str]
) -> None:
    snapshots_before = {region: own_snapshots(org, HUB, region) for region in (HOME, EU, OREGON)}
    org.emulation.ec2.fail_next_copy(OREGON, "Copy of snapshot failed: internal error")

    run = org.wait_for_run(start(org, distributed_bake(web["instance_id"])).json()["run_id"], timeout=90)

    assert run["status"] == "FAILED"
    assert run["error"]["step"] == "copy_images"
    assert OREGON in run["error"]["message"]
    assert "Copy of snapshot failed" in run["error"]["message"]
    for region in (HOME, EU, OREGON):
        assert own_images(org, HUB, region) == [], region
        assert own_snapshots(org, HUB, region) == snapshots_before[region], region
    assert set(template_versions(org, HUB, EU, web["eu_template"])) == {1}
    assert set(template_versions(org, SPOKE, OREGON, web["spoke_template"])) == {1}
    group = org.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["web"])
    assert group["AutoScalingGroups"][0]["LaunchTemplate"]["Version"] == "1"
    assert org.iam.denials == []


def test_a_failure_after_publishing_puts_each_templates_default_back_and_removes_the_copies(
    org: EmbeddedAws, web: dict[str, str]
) -> None:
    org.faults.fail_call(
        "autoscaling",
        "UpdateAutoScalingGroup",
        "AccessDenied",
        "User is not authorized to perform: autoscaling:UpdateAutoScalingGroup",
        status=403,
        caller=org.resource_name("AmiBakeStepsFunction"),
    )

    run = org.wait_for_run(start(org, distributed_bake(web["instance_id"])).json()["run_id"], timeout=90)

    assert run["status"] == "FAILED"
    eu = template_versions(org, HUB, EU, web["eu_template"])
    assert set(eu) == {1}
    assert eu[1]["DefaultVersion"] is True
    spoke = template_versions(org, SPOKE, OREGON, web["spoke_template"])
    assert set(spoke) == {1}
    assert spoke[1]["DefaultVersion"] is True
    for region in (HOME, EU, OREGON):
        assert own_images(org, HUB, region) == [], region
    undone = " ".join(run["error"]["rollback"]["undone"])
    assert f"in {SPOKE}/{OREGON}" in undone
    assert f"in {EU}" in undone
    assert org.iam.denials == []


@pytest.mark.parametrize(
    ("distribute", "field", "says"),
    [
        ({"regions": ["eu-west-9"]}, "distribute.regions", "not an AWS region"),
        (
            {
                "regions": [EU],
                "kms_key_ids": {EU: f"arn:aws:kms:{HOME}:{HUB}:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
            },
            "distribute.kms_key_ids",
            f"is in {HOME}",
        ),
        (
            {"regions": [EU], "launch_templates": [{"name": "web", "region": EU, "account": SPOKE}]},
            "distribute",
            "add the account to accounts",
        ),
    ],
)
def test_a_bad_distribution_is_a_400_naming_the_field_and_nothing_starts(
    org: EmbeddedAws, web: dict[str, str], distribute: dict[str, Any], field: str, says: str
) -> None:
    request = {
        "workflow": "ami_bake",
        "instance_id": web["instance_id"],
        "asg_name": "web",
        "distribute": distribute,
    }

    response = start(org, request)

    assert response.status_code == 400, response.json()
    [problem] = response.json()["problems"]
    assert problem["field"] == field
    assert says in problem["problem"]
    assert org.api.get("/runs").json()["count"] == 0


def test_a_launch_template_not_opted_in_or_in_a_region_not_copied_to_is_refused(
    org: EmbeddedAws, web: dict[str, str]
) -> None:
    org.client("ec2", account=HUB, region=EU).create_launch_template(
        LaunchTemplateName="api", LaunchTemplateData={"InstanceType": "m6i.large"}
    )
    not_opted_in = distributed_bake(web["instance_id"], launch_templates=[{"name": "api", "region": EU}])
    not_copied = distributed_bake(web["instance_id"], regions=[EU])

    refused = start(org, not_opted_in)
    elsewhere = start(org, not_copied)

    assert refused.status_code == 403, refused.json()
    assert "launch template api in eu-west-1 does not carry the tag" in refused.json()["message"]
    assert elsewhere.status_code == 422, elsewhere.json()
    assert "add us-west-2 to distribute.regions" in elsewhere.json()["message"]
    assert org.api.get("/runs").json()["count"] == 0
    assert own_images(org, HUB, HOME) == []


def test_a_dry_run_lists_the_copies_shares_and_versions(org: EmbeddedAws, web: dict[str, str]) -> None:
    response = start(org, {**distributed_bake(web["instance_id"]), "dry_run": True})

    assert response.status_code == 200, response.json()
    actions = response.json()["plan"]["actions"]
    assert any(f"Copy the image into {EU}, {OREGON}" in a for a in actions)
    assert any(f"Let account {SPOKE} launch" in a for a in actions)
    assert any(f"launch template web in {SPOKE}/{OREGON}" in a for a in actions)
    for region in (EU, OREGON):
        assert own_images(org, HUB, region) == []
