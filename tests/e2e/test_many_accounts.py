"""One hub acting in other accounts and regions of an organization: each workflow on a spoke account's
resources through the spoke roles, with IAM (trust policies included) held across accounts; requests for
accounts Opsflow cannot reach refused before anything starts; events from a spoke in the hub's notifications."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from opsflow_local import EmbeddedAws, seed

HUB, SPOKE = "111111111111", "222222222222"
HOME, AWAY = "us-east-1", "eu-west-1"
ALICE = f"arn:aws:iam::{HUB}:user/alice"


@pytest.fixture
def org() -> Iterator[EmbeddedAws]:
    with EmbeddedAws(accounts=[HUB, SPOKE], regions=[HOME, AWAY], time_scale=0.002) as embedded:
        yield embedded


def register(
    aws: EmbeddedAws, account: str = SPOKE, regions: tuple[str, ...] = (HOME, AWAY)
) -> dict[str, Any]:
    response = aws.api.put(
        f"/accounts/{account}", json={"regions": list(regions), "name": "qa"}, principal=ALICE
    )
    assert response.status_code == 200, response.json()
    return dict(response.json())


def start(aws: EmbeddedAws, request: dict[str, Any]) -> str:
    response = aws.api.post("/runs", json=request, principal=ALICE)
    assert response.status_code == 202, response.json()
    return str(response.json()["run_id"])


def nothing_started(aws: EmbeddedAws) -> None:
    assert aws.api.get("/runs").json()["count"] == 0
    sfn = aws.client("stepfunctions")
    for machine in sfn.list_state_machines()["stateMachines"]:
        assert sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"] == []


def assumed_spoke_sessions(aws: EmbeddedAws) -> set[tuple[str, str]]:
    """(role name, session name) of every session a hub function opened in the spoke account."""
    from moto.sts.models import sts_backends

    return {
        (assumed.role_arn.rsplit("/", 1)[-1], assumed.session_name)
        for assumed in sts_backends[SPOKE]["aws"].assumed_roles
        if assumed.role_arn.startswith(f"arn:aws:iam::{SPOKE}:role/opsflow-spoke-")
    }


# Each workflow on a spoke account's resources --------------------------------------------------------


def test_a_refresh_of_a_group_in_another_account_and_region_runs_as_its_spoke_role(org: EmbeddedAws) -> None:
    away = org.located(SPOKE, AWAY)
    template_id = seed.launch_template_group(away, seed.network(away), "web", capacity=2)
    # The same name in the hub's own account: a different group, which the run must not touch.
    seed.launch_template_group(org, seed.network(org), "web", capacity=2)
    register(org)

    run_id = start(org, {"workflow": "asg_refresh", "asg_name": "web", "account": SPOKE, "region": AWAY})
    run = org.wait_for_run(run_id, timeout=60)

    assert run["status"] == "SUCCEEDED", run["error"]
    assert run["target"] == f"asg:web@{SPOKE}/{AWAY}"
    refreshes = away.client("autoscaling").describe_instance_refreshes(AutoScalingGroupName="web")
    assert [r["Status"] for r in refreshes["InstanceRefreshes"]] == ["Successful"]
    assert (
        org.client("autoscaling").describe_instance_refreshes(AutoScalingGroupName="web")["InstanceRefreshes"]
        == []
    )
    assert away.client("ec2").describe_launch_templates(LaunchTemplateIds=[template_id])["LaunchTemplates"]
    # CloudTrail in the spoke names the run: the steps' sessions carry its id.
    assert ("opsflow-spoke-asg-refresh", f"opsflow-{run_id}") in assumed_spoke_sessions(org)
    assert org.iam.denials == []
    # The refresh's events, forwarded from the spoke, ended its waits: the hub's group had none to send.
    assert org.lambdas.invoked[org.resource_name("ResumeFunction")] > 0
    listed = org.api.get(f"/runs?target=asg:web@{SPOKE}/{AWAY}").json()
    assert [r["run_id"] for r in listed["runs"]] == [run_id]


def test_a_bake_of_a_group_in_a_spoke_account_images_there_and_publishes_there(org: EmbeddedAws) -> None:
    spoke = org.located(SPOKE, HOME)
    net = seed.network(spoke)
    instance_id = seed.instance(spoke, net, "app-1")
    template_id = seed.launch_template_group(spoke, net, "web")
    register(org)

    run = org.wait_for_run(
        start(org, {"workflow": "ami_bake", "instance_id": instance_id, "asg_name": "web", "account": SPOKE}),
        timeout=60,
    )

    assert run["status"] == "SUCCEEDED", run["error"]
    image_id = run["output"]["image_id"]
    assert spoke.client("ec2").describe_images(ImageIds=[image_id])["Images"][0]["State"] == "available"
    assert org.client("ec2").describe_images(Owners=["self"])["Images"] == []
    versions = spoke.client("ec2").describe_launch_template_versions(LaunchTemplateId=template_id)
    assert {
        v["VersionNumber"]: v["LaunchTemplateData"].get("ImageId") for v in versions["LaunchTemplateVersions"]
    }[2] == image_id
    assert org.iam.denials == []


def test_a_blue_green_deploy_of_a_service_in_a_spoke_account(org: EmbeddedAws) -> None:
    spoke = org.located(SPOKE, AWAY)
    app = seed.blue_green_app(spoke)
    register(org)

    request = {
        **app.request(
            image="registry.example/web:2", traffic={"type": "canary", "percent": 10, "hold_seconds": 60}
        ),
        "account": SPOKE,
        "region": AWAY,
    }
    run = org.wait_for_run(start(org, request), timeout=120)

    assert run["status"] == "SUCCEEDED", run["error"]
    (action,) = spoke.client("elbv2").describe_listeners(ListenerArns=[app.listener_arn])["Listeners"][0][
        "DefaultActions"
    ]
    live = {g["TargetGroupArn"]: g["Weight"] for g in action["ForwardConfig"]["TargetGroups"]}
    assert live[app.green_target_group] == 100
    assert org.iam.denials == []


def test_an_aborted_deploy_in_a_spoke_account_is_put_back_on_blue_there(org: EmbeddedAws) -> None:
    spoke = org.located(SPOKE, AWAY)
    app = seed.blue_green_app(spoke)
    register(org)
    steps = [{"percent": 10, "hold_seconds": 30}, {"percent": 40, "hold_seconds": 3600}, {"percent": 100}]
    request = {
        **app.request(image="registry.example/web:2", traffic={"type": "steps", "steps": steps}),
        "account": SPOKE,
        "region": AWAY,
    }
    run_id = start(org, request)

    def green_weight() -> int:
        (action,) = spoke.client("elbv2").describe_listeners(ListenerArns=[app.listener_arn])["Listeners"][0][
            "DefaultActions"
        ]
        return {g["TargetGroupArn"]: g["Weight"] for g in action["ForwardConfig"]["TargetGroups"]}[
            app.green_target_group
        ]

    deadline = time.monotonic() + 60
    while green_weight() != 40:
        assert time.monotonic() < deadline, "the deploy never reached 40%"
        time.sleep(0.05)
    assert org.api.post(f"/runs/{run_id}/abort", principal=ALICE).status_code == 202

    # run_ended puts the traffic back, through its own spoke role.
    deadline = time.monotonic() + 60
    while (org.api.get(f"/runs/{run_id}").json().get("error") or {}).get("live") is None:
        assert time.monotonic() < deadline, "the aborted run was never put back"
        time.sleep(0.05)
    assert green_weight() == 0
    assert ("opsflow-spoke-run-ended", f"opsflow-{run_id}") in assumed_spoke_sessions(org)
    assert org.iam.denials == []


def test_an_environment_in_a_spoke_account_is_stopped_and_restored_exactly(org: EmbeddedAws) -> None:
    spoke = org.located(SPOKE, AWAY)
    env = seed.environment(spoke, seed.network(spoke), "qa")
    register(org)
    ec2 = spoke.client("ec2")

    def running() -> set[str]:
        reservations = ec2.describe_instances(InstanceIds=env.instances)["Reservations"]
        return {
            i["InstanceId"] for r in reservations for i in r["Instances"] if i["State"]["Name"] == "running"
        }

    before = running()
    stopped = org.wait_for_run(
        start(
            org,
            {
                "workflow": "env_power",
                "environment": "qa",
                "action": "stop",
                "account": SPOKE,
                "region": AWAY,
            },
        ),
        timeout=120,
    )
    assert stopped["status"] == "SUCCEEDED", stopped["error"]
    assert running() == set()

    started = org.wait_for_run(
        start(
            org,
            {
                "workflow": "env_power",
                "environment": "qa",
                "action": "start",
                "account": SPOKE,
                "region": AWAY,
            },
        ),
        timeout=120,
    )
    assert started["status"] == "SUCCEEDED", started["error"]
    assert running() == before
    assert org.iam.denials == []


# Accounts Opsflow cannot reach -----------------------------------------------------------------------


def test_an_account_outside_the_organization_and_unregistered_is_refused_with_the_stack_to_deploy() -> None:
    outsider = "444444444444"
    with EmbeddedAws(accounts=[HUB, SPOKE], regions=[HOME, AWAY]) as org:
        response = org.api.post(
            "/runs",
            json={"workflow": "asg_refresh", "asg_name": "web", "account": outsider, "region": AWAY},
            principal=ALICE,
        )

        assert response.status_code == 422
        body = response.json()
        assert body["error"] == "AccountNotRegistered"
        assert f"deploy spoke/template.yaml to account {outsider} in {AWAY}" in body["message"]
        assert f"PUT /accounts/{outsider}" in body["message"]
        nothing_started(org)


def test_without_discovery_a_member_account_must_be_registered_first() -> None:
    with EmbeddedAws(accounts=[HUB, SPOKE], regions=[HOME], parameters={"DiscoverAccounts": "false"}) as org:
        response = org.api.post(
            "/runs", json={"workflow": "asg_refresh", "asg_name": "web", "account": SPOKE}, principal=ALICE
        )

        assert response.status_code == 422
        assert response.json()["error"] == "AccountNotRegistered"
        nothing_started(org)


def test_a_member_of_the_hubs_organization_is_discovered_on_its_first_request(org: EmbeddedAws) -> None:
    away = org.located(SPOKE, AWAY)
    seed.launch_template_group(away, seed.network(away), "web")
    assert org.api.get("/accounts").json()["accounts"] == []

    run_id = start(org, {"workflow": "asg_refresh", "asg_name": "web", "account": SPOKE, "region": AWAY})

    assert org.wait_for_run(run_id, timeout=60)["status"] == "SUCCEEDED"
    (account,) = org.api.get("/accounts").json()["accounts"]
    assert (account["account"], account["regions"], account["registered_by"]) == (
        SPOKE,
        [AWAY],
        "AWS Organizations",
    )
    assert account["last_assumed_at"]
    assert org.iam.denials == []


def test_a_region_the_account_is_not_registered_for_is_refused(org: EmbeddedAws) -> None:
    register(org, regions=(HOME,))

    response = org.api.post(
        "/runs",
        json={"workflow": "asg_refresh", "asg_name": "web", "account": SPOKE, "region": AWAY},
        principal=ALICE,
    )

    assert response.status_code == 422
    assert response.json()["error"] == "RegionNotRegistered"
    assert f"deploy spoke/template.yaml to {SPOKE} in {AWAY}" in response.json()["message"]
    nothing_started(org)


def test_an_account_whose_spoke_roles_trust_another_hub_is_refused_at_registration_and_at_a_run() -> None:
    other_hub = {"HubAccountId": "999999999999"}
    with EmbeddedAws(accounts=[HUB, SPOKE], regions=[HOME], spoke_parameters={SPOKE: other_hub}) as aws:
        response = aws.api.put(f"/accounts/{SPOKE}", json={"regions": [HOME]}, principal=ALICE)

        assert response.status_code == 422
        assert response.json()["error"] == "SpokeUnreachable"
        assert (
            f"cannot assume its role arn:aws:iam::{SPOKE}:role/opsflow-spoke-api"
            in response.json()["message"]
        )
        assert f"HubAccountId={HUB}" in response.json()["message"]
        assert aws.api.get("/accounts").json()["accounts"] == []
        # The trust policy, not a missing grant of the hub's, refused it.
        (denial,) = aws.iam.denials
        assert denial.authorization.action.full_name == "sts:AssumeRole"

        # Registered earlier, while its roles still trusted this hub: a run is refused the same way.
        aws.client("dynamodb").put_item(
            TableName=aws.resource_name("AccountsTable"),
            Item={"account": {"S": SPOKE}, "regions": {"L": [{"S": HOME}]}},
        )
        response = aws.api.post(
            "/runs", json={"workflow": "asg_refresh", "asg_name": "web", "account": SPOKE}, principal=ALICE
        )
        assert response.status_code == 422
        assert response.json()["error"] == "SpokeUnreachable"
        nothing_started(aws)
        account = aws.api.get(f"/accounts/{SPOKE}").json()
        assert "cannot assume" in account["last_refusal"]


def test_a_request_naming_the_hubs_own_account_and_region_is_the_hubs_target(org: EmbeddedAws) -> None:
    seed.launch_template_group(org, seed.network(org), "web")

    run_id = start(org, {"workflow": "asg_refresh", "asg_name": "web", "account": HUB, "region": HOME})

    assert org.wait_for_run(run_id, timeout=60)["target"] == "asg:web"


# Events from a spoke -----------------------------------------------------------------------------


def test_an_alarm_and_a_failed_refresh_in_a_spoke_reach_the_hubs_notifications_naming_where(
    org: EmbeddedAws,
) -> None:
    away = org.located(SPOKE, AWAY)
    seed.alarm(away, "web-5xx")
    away.client("cloudwatch").set_alarm_state(
        AlarmName="web-5xx", StateValue="ALARM", StateReason="5xx above 1%"
    )
    seed.launch_template_group(away, seed.network(away), "jobs", capacity=2)
    # A refresh someone started by hand, watching the alarm already in ALARM: AWS fails it.
    away.client("autoscaling").start_instance_refresh(
        AutoScalingGroupName="jobs",
        Preferences={"AutoRollback": False, "AlarmSpecification": {"Alarms": ["web-5xx"]}},
    )

    deadline = time.monotonic() + 30
    texts: list[str] = []
    while time.monotonic() < deadline:
        texts = [n.text for n in org.notifications if n.platform == "slack"]
        if any("web-5xx" in t for t in texts) and any("jobs" in t and "failed" in t for t in texts):
            break
        time.sleep(0.05)
    alarm = next(t for t in texts if "ALARM: web-5xx" in t)
    assert f"in {SPOKE}/{AWAY}" in alarm
    payloads = [json.dumps(n.payload) for n in org.notifications if "web-5xx" in n.text]
    assert any(f"Open alarm (account {SPOKE})" in p and f"https://{AWAY}.console" in p for p in payloads)
    refresh = next(t for t in texts if "Instance refresh of jobs" in t and "failed" in t)
    assert f"in {SPOKE}/{AWAY}" in refresh


def test_a_health_event_in_a_spoke_names_the_group_of_the_instance_it_affects_there(org: EmbeddedAws) -> None:
    """Forwarded by the spoke's rule; the notify function reads the instance's tags through its spoke role."""
    seed.instance_retirement_scheduled(org.located(SPOKE, AWAY), "jobs", "staging")

    (health,) = [n.text for n in org.notifications if n.platform == "slack" and "AWS Health" in n.text]
    assert health.startswith(
        "⚠️ AWS Health: EC2 instance retirement scheduled for group jobs (environment staging)"
    )
    assert "opsflow-spoke-notify" in {role for role, _ in assumed_spoke_sessions(org)}
    assert org.iam.denials == []


# An environment across accounts and regions --------------------------------------------------------------

THIRD = "333333333333"


@pytest.fixture
def wide_org() -> Iterator[EmbeddedAws]:
    with EmbeddedAws(accounts=[HUB, SPOKE, THIRD], regions=[HOME, AWAY], time_scale=0.002) as embedded:
        yield embedded


def settled_environment(aws: Any, env: seed.SeededEnvironment) -> dict[str, str]:
    """Each instance, group, service and database of one account-region's part, once transitions are over."""
    ec2, autoscaling, ecs, rds = (aws.client(s) for s in ("ec2", "autoscaling", "ecs", "rds"))
    deadline = time.monotonic() + 30
    while True:
        rows: dict[str, str] = {}
        for reservation in ec2.describe_instances(InstanceIds=env.instances)["Reservations"]:
            for instance in reservation["Instances"]:
                rows[instance["InstanceId"]] = instance["State"]["Name"]
        for group in autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=env.groups)[
            "AutoScalingGroups"
        ]:
            rows[group["AutoScalingGroupName"]] = (
                f"{group['MinSize']}/{group['DesiredCapacity']}/{group['MaxSize']}"
            )
        for service in ecs.describe_services(cluster=env.cluster_arn, services=env.services)["services"]:
            rows[service["serviceName"]] = str(service["desiredCount"])
        for database in env.databases:
            kind, identifier = database.split(":", 1)
            rows[database] = (
                rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]["Status"]
                if kind == "cluster"
                else rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0][
                    "DBInstanceStatus"
                ]
            )
        if (
            not any(s in ("pending", "stopping", "starting") for s in rows.values())
            or time.monotonic() > deadline
        ):
            return rows
        time.sleep(0.05)


def power(aws: EmbeddedAws, action: str, targets: list[dict[str, str]]) -> dict[str, Any]:
    response = aws.api.post(
        "/runs",
        json={"workflow": "env_power", "environment": "qa", "action": action, "targets": targets},
        principal=ALICE,
        headers={"Idempotency-Key": f"qa-{action}-{time.monotonic_ns()}"},
    )
    assert response.status_code == 202, response.json()
    return aws.wait_for_run(response.json()["run_id"], timeout=120)


def test_an_environment_across_accounts_and_regions_is_stopped_and_restored_exactly(
    wide_org: EmbeddedAws,
) -> None:
    parts = {(SPOKE, HOME): wide_org.located(SPOKE, HOME), (THIRD, AWAY): wide_org.located(THIRD, AWAY)}
    envs = {where: seed.environment(view, seed.network(view), "qa") for where, view in parts.items()}
    register(wide_org, SPOKE, (HOME,))
    register(wide_org, THIRD, (AWAY,))
    targets = [{"account": account, "region": region} for account, region in parts]
    before = {where: settled_environment(parts[where], env) for where, env in envs.items()}

    plan = wide_org.api.post(
        "/runs",
        json={
            "workflow": "env_power",
            "environment": "qa",
            "action": "stop",
            "targets": targets,
            "dry_run": True,
        },
        principal=ALICE,
    ).json()["plan"]
    assert [(p["account"], p["region"]) for p in plan["places"]] == list(parts)
    assert all(p["will_save"]["instances"] == 3 for p in plan["places"])

    stopped = power(wide_org, "stop", targets)

    assert stopped["status"] == "SUCCEEDED", stopped["error"]
    assert [(p["account"], p["region"], p["status"]) for p in stopped["output"]["places"]] == [
        (SPOKE, HOME, "SUCCEEDED"),
        (THIRD, AWAY, "SUCCEEDED"),
    ]
    assert stopped["output"]["saved"]["instances"] == 6
    for where, env in envs.items():
        night = settled_environment(parts[where], env)
        assert {night[i] for i in env.instances} == {"stopped"}, where
        assert {night[g] for g in env.groups} == {"0/0/0"}, where

    started = power(wide_org, "start", targets)

    assert started["status"] == "SUCCEEDED", started["error"]
    assert {where: settled_environment(parts[where], env) for where, env in envs.items()} == before
    assert wide_org.iam.denials == []


def test_an_account_whose_role_is_missing_is_named_and_the_others_still_stop(wide_org: EmbeddedAws) -> None:
    spoke, third = wide_org.located(SPOKE, HOME), wide_org.located(THIRD, AWAY)
    env = seed.environment(spoke, seed.network(spoke), "qa")
    seed.environment(third, seed.network(third), "qa")
    register(wide_org, SPOKE, (HOME,))
    register(wide_org, THIRD, (AWAY,))
    # The environment-power role is deleted from the third account after it was registered.
    iam = wide_org.client("iam", account=THIRD)
    for name in iam.list_role_policies(RoleName="opsflow-spoke-env-power")["PolicyNames"]:
        iam.delete_role_policy(RoleName="opsflow-spoke-env-power", PolicyName=name)
    iam.delete_role(RoleName="opsflow-spoke-env-power")
    targets = [{"account": SPOKE, "region": HOME}, {"account": THIRD, "region": AWAY}]

    stopped = power(wide_org, "stop", targets)

    assert stopped["status"] == "FAILED"
    places = {(p["account"], p["region"]): p for p in stopped["error"]["places"]}
    assert places[(SPOKE, HOME)]["status"] == "SUCCEEDED"
    assert places[(THIRD, AWAY)]["status"] == "FAILED"
    assert "opsflow-spoke-env-power" in places[(THIRD, AWAY)]["summary"]
    assert f"{THIRD}/{AWAY}" in stopped["error"]["message"]
    night = settled_environment(spoke, env)
    assert {night[i] for i in env.instances} == {"stopped"}
    texts = [n.text for n in wide_org.notifications if n.platform == "slack"]
    assert any("Environment stop failed" in t for t in texts), texts
