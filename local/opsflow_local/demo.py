"""`make demo`: every workflow end to end on the embedded local AWS, told as a person would want to read it.

Exits non-zero if any run ends other than as the demo expects.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opsflow_local import EmbeddedAws, seed
from opsflow_local.sink import Notification

PRINCIPAL = "arn:aws:iam::123456789012:user/platform-oncall"


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
        if refreshes and refreshes[0]["PercentageComplete"] >= 25:
            break
        time.sleep(0.02)
    say("  ... 25% replaced: setting alarm fleet-5xx to ALARM (a burst of 5xx from the new instances)")
    cloudwatch.set_alarm_state(
        AlarmName="fleet-5xx", StateValue="ALARM", StateReason="5xx burst after deploy"
    )
    run = aws.wait_for_run(run_id, timeout=180)
    cloudwatch.set_alarm_state(AlarmName="fleet-5xx", StateValue="OK", StateReason="recovered")
    return run, time.monotonic() - began


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
            say(f"[{number}/{len(scenarios)}] {scenario.title}   (expected: {scenario.expect})")
            before = describe_group(aws, scenario.group)
            sent = len(aws.notifications)
            run, seconds = scenario.run(aws)
            report(aws, run, seconds, before)
            show_notifications(aws.notifications[sent:])
            if run["status"] != scenario.expect:
                unexpected += 1
                say(f"  !! expected {scenario.expect}, got {run['status']}")
    say()
    total = time.monotonic() - began
    if unexpected:
        say(f"Demo finished in {total:.1f} s with {unexpected} unexpected outcome(s).")
        return 1
    say(f"Demo finished in {total:.1f} s: every run ended as expected.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
