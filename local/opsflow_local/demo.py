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


def start(aws: EmbeddedAws, request: dict[str, Any]) -> tuple[dict[str, Any], float]:
    began = time.monotonic()
    response = aws.api.post("/runs", json=request, principal=PRINCIPAL)
    if response.status_code != 202:
        raise SystemExit(f"POST /runs answered {response.status_code}: {response.text}")
    say(f"  POST /runs -> {response.status_code}  run {response.json()['run_id']}")
    run = aws.wait_for_run(response.json()["run_id"], timeout=120)
    return run, time.monotonic() - began


def describe_group(aws: EmbeddedAws, name: str) -> str:
    group = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"
    ][0]
    if group.get("LaunchTemplate"):
        template = group["LaunchTemplate"]
        return f"launch template {template['LaunchTemplateName']} ({template['LaunchTemplateId']}) version {template['Version']}"
    return f"launch configuration {group['LaunchConfigurationName']}"


def report(aws: EmbeddedAws, run: dict[str, Any], seconds: float, group_before: str) -> None:
    say(
        f"  status     {run['status']}   ({seconds:.1f} s, with Step Functions waits {1 / aws.time_scale:.0f}x faster than on AWS)"
    )
    say(f"  asked by   {run['requester']['identity']}")
    if run["status"] == "SUCCEEDED":
        output = run["output"]
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
        for warning in output["warnings"]:
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
    say("  steps      " + " -> ".join(_step_label(step) for step in run["steps"]))


def _step_label(step: dict[str, Any]) -> str:
    return f"{step['step']} ({step['attempts']} polls)" if step["attempts"] > 1 else str(step["step"])


def main() -> int:
    say("Opsflow demo: the real template, state machines and handlers on an embedded local AWS (moto).")
    began = time.monotonic()
    with EmbeddedAws() as aws:
        say(f"Deployed template.yaml in {time.monotonic() - began:.1f} s: tables, functions, state machines.")
        net = seed.network(aws)
        app_server = seed.instance(aws, net, "app-server-1")
        seed.launch_template_group(aws, net, "web", capacity=2)
        seed.launch_configuration_group(aws, net, "legacy-batch")
        say(f"Seeded: {app_server} (root gp3 8 GiB, data gp3 100 GiB/4000 IOPS, data io2 50 GiB/5000 IOPS),")
        say("        group web on a launch template, group legacy-batch on a launch configuration.")

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
                "AMI bake whose image fails -> everything it created is removed", "FAILED", failing_bake
            ),
        ]
        unexpected = 0
        for number, scenario in enumerate(scenarios, 1):
            say()
            say(f"[{number}/{len(scenarios)}] {scenario.title}   (expected: {scenario.expect})")
            before = describe_group(aws, scenario.group)
            run, seconds = scenario.run(aws)
            report(aws, run, seconds, before)
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
