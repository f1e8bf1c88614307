"""`make demo`: every workflow end to end on the embedded local AWS, told as a person would want to read it.

Exits non-zero if any run ends other than as the demo expects.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opsflow_local import EmbeddedAws, seed
from opsflow_local.sink import Notification

PRINCIPAL = "arn:aws:iam::123456789012:user/platform-oncall"
TOTAL_SCENARIOS = 17
HUB, QA, QA_EU = "111111111111", "222222222222", "333333333333"


@dataclass
class Scenario:
    title: str
    group: str
    expect: str  # SUCCEEDED or FAILED
    run: Callable[[EmbeddedAws], tuple[dict[str, Any], float]]


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def post(aws: EmbeddedAws, request: dict[str, Any]) -> str:
    response = aws.api.post("/runs", json=request, principal=PRINCIPAL)
    if response.status_code != 202:
        raise SystemExit(f"POST /runs answered {response.status_code}: {response.text}")
    say(f"  POST /runs -> {response.status_code}  run {response.json()['run_id']}")
    return str(response.json()["run_id"])


def start(aws: EmbeddedAws, request: dict[str, Any]) -> tuple[dict[str, Any], float]:
    began = time.monotonic()
    run = aws.wait_for_run(post(aws, request), timeout=180)
    return run, time.monotonic() - began


def describe_group(aws: EmbeddedAws, name: str) -> str:
    group = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"
    ][0]
    if group.get("LaunchTemplate"):
        template = group["LaunchTemplate"]
        config = f"launch template {template['LaunchTemplateName']} ({template['LaunchTemplateId']}) version {template['Version']}"
    else:
        config = f"launch configuration {group['LaunchConfigurationName']}"
    ids = [i["InstanceId"] for i in group["Instances"]]
    images: dict[str, int] = {}
    if ids:
        for reservation in aws.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]:
            for instance in reservation["Instances"]:
                images[instance["ImageId"]] = images.get(instance["ImageId"], 0) + 1
    running = ", ".join(f"{count}x {image}" for image, count in sorted(images.items()))
    return f"{config}; instances: {running}"


def report(aws: EmbeddedAws, run: dict[str, Any], seconds: float, group_before: str) -> None:
    say(
        f"  status     {run['status']}   ({seconds:.1f} s, with Step Functions waits {1 / aws.time_scale:.0f}x faster than on AWS)"
    )
    say(f"  asked by   {run['requester']['identity']}")
    output = run["output"] or {}
    if run["status"] == "SUCCEEDED":
        if output.get("image_id"):
            say(f"  image      {output['image_id']}  {output['image_name']}")
            say("  snapshots  device      snapshot                size  type  iops   throughput")
            for snap in output["snapshots"]:
                say(
                    f"             {snap['device']:<11} {snap['snapshot_id']:<23} {snap['size_gib']:>3} GiB  "
                    f"{snap['volume_type']:<4}  {snap['iops'] or '-':<6} {snap['throughput'] or '-'}"
                )
            published = output["published"]
            if published["kind"] == "launch_template":
                say(f"  published  launch template {published['template_id']} version {published['version']}")
            else:
                say(f"  published  launch configuration {published['name']}")
        refresh = output.get("refresh")
        if refresh:
            checkpoints = ", ".join(f"{c}%" for c in refresh["checkpoints_reached"]) or "none"
            say(
                f"  refresh    {refresh['refresh_id']} {refresh['status']}: version {refresh['previous_version']} -> "
                f"{refresh['version']}, checkpoints reached: {checkpoints}; default version now {refresh['default_version']}"
            )
        for warning in output.get("warnings", []):
            say(f"  warning    {warning}")
    else:
        error = run["error"] or {}
        say(f"  failed at  {error.get('step')}: {error.get('message')}")
        for undone in (error.get("rollback") or {}).get("undone", []):
            say(f"  rolled back: {undone}")
        for problem in (error.get("rollback") or {}).get("problems", []):
            say(f"  NOT rolled back: {problem}")
    say(f"  group      before: {group_before}")
    say(f"             after:  {describe_group(aws, run['request']['asg_name'])}")
    say("  steps      " + " -> ".join(_step_labels(run["steps"])))
    for step in run["steps"]:
        if step["status"] == "milestone":
            say(f"             * {step['summary']}")


def show_notifications(notifications: list[Notification]) -> None:
    """The Slack messages a run produced, as the channel shows them (Teams received the same as cards)."""
    slack = [n for n in notifications if n.platform == "slack"]
    teams = sum(1 for n in notifications if n.platform == "teams")
    say(f"  messages   {len(slack)} to Slack, {teams} to Teams:")
    for notification in slack:
        say(f"             {notification.text}")
        for block in notification.payload["attachments"][0]["blocks"]:
            text = (block.get("text") or {}).get("text", "")
            if block["type"] == "section" and text.startswith(("*Why*", "*Next*")):
                label, _, body = text.partition("\n")
                say(f"               {label.strip('*')}: {body}")


def _step_labels(steps: list[dict[str, Any]]) -> list[str]:
    """One label per step, with its polls added up across the milestones recorded between them."""
    merged: list[list[Any]] = []
    for step in steps:
        if step["status"] == "milestone":
            continue
        if merged and merged[-1][0] == step["step"]:
            merged[-1][1] += step["attempts"]
        else:
            merged.append([step["step"], step["attempts"]])
    return [f"{name} ({polls} polls)" if polls > 1 else str(name) for name, polls in merged]


def refresh_stopped_by_alarm(aws: EmbeddedAws) -> tuple[dict[str, Any], float]:
    """Publish a version with another image, refresh onto it, and set its alarm once a quarter is done."""
    ec2 = aws.client("ec2")
    template = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["fleet"])[
        "AutoScalingGroups"
    ][0]["LaunchTemplate"]
    other_image = seed.base_image_id(aws)
    version = ec2.create_launch_template_version(
        LaunchTemplateId=template["LaunchTemplateId"],
        SourceVersion=template["Version"],
        LaunchTemplateData={"ImageId": other_image},
        VersionDescription="hand-built candidate",
    )["LaunchTemplateVersion"]["VersionNumber"]
    cloudwatch = aws.client("cloudwatch")
    seed.alarm(aws, "fleet-5xx")
    began = time.monotonic()
    run_id = post(
        aws,
        {
            "workflow": "asg_refresh",
            "asg_name": "fleet",
            "launch_template_version": version,
            "instance_warmup": 120,
            "alarms": ["fleet-5xx"],
        },
    )
    autoscaling = aws.client("autoscaling")
    while True:
        refreshes = autoscaling.describe_instance_refreshes(AutoScalingGroupName="fleet")["InstanceRefreshes"]
        # The refresh of an earlier scenario is listed too: wait for this run's, a quarter done.
        if any(r["Status"] == "InProgress" and r["PercentageComplete"] >= 25 for r in refreshes):
            break
        time.sleep(0.02)
    say("  ... 25% replaced: setting alarm fleet-5xx to ALARM (a burst of 5xx from the new instances)")
    cloudwatch.set_alarm_state(
        AlarmName="fleet-5xx", StateValue="ALARM", StateReason="5xx burst after deploy"
    )
    run = aws.wait_for_run(run_id, timeout=180)
    cloudwatch.set_alarm_state(AlarmName="fleet-5xx", StateValue="OK", StateReason="recovered")
    return run, time.monotonic() - began


def environment_rows(aws: EmbeddedAws, env: seed.SeededEnvironment) -> dict[str, str]:
    """Each resource of the environment (and its neighbours left alone) with its state, as a person reads it."""
    rows: dict[str, str] = {}
    ecs = aws.client("ecs")
    arns = ecs.list_services(cluster=env.cluster_arn)["serviceArns"]
    for service in ecs.describe_services(cluster=env.cluster_arn, services=arns)["services"]:
        opted_in = service["serviceName"] in env.services
        label = f"ecs service {service['serviceName']}" + ("" if opted_in else " (not opted in)")
        rows[label] = f"desired {service['desiredCount']}"
    groups = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=env.groups)
    for group in groups["AutoScalingGroups"]:
        rows[f"auto scaling group {group['AutoScalingGroupName']}"] = (
            f"min {group['MinSize']} / desired {group['DesiredCapacity']} / max {group['MaxSize']}"
        )
    ids = [*env.instances, env.stopped_instance]
    for reservation in aws.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]:
        for instance in reservation["Instances"]:
            name = next(t["Value"] for t in instance["Tags"] if t["Key"] == "Name")
            rows[f"instance {instance['InstanceId']} ({name})"] = instance["State"]["Name"]
    rds = aws.client("rds")
    for database in env.databases:
        kind, identifier = database.split(":", 1)
        if kind == "cluster":
            status = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]["Status"]
        else:
            status = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0][
                "DBInstanceStatus"
            ]
        rows[f"database {database}"] = status
    return rows


def _row_of(resource: str, rows: dict[str, str]) -> str:
    """The row label of a resource the plan names ("instance i-0abc" is row "instance i-0abc (qa-worker-1)")."""
    return next((row for row in rows if row == resource or row.startswith(resource + " (")), resource)


def wait_until_settled(aws: EmbeddedAws, env: seed.SeededEnvironment) -> dict[str, str]:
    """Instances and databases take a while to stop and start, as on AWS."""
    for _ in range(200):
        rows = environment_rows(aws, env)
        if not any(state in ("pending", "stopping", "starting") for state in rows.values()):
            return rows
        time.sleep(0.05)
    return rows


def environment_power(aws: EmbeddedAws, net: seed.Network, number: int, total: int) -> int:
    """A QA environment on a Berlin schedule: the Friday-night stop and the Monday-morning start-up, fired
    by its EventBridge Scheduler schedules, with the weekend skipped."""
    say()
    say(
        f"[{number}/{total}] Environment power: qa stops on Friday night and starts on Monday morning   "
        "(expected: SUCCEEDED)"
    )
    env = seed.environment(aws, net, "qa")
    schedule = {
        "timezone": "Europe/Berlin",
        "stop_at": "20:00",
        "start_at": "07:00",
        "holidays": {"country": "DE", "subdivision": "BY"},
    }
    configured = aws.api.put("/environments/qa", json=schedule, principal=PRINCIPAL)
    if configured.status_code != 200:
        raise SystemExit(f"PUT /environments/qa answered {configured.status_code}: {configured.text}")
    say(
        "  PUT /environments/qa -> 200: stop 20:00, start 07:00 Europe/Berlin, MON-FRI, public holidays of DE-BY"
    )
    for warning in configured.json()["warnings"][:2]:
        say(f"  warning    {warning}")
    before = wait_until_settled(aws, env)
    sent = len(aws.notifications)
    unexpected = 0

    fired = aws.emulation.scheduler.fire("qa-stop", datetime.fromisoformat("2026-11-27T20:00:00+01:00"))
    say(f"  Fri 2026-11-27 20:00 CET  schedule qa-stop fires -> run {fired['run_id']}")
    stop = aws.wait_for_run(fired["run_id"], timeout=120)
    saved = {
        _row_of(c["resource"], before): c["after"]
        for c in aws.api.get("/environments/qa/plan").json()["start"]["changes"]
    }
    night = wait_until_settled(aws, env)
    for day, label in (("2026-11-28", "Sat"), ("2026-11-29", "Sun")):
        skipped = aws.emulation.scheduler.fire("qa-start", datetime.fromisoformat(f"{day}T07:00:00+01:00"))
        say(
            f"  {label} {day} 07:00 CET  schedule qa-start fires -> {skipped['status']}: {skipped['summary']}"
        )
    fired = aws.emulation.scheduler.fire("qa-start", datetime.fromisoformat("2026-11-30T07:00:00+01:00"))
    say(f"  Mon 2026-11-30 07:00 CET  schedule qa-start fires -> run {fired['run_id']}")
    start = aws.wait_for_run(fired["run_id"], timeout=120)
    morning = wait_until_settled(aws, env)

    say(f"  {'resource':<46} {'before':<27} {'saved':<27} {'Friday night':<27} Monday morning")
    for resource, state in before.items():
        say(
            f"  {resource:<46} {state:<27} {saved.get(resource, '-'):<27} {night[resource]:<27} {morning[resource]}"
        )
    say(f"  stop       {stop['status']}: {(stop['output'] or {}).get('summary')}")
    say(f"  start      {start['status']}: {(start['output'] or {}).get('summary')}")
    restored = "exactly as before" if morning == before else "DIFFERENT from before"
    say(f"  Monday morning the environment is {restored}; the bastion, stopped by hand, stayed stopped.")
    show_notifications(aws.notifications[sent:])
    for run in (stop, start):
        if run["status"] != "SUCCEEDED":
            unexpected += 1
    if morning != before:
        unexpected += 1
    return unexpected


def many_accounts(number: int, total: int) -> tuple[int, int, int]:
    """A second organization: the hub in 111111111111/us-east-1, QA accounts 222222222222 and 333333333333 with
    the spoke stack in us-east-1 and eu-west-1. A bake in one, then a QA environment spread over both accounts
    and both regions, stopped and started by its schedule. Returns (unexpected outcomes, calls held, denied)."""
    say()
    say(
        f"[{number}/{total}] Many accounts: a bake in a spoke, and QA across two accounts and two regions   (expected: SUCCEEDED)"
    )
    began = time.monotonic()
    with EmbeddedAws(accounts=[HUB, QA, QA_EU], regions=["us-east-1", "eu-west-1"], time_scale=0.002) as org:
        say(
            f"  Deployed the hub in {HUB}/us-east-1 and the spoke stack in {QA} and {QA_EU} (us-east-1, eu-west-1) "
            f"in {time.monotonic() - began:.1f} s."
        )
        principal = f"arn:aws:iam::{HUB}:user/platform-oncall"
        home = org.located(QA, "us-east-1")
        net = seed.network(home)
        builder = seed.instance(home, net, "qa-app-1")
        seed.launch_template_group(home, net, "qa-web")
        parts = {(QA, "us-east-1"): home, (QA_EU, "eu-west-1"): org.located(QA_EU, "eu-west-1")}
        envs = {
            where: seed.environment(view, net if view is home else seed.network(view), "qa")
            for where, view in parts.items()
        }
        outsider = "444444444444"
        refused = org.api.post(
            "/runs",
            json={"workflow": "ami_bake", "instance_id": builder, "asg_name": "qa-web", "account": outsider},
            principal=principal,
        )
        say(
            f"  An account outside the organization: POST /runs -> {refused.status_code} {refused.json()['error']}:"
        )
        say(f"    {refused.json()['message']}")
        for account, region in parts:
            registered = org.api.put(
                f"/accounts/{account}", json={"regions": [region], "name": "qa"}, principal=principal
            )
            say(
                f"  PUT /accounts/{account} -> {registered.status_code}: {region}; its spoke role answered at "
                f"{registered.json().get('last_assumed_at')}"
            )
        bake, seconds = start(
            org, {"workflow": "ami_bake", "instance_id": builder, "asg_name": "qa-web", "account": QA}
        )
        say(f"  AMI bake of qa-web in {QA}/us-east-1: {bake['status']} in {seconds:.1f} s")
        say(f"    {(bake['output'] or {}).get('summary') or bake['error']}")
        schedule = {
            "timezone": "Europe/Berlin",
            "stop_at": "20:00",
            "start_at": "07:00",
            "targets": [{"account": account, "region": region} for account, region in parts],
        }
        configured = org.api.put("/environments/qa", json=schedule, principal=principal)
        say(
            f"  PUT /environments/qa -> {configured.status_code}: stop 20:00, start 07:00 Europe/Berlin, in "
            + ", ".join(f"{a}/{r}" for a, r in parts)
        )
        before = {where: wait_until_settled(view, envs[where]) for where, view in parts.items()}
        fired = org.emulation.scheduler.fire("qa-stop", datetime.fromisoformat("2026-11-27T20:00:00+01:00"))
        stop = org.wait_for_run(fired["run_id"], timeout=180)
        night = {where: wait_until_settled(view, envs[where]) for where, view in parts.items()}
        fired = org.emulation.scheduler.fire("qa-start", datetime.fromisoformat("2026-11-30T07:00:00+01:00"))
        started = org.wait_for_run(fired["run_id"], timeout=180)
        morning = {where: wait_until_settled(view, envs[where]) for where, view in parts.items()}
        say(f"  {'account/region':<24} {'resource':<44} {'before':<27} {'Friday night':<27} Monday morning")
        for where, rows in before.items():
            for resource, state in rows.items():
                label = f"{where[0]}/{where[1]}"
                say(
                    f"  {label:<24} {resource:<44} {state:<27} {night[where][resource]:<27} {morning[where][resource]}"
                )
        for label, run in (("stop", stop), ("start", started)):
            say(f"  {label:<10} {run['status']}: {(run['output'] or run['error'] or {}).get('summary')}")
        say(
            f"  Monday morning both account-regions are {'exactly as before' if morning == before else 'DIFFERENT from before'}."
        )
        unexpected = sum(run["status"] != "SUCCEEDED" for run in (bake, stop, started)) + (morning != before)
        return unexpected, org.iam.calls_held, len(org.iam.denials)


def describe_app(aws: EmbeddedAws, app: seed.BlueGreenApp) -> str:
    """The listener's split and each side's service: what a person checks before and after a deploy."""
    (action,) = aws.client("elbv2").describe_listeners(ListenerArns=[app.listener_arn])["Listeners"][0][
        "DefaultActions"
    ]
    split = " / ".join(
        f"{g['TargetGroupArn'].split('/')[1]} {g['Weight']}" for g in action["ForwardConfig"]["TargetGroups"]
    )
    sides = []
    for name in ("web", "web-green"):
        found = aws.client("ecs").describe_services(cluster=app.cluster, services=[name])["services"]
        if not found or found[0]["status"] != "ACTIVE":
            sides.append(f"{name} (none)")
            continue
        service = found[0]
        version = service["taskDefinition"].split("/")[-1]
        sides.append(f"{name} {service['runningCount']}/{service['desiredCount']} tasks of {version}")
    return f"listener {split}; " + ", ".join(sides)


def blue_green(aws: EmbeddedAws, first: int, total: int) -> int:
    """Two deploys of an ECS service behind an ALB: a canary that goes live, then a new version whose
    alarm fires at 50 % and is rolled back within that step."""
    app = seed.blue_green_app(aws)
    seed.alarm(aws, "web-5xx")
    unexpected = 0
    with seed.health_endpoint() as url:
        deploys: list[tuple[str, str, dict[str, Any], bool]] = [
            (
                "ECS blue/green: canary 10% for 5 minutes, then 100%, bake 10 minutes",
                "SUCCEEDED",
                app.request(
                    image="123456789012.dkr.ecr.us-east-1.amazonaws.com/web:2.0",
                    test_listener_arn=app.test_listener_arn,
                    smoke_test={"url": f"{url}/health"},
                    traffic={"type": "canary", "percent": 10, "hold_seconds": 300},
                    alarms=["web-5xx"],
                    bake_seconds=600,
                ),
                False,
            ),
            (
                "ECS blue/green: 10% -> 50% -> 100%, the 5xx alarm fires at 50%",
                "FAILED",
                app.request(
                    image="123456789012.dkr.ecr.us-east-1.amazonaws.com/web:3.0",
                    test_listener_arn=app.test_listener_arn,
                    smoke_test={"url": f"{url}/health"},
                    traffic={
                        "type": "steps",
                        "steps": [
                            {"percent": 10, "hold_seconds": 120},
                            {"percent": 50, "hold_seconds": 600},
                            {"percent": 100},
                        ],
                    },
                    alarms=["web-5xx"],
                ),
                True,
            ),
        ]
        for number, (title, expect, request, alarm_at_50) in enumerate(deploys, first):
            say()
            say(f"[{number}/{total}] {title}   (expected: {expect})")
            before = describe_app(aws, app)
            sent = len(aws.notifications)
            began = time.monotonic()
            run_id = post(aws, request)
            if alarm_at_50:
                _set_alarm_when_shifted(aws, run_id, 50, "web-5xx")
            run = aws.wait_for_run(run_id, timeout=180)
            seconds = time.monotonic() - began
            say(
                f"  status     {run['status']}   ({seconds:.1f} s, with Step Functions waits "
                f"{1 / aws.time_scale:.0f}x faster than on AWS)"
            )
            if run["status"] == "SUCCEEDED":
                say(f"  result     {run['output']['summary']}")
                shares = run["output"]["weights"]
            else:
                error = run["error"]
                say(f"  gate       {error['gate']} at {error['weight']}% on green")
                say(f"  why        {error['message']}")
                shares = error["weights"]
            say("  traffic    0% -> " + " -> ".join(f"{share}%" for share in shares) + " on green")
            say(f"  before     {before}")
            say(f"  after      {describe_app(aws, app)}")
            say("  steps      " + " -> ".join(_step_labels(run["steps"])))
            show_notifications(aws.notifications[sent:])
            if run["status"] != expect:
                unexpected += 1
                say(f"  !! expected {expect}, got {run['status']}")
            aws.client("cloudwatch").set_alarm_state(AlarmName="web-5xx", StateValue="OK", StateReason="demo")
    return unexpected


def describe_weights(aws: EmbeddedAws, site: seed.WeightedSite) -> str:
    sets = aws.client("route53").list_resource_record_sets(
        HostedZoneId=site.hosted_zone_id, StartRecordName=site.record_name
    )["ResourceRecordSets"]
    return ", ".join(f"{s['SetIdentifier']} {s['Weight']}" for s in sets if "SetIdentifier" in s)


def dns_cutover(aws: EmbeddedAws, first: int, total: int) -> int:
    """Moving www to a new region by its Route 53 weighted records: a cutover gated by the new region's
    health check that goes through, then one whose health check fails at 50 % and is put back."""
    site = seed.weighted_site(aws)
    unexpected = 0
    cutovers = [
        ("move www to eu-west-1: 10% -> 50% -> 100%, gated by eu-west-1's health check", "SUCCEEDED", False),
        ("move www back to us-east-1; us-east-1's health check fails at 50%", "FAILED", True),
    ]
    for number, (title, expect, fail_at_50) in enumerate(cutovers, first):
        to = site.to_set if not fail_at_50 else site.from_set
        say()
        say(f"[{number}/{total}] DNS cutover: {title}   (expected: {expect})")
        before = describe_weights(aws, site)
        sent = len(aws.notifications)
        began = time.monotonic()
        run_id = post(
            aws,
            site.request(
                to=to,
                traffic={
                    "type": "steps",
                    "steps": [
                        {"percent": 10, "hold_seconds": 120},
                        {"percent": 50, "hold_seconds": 300},
                        {"percent": 100},
                    ],
                },
                bake_seconds=300,
            ),
        )
        if fail_at_50:
            _fail_health_check_when_shifted(aws, site, run_id, 50, site.health_checks[to])
        run = aws.wait_for_run(run_id, timeout=180)
        seconds = time.monotonic() - began
        say(
            f"  status     {run['status']}   ({seconds:.1f} s, with Step Functions waits "
            f"{1 / aws.time_scale:.0f}x faster than on AWS)"
        )
        if run["status"] == "SUCCEEDED":
            say(f"  result     {run['output']['summary']}")
            shares = run["output"]["weights"]
        else:
            error = run["error"]
            say(f"  gate       {error['gate']} at {error['weight']}% on {error['to']}")
            say(f"  why        {error['message']}")
            shares = error["weights"]
        say(f"  traffic    0% -> {' -> '.join(f'{share}%' for share in shares)} on {to}")
        say(f"  before     {site.record_name}: {before}")
        say(f"  after      {site.record_name}: {describe_weights(aws, site)}")
        say("  steps      " + " -> ".join(_step_labels(run["steps"])))
        show_notifications(aws.notifications[sent:])
        if run["status"] != expect:
            unexpected += 1
            say(f"  !! expected {expect}, got {run['status']}")
    return unexpected


def _remediations(aws: EmbeddedAws) -> list[dict[str, Any]]:
    return list(aws.api.get("/runs?workflow=remediate", principal=PRINCIPAL).json()["runs"])


def _wait(what: str, condition: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"the demo waited {timeout:.0f} s for {what}")
        time.sleep(0.05)


def _checks(aws: EmbeddedAws, instance_id: str) -> str:
    [status] = aws.client("ec2").describe_instance_status(
        InstanceIds=[instance_id], IncludeAllInstances=True
    )["InstanceStatuses"]
    return (
        f"{status['InstanceState']['Name']}, system {status['SystemStatus']['Status']}, "
        f"instance {status['InstanceStatus']['Status']}"
    )


def remediation(aws: EmbeddedAws, net: seed.Network, first: int, total: int) -> int:
    """A status check rule on a group of 4: one instance's check fails and a reboot fixes it; it fails again
    inside the cooldown and is left alone, on the record; then every instance fails at once and the breaker
    opens after 3 actions, and the team is told."""
    fleet = seed.fleet(aws, net, "api", 4)
    for instance_id in fleet:
        seed.status_check_alarm(
            aws, f"{instance_id}-status", "StatusCheckFailed_Instance", InstanceId=instance_id
        )
    rule = {
        "description": "Reboot an api instance whose OS stops answering",
        "trigger": {"kind": "status_check", "check": "instance"},
        "action": {"kind": "reboot"},
        "scope": {"environment": "prod", "asg_name": "api"},
        "cooldown_minutes": 30,
        "breaker": {"max_actions": 3, "within_minutes": 60},
        "concurrency": {"max_resources": 2, "max_percent": 50},
    }
    response = aws.api.put("/remediations/api-status", json=rule, principal=PRINCIPAL)
    if response.status_code != 200:
        raise SystemExit(f"PUT /remediations/api-status answered {response.status_code}: {response.text}")
    unexpected = 0

    say()
    say(f"[{first}/{total}] Remediation: {fleet[0]}'s instance status check fails   (expected: SUCCEEDED)")
    say("  PUT /remediations/api-status -> 200  reboot, cooldown 30 min, breaker 3 in 60 min, 2 at once")
    sent = len(aws.notifications)
    began = time.monotonic()
    aws.emulation.ec2.impair(fleet[0], "instance")
    _wait("a remediation", lambda: len(_remediations(aws)) == 1)
    run = aws.wait_for_run(_remediations(aws)[0]["run_id"], timeout=180)
    say(f"  status     {run['status']}   ({time.monotonic() - began:.1f} s)")
    say(f"  cause      {run['output']['cause']}")
    say(f"  result     {run['output']['summary']}")
    say(f"  instance   {_checks(aws, fleet[0])}")
    say("  steps      " + " -> ".join(_step_labels(run["steps"])))
    show_notifications(aws.notifications[sent:])
    if run["status"] != "SUCCEEDED":
        unexpected += 1
        say(f"  !! expected SUCCEEDED, got {run['status']}")

    say()
    say(
        f"[{first + 1}/{total}] Remediation: its check fails again, inside the cooldown   (expected: SKIPPED)"
    )
    aws.emulation.ec2.impair(fleet[0], "instance")
    _wait("a second answer", lambda: len(_remediations(aws)) == 2)
    [skipped] = [r for r in _remediations(aws) if r["run_id"] != run["run_id"]]
    shown = aws.api.get(f"/runs/{skipped['run_id']}", principal=PRINCIPAL).json()
    say(f"  status     {skipped['status']}   run {skipped['run_id']}")
    say(f"  why        {shown['output']['summary']}")
    say(f"  instance   {_checks(aws, fleet[0])}  (left for a person to look at)")
    if skipped["status"] != "SKIPPED":
        unexpected += 1
        say(f"  !! expected SKIPPED, got {skipped['status']}")

    say()
    say(
        f"[{first + 2}/{total}] Remediation: a bad release breaks every api instance at once   (expected: breaker open)"
    )
    sent = len(aws.notifications)
    for instance_id in fleet[1:]:
        aws.emulation.ec2.impair(instance_id, "instance", reboot_fixes=False)
    _wait("an answer for each", lambda: len(_remediations(aws)) == 5)
    for instance_id in fleet[1:]:
        [answer] = [r for r in _remediations(aws) if instance_id in r["target"]]
        if answer["status"] != "SKIPPED":
            answer = aws.wait_for_run(answer["run_id"], timeout=180)
        shown = aws.api.get(f"/runs/{answer['run_id']}", principal=PRINCIPAL).json()
        why = (shown.get("output") or {}).get("summary") or (shown.get("error") or {}).get("message", "")
        say(f"  {instance_id}  {answer['status']:<9} {why}")
    state = aws.api.get("/remediations/api-status", principal=PRINCIPAL).json()["breaker"]
    say(f"  breaker    {state['state']}: {state.get('reason', '')}")
    say("  close it   DELETE /remediations/api-status/breaker, once the release is rolled back")
    show_notifications([n for n in aws.notifications[sent:] if "circuit breaker" in n.text])
    if state["state"] != "open":
        unexpected += 1
        say(f"  !! expected the breaker open, got {state['state']}")
    return unexpected


def pipeline_burst(aws: EmbeddedAws, number: int, total: int) -> int:
    """A CodePipeline run failing in its build: six events within seconds, one summary per channel."""
    say()
    say(
        f"[{number}/{total}] A pipeline run fails in its build: 6 events, one summary   "
        "(expected: at most 2 messages per channel)"
    )
    sent = len(aws.notifications)
    events = seed.failing_pipeline_run(
        aws, "web-deploy", "3137f7cb-8d49-4d8b-b7e3-3f8ba8d7c2a1", "Build failed: npm test exited with 1"
    )
    aws.client("events").put_events(Entries=events)
    aws.client("events").put_events(Entries=events[3:4])  # the action's failure, reported a second time
    received = aws.notifications[sent:]
    say(f"  events     {len(events) + 1} delivered to the notify function (the action's failure twice)")
    show_notifications(received)
    per_channel = [sum(1 for n in received if n.platform == p) for p in ("slack", "teams")]
    if max(per_channel) > 2 or min(per_channel) < 1:
        say(f"  !! expected 1 or 2 messages per channel, got {per_channel}")
        return 1
    return 0


def region_move(first: int, total: int) -> tuple[int, int, int]:
    """Moving web to a new region: bake the new code on a builder in us-east-1, copy the image to eu-west-1
    and publish it to eu-west-1's launch template, then cut www over by DNS (and a cutover put back).
    Returns (unexpected outcomes, calls held, denied)."""
    home, away = "us-east-1", "eu-west-1"
    with EmbeddedAws(regions=[home, away]) as aws:
        say()
        say(
            f"[{first}/{total}] Move web to {away}: bake web 2.4.1 on a builder in {home}, copy it to {away}, "
            f"publish {away}'s launch template   (expected: SUCCEEDED)"
        )
        registered = aws.api.put(f"/accounts/{aws.account_id}", json={"regions": [home, away]})
        say(
            f"  PUT /accounts/{aws.account_id} -> {registered.status_code}: Opsflow may act in {home} and {away}"
        )
        net = seed.network(aws)
        seed.launch_template_group(aws, net, "web", capacity=2)
        seed.builder_profile(aws, "web-builder")
        eu_template = seed.opted_in_template(aws.located(None, away), "web")
        before = describe_group(aws, "web")
        sent = len(aws.notifications)
        run, seconds = start(
            aws,
            {
                "workflow": "ami_bake",
                "asg_name": "web",
                "builder": {
                    "instance_profile": "web-builder",
                    "commands": [
                        "curl -fsSL https://artifacts.example.com/web-2.4.1.tar.gz | tar xz -C /opt/web",
                        "systemctl enable web",
                    ],
                },
                "distribute": {"regions": [away], "launch_templates": [{"name": "web", "region": away}]},
            },
        )
        report(aws, run, seconds, before)
        distribution = (run["output"] or {}).get("distribution") or {}
        for copy in distribution.get("copies", []):
            say(
                f"  copy       {copy['image_id']} in {copy['region']}: {copy['state']}, tagged like the image"
            )
        for template in distribution.get("templates", []):
            say(
                f"  {away:<10} launch template {eu_template} version {template['version']} launches "
                f"{template['image_id']} (default: version {template['version']}, was {template['previous_default']})"
            )
        show_notifications(aws.notifications[sent:])
        unexpected = 0 if run["status"] == "SUCCEEDED" else 1
        if unexpected:
            say(f"  !! expected SUCCEEDED, got {run['status']}")
        unexpected += dns_cutover(aws, first + 1, total)
        for denial in aws.iam.denials:
            say(f"  denied: {denial.message}")
        return unexpected, aws.iam.calls_held, len(aws.iam.denials)


def _fail_health_check_when_shifted(
    aws: EmbeddedAws, site: seed.WeightedSite, run_id: str, percent: int, health_check: str
) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        steps = aws.api.get(f"/runs/{run_id}").json()["steps"]
        if any(s["step"] == "shift" and s["summary"].startswith(f"{percent}% ") for s in steps):
            aws.emulation.route53.set_unhealthy(health_check, failing=7)
            say(f"  (at {percent}%, 7 of 8 Route 53 checkers of health check {health_check} report HTTP 503)")
            return
        time.sleep(0.05)
    raise SystemExit(f"run {run_id} never shifted to {percent}%")


def _set_alarm_when_shifted(aws: EmbeddedAws, run_id: str, percent: int, alarm: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        steps = aws.api.get(f"/runs/{run_id}").json()["steps"]
        if any(s["step"] == "shift" and s["summary"].startswith(f"{percent}% ") for s in steps):
            aws.client("cloudwatch").set_alarm_state(
                AlarmName=alarm, StateValue="ALARM", StateReason="5xx count 37 > 10 over 1 minute"
            )
            say(f"  (at {percent}% on green, alarm {alarm} goes to ALARM: 5xx count 37 > 10 over 1 minute)")
            return
        time.sleep(0.05)
    raise SystemExit(f"run {run_id} never shifted to {percent}%")


def main() -> int:
    say("Opsflow demo: the real template, state machines and handlers on an embedded local AWS (moto).")
    began = time.monotonic()
    with EmbeddedAws() as aws:
        say(f"Deployed template.yaml in {time.monotonic() - began:.1f} s: tables, functions, state machines.")
        net = seed.network(aws)
        app_server = seed.instance(aws, net, "app-server-1")
        seed.launch_template_group(aws, net, "web", capacity=2)
        seed.launch_configuration_group(aws, net, "legacy-batch")
        seed.launch_template_group(aws, net, "fleet", capacity=4)
        seed.builder_profile(aws, "web-builder")
        say(f"Seeded: {app_server} (root gp3 8 GiB, data gp3 100 GiB/4000 IOPS, data io2 50 GiB/5000 IOPS);")
        say("        groups web (launch template), legacy-batch (launch configuration), fleet (4 instances).")

        def failing_bake(aws: EmbeddedAws) -> tuple[dict[str, Any], float]:
            aws.emulation.ec2.fail_next_image("Snapshot of /dev/sdc failed: the volume was detached")
            return start(
                aws,
                {
                    "workflow": "ami_bake",
                    "instance_id": app_server,
                    "asg_name": "web",
                    "image_name": "{asg_name}-retry-{timestamp}",
                },
            )

        scenarios = [
            Scenario(
                "AMI bake -> group on a launch template",
                "web",
                "SUCCEEDED",
                lambda aws: start(
                    aws,
                    {
                        "workflow": "ami_bake",
                        "instance_id": app_server,
                        "asg_name": "web",
                        "tags": {"team": "payments"},
                    },
                ),
            ),
            Scenario(
                "AMI bake -> legacy group on a launch configuration",
                "legacy-batch",
                "SUCCEEDED",
                lambda aws: start(
                    aws, {"workflow": "ami_bake", "instance_id": app_server, "asg_name": "legacy-batch"}
                ),
            ),
            Scenario(
                "AMI bake on a builder: install web 2.4.1 with SSM Run Command, image it, terminate the builder",
                "web",
                "SUCCEEDED",
                lambda aws: start(
                    aws,
                    {
                        "workflow": "ami_bake",
                        "asg_name": "web",
                        "builder": {
                            "instance_profile": "web-builder",
                            "commands": [
                                "curl -fsSL https://artifacts.example.com/web-2.4.1.tar.gz | tar xz -C /opt/web",
                                "systemctl enable web",
                            ],
                        },
                    },
                ),
            ),
            Scenario(
                "AMI bake whose image fails -> everything it created is removed",
                "web",
                "FAILED",
                failing_bake,
            ),
            Scenario(
                "AMI bake + instance refresh of 4 instances, checkpoints at 50% and 100%",
                "fleet",
                "SUCCEEDED",
                lambda aws: start(
                    aws,
                    {
                        "workflow": "ami_bake",
                        "instance_id": app_server,
                        "asg_name": "fleet",
                        "refresh": {
                            "instance_warmup": 60,
                            "checkpoints": {"percentages": [50, 100], "delay_seconds": 120},
                        },
                    },
                ),
            ),
            Scenario("ASG refresh rolled back by an alarm", "fleet", "FAILED", refresh_stopped_by_alarm),
        ]
        unexpected = 0
        for number, scenario in enumerate(scenarios, 1):
            say()
            say(f"[{number}/{TOTAL_SCENARIOS}] {scenario.title}   (expected: {scenario.expect})")
            before = describe_group(aws, scenario.group)
            sent = len(aws.notifications)
            run, seconds = scenario.run(aws)
            report(aws, run, seconds, before)
            show_notifications(aws.notifications[sent:])
            if run["status"] != scenario.expect:
                unexpected += 1
                say(f"  !! expected {scenario.expect}, got {run['status']}")
        unexpected += environment_power(aws, net, len(scenarios) + 1, TOTAL_SCENARIOS)
        unexpected += blue_green(aws, len(scenarios) + 2, TOTAL_SCENARIOS)
        unexpected += remediation(aws, net, len(scenarios) + 4, TOTAL_SCENARIOS)
        unexpected += pipeline_burst(aws, len(scenarios) + 7, TOTAL_SCENARIOS)
        held, denials = aws.iam.calls_held, list(aws.iam.denials)
    moved, held_moving, denied_moving = region_move(len(scenarios) + 8, TOTAL_SCENARIOS)
    elsewhere, held_elsewhere, denied_elsewhere = many_accounts(len(scenarios) + 11, TOTAL_SCENARIOS)
    unexpected += moved + denied_moving + elsewhere + denied_elsewhere
    held += held_moving + held_elsewhere
    say()
    say(
        f"IAM: {held:,} AWS calls of Opsflow's functions and state machines were held to their roles' "
        f"policies as deployed; {len(denials)} denied."
    )
    for denial in denials:
        say(f"  denied: {denial.message}")
    total = time.monotonic() - began
    if unexpected:
        say(f"Demo finished in {total:.1f} s with {unexpected} unexpected outcome(s).")
        return 1
    say(f"Demo finished in {total:.1f} s: every run ended as expected.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
