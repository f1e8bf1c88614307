"""What one run costs: Step Functions state transitions (Standard workflows bill per transition),
Lambda invocations, and how long it takes on the embedded runtime against the AWS time it stands for; and
how fast a blue/green deploy puts all traffic back on blue once one of its alarms goes to ALARM.

    .venv/bin/python benchmarks/run_cost.py [--runs 3] [--drop 0.5]

Figures are per run, as the median of --runs runs. The price is Step Functions Standard's list price in
us-east-1 (USD 0.025 per 1,000 state transitions) plus Lambda's requests (USD 0.20 per million) and
compute at 512 MB on arm64 (USD 0.0000133334 per GB-second, each invocation counted as 100 ms); API calls
are left out. `--drop` loses that share of the best-effort events (AMI, Auto Scaling, RDS), so the waits
they would have ended end by the reconcile interval instead.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from opsflow_local import EmbeddedAws, seed

PRICE_PER_TRANSITION = 0.025 / 1000
PRICE_PER_INVOCATION = 0.20 / 1_000_000 + 0.0000133334 * 0.5 * 0.1


Started = dict[str, Any] | Callable[[], str]


def measure(aws: EmbeddedAws, request: Started) -> dict[str, float]:
    """Figures of one run: of a request posted to the API, or of the run id a callable makes happen (a
    remediation, which a failure event starts)."""
    invoked_before = sum(getattr(aws.lambdas, "invoked", {}).values())
    calls_before = aws.iam.calls_held
    began = time.monotonic()
    if callable(request):
        run_id = request()
    else:
        response = aws.api.post("/runs", json=request)
        assert response.status_code == 202, response.text
        run_id = response.json()["run_id"]
    run = aws.wait_for_run(run_id, timeout=300)
    wall = time.monotonic() - began
    assert run["status"] == "SUCCEEDED", run["error"]
    time.sleep(0.2)  # the run_ended and notify deliveries that follow the run's end
    history = aws.client("stepfunctions").get_execution_history(
        executionArn=run["execution_arn"], maxResults=1000
    )
    events = history["events"]
    transitions = sum(1 for e in events if e["type"].endswith("StateEntered"))
    # The state machine's own invocations of its steps function, and every function the run caused to run:
    # those, the resume function the events it waited on invoked, notifications and run_ended, and the
    # API's own request (a runtime that does not count them says -1).
    invocations = sum(1 for e in events if e["type"] == "TaskScheduled")
    counted = getattr(aws.lambdas, "invoked", None)
    everything = sum(counted.values()) - invoked_before if counted is not None else -1
    aws_seconds = (events[-1]["timestamp"] - events[0]["timestamp"]).total_seconds() / aws.time_scale
    return {
        # Every AWS call of Opsflow's functions and state machines for the run (each held to IAM).
        "calls": aws.iam.calls_held - calls_before,
        "wall": wall,
        "transitions": transitions,
        "invocations": invocations,
        "everything": everything,
        "aws_seconds": aws_seconds,
    }


def scenario_bake(aws: EmbeddedAws, net: seed.Network, index: int) -> dict[str, Any]:
    name = f"web{index}"
    seed.launch_template_group(aws, net, name)
    return {"workflow": "ami_bake", "instance_id": seed.instance(aws, net, f"app-{index}"), "asg_name": name}


def scenario_builder_bake(aws: EmbeddedAws, net: seed.Network, index: int) -> dict[str, Any]:
    name = f"built{index}"
    seed.launch_template_group(aws, net, name)
    if index == 0:
        seed.builder_profile(aws, "bench-builder")
    # The build runs 5 minutes.
    aws.emulation.ssm.respond(run_seconds=300)
    return {
        "workflow": "ami_bake",
        "asg_name": name,
        "builder": {"instance_profile": "bench-builder", "commands": ["make install"]},
    }


COPY_REGIONS = ["eu-west-1", "us-west-2", "ap-southeast-2"]


def scenario_distributed_bake(aws: EmbeddedAws, net: seed.Network, index: int) -> dict[str, Any]:
    name = f"global{index}"
    seed.launch_template_group(aws, net, name)
    for region in COPY_REGIONS:
        seed.opted_in_template(aws.located(None, region), name)
    return {
        "workflow": "ami_bake",
        "instance_id": seed.instance(aws, net, f"global-app-{index}"),
        "asg_name": name,
        "distribute": {
            "regions": COPY_REGIONS,
            "accounts": ["222222222222"],
            "launch_templates": [{"name": name, "region": region} for region in COPY_REGIONS],
        },
    }


def scenario_bake_and_refresh(aws: EmbeddedAws, net: seed.Network, index: int) -> dict[str, Any]:
    name = f"fleet{index}"
    seed.launch_template_group(aws, net, name, capacity=4)
    return {
        "workflow": "ami_bake",
        "instance_id": seed.instance(aws, net, f"fleet-app-{index}"),
        "asg_name": name,
        "refresh": {"instance_warmup": 300, "checkpoints": {"percentages": [50, 100], "delay_seconds": 600}},
    }


def scenario_blue_green(aws: EmbeddedAws, net: seed.Network, index: int) -> dict[str, Any]:
    app = seed.blue_green_app(aws, name=f"web{index}")
    return app.request(
        image=f"123456789012.dkr.ecr.us-east-1.amazonaws.com/web{index}:2.0",
        traffic={"type": "canary", "percent": 10, "hold_seconds": 300},
        bake_seconds=600,
    )


def scenario_dns_shift(aws: EmbeddedAws, net: seed.Network, index: int) -> dict[str, Any]:
    site = seed.weighted_site(aws, domain=f"site{index}.example.com")
    return site.request(
        traffic={
            "type": "steps",
            "steps": [
                {"percent": 10, "hold_seconds": 300},
                {"percent": 50, "hold_seconds": 300},
                {"percent": 100},
            ],
        },
        bake_seconds=300,
    )


def env_power(aws: EmbeddedAws, net: seed.Network, index: int, action: str) -> dict[str, Any]:
    name = f"qa{index}"
    if action == "stop":
        seed.environment(aws, net, name)
    return {"workflow": "env_power", "environment": name, "action": action}


def scenario_env_stop(aws: EmbeddedAws, net: seed.Network, index: int) -> dict[str, Any]:
    return env_power(aws, net, index, "stop")


def scenario_env_start(aws: EmbeddedAws, net: seed.Network, index: int) -> dict[str, Any]:
    return env_power(aws, net, index, "start")


def scenario_remediation(aws: EmbeddedAws, net: seed.Network, index: int) -> Callable[[], str]:
    """An instance's status check fails; its alarm's event starts a reboot, watched until the alarm is OK."""
    [instance_id] = seed.fleet(aws, net, f"heal{index}", 1)
    seed.status_check_alarm(aws, f"heal{index}-status", InstanceId=instance_id)
    if index == 0:
        rule = {
            "trigger": {"kind": "status_check"},
            "action": {"kind": "reboot"},
            "cooldown_minutes": 30,
            "breaker": {"max_actions": 1000},
        }
        assert aws.api.put("/remediations/bench-reboot", json=rule).status_code == 200

    def fire() -> str:
        aws.emulation.ec2.impair(instance_id, "instance")
        while True:
            runs = aws.api.get("/runs?workflow=remediate").json()["runs"]
            found = [r["run_id"] for r in runs if instance_id in r["target"]]
            if found:
                return str(found[0])
            time.sleep(0.01)

    return fire


SCENARIOS: list[tuple[str, Callable[[EmbeddedAws, seed.Network, int], Started]]] = [
    ("AMI bake (image pending 60 s)", scenario_bake),
    (
        "AMI bake on a builder (registration 30 s, a build of 300 s, image pending 60 s)",
        scenario_builder_bake,
    ),
    (
        "AMI bake copied to 2 more regions (copies 120 s), shared, 3 launch templates",
        scenario_distributed_bake,
    ),
    ("AMI bake + refresh of 4 (warm-up 300 s, 2 checkpoints of 600 s)", scenario_bake_and_refresh),
    ("ECS blue/green of 2 tasks: canary 10% for 300 s, bake 600 s", scenario_blue_green),
    ("DNS cutover: 10% -> 50% -> 100%, holds of 300 s, bake 300 s, a health check", scenario_dns_shift),
    (
        "Environment stop: 3 instances, 2 groups, 2 services, an RDS instance, an Aurora cluster",
        scenario_env_stop,
    ),
    ("Environment start of the same, databases first", scenario_env_start),
    ("Remediation: a failed instance check rebooted, watched until its alarm is OK", scenario_remediation),
]


def alarm_to_blue(aws: EmbeddedAws, index: int) -> float:
    """Seconds from an alarm's state change to ALARM to the ModifyListener that puts all traffic on blue."""
    alarm = f"bench-5xx-{index}"
    seed.alarm(aws, alarm)
    app = seed.blue_green_app(aws, name=f"alarmed{index}")
    restored: list[float] = []
    lock = threading.Lock()

    def seen(params: dict[str, Any]) -> bool:
        groups = (params.get("DefaultActions") or [{}])[0].get("ForwardConfig", {}).get("TargetGroups", [])
        weights = {g["TargetGroupArn"]: g.get("Weight", 1) for g in groups}
        if params.get("ListenerArn") == app.listener_arn and weights.get(app.green_target_group, 0) == 0:
            with lock:
                restored.append(time.monotonic())
        return False  # only watched, never failed

    watcher = aws.faults.fail_call("elbv2", "ModifyListener", "Unused", when=seen, times=None)
    request = app.request(
        image=f"123456789012.dkr.ecr.us-east-1.amazonaws.com/alarmed{index}:2.0",
        traffic={"type": "canary", "percent": 10, "hold_seconds": 3600},
        alarms=[alarm],
    )
    run_id = aws.api.post("/runs", json=request).json()["run_id"]
    while not any(
        s["step"] == "watch" and s["summary"].startswith("10% on green")
        for s in aws.api.get(f"/runs/{run_id}").json()["steps"]
    ):
        time.sleep(0.01)
    fired = time.monotonic()
    aws.client("cloudwatch").set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="benchmark")
    run = aws.wait_for_run(run_id, timeout=60)
    aws.faults.calls.remove(watcher)
    assert run["status"] == "FAILED", run
    assert restored, "the listener was never put back on blue"
    return restored[0] - fired


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--drop", type=float, default=0.0, help="share of best-effort events to lose")
    args = parser.parse_args()
    with EmbeddedAws(regions=["us-east-1", *COPY_REGIONS]) as aws:
        # The hub's other regions, where a distribution copies its images.
        registered = aws.api.put(
            f"/accounts/{aws.account_id}", json={"regions": ["us-east-1", *COPY_REGIONS]}
        )
        assert registered.status_code == 200, registered.text
        events = getattr(aws.emulation, "events", None)
        if args.drop and events is not None:
            events.drop_best_effort(args.drop, seed=7)
        net = seed.network(aws)
        print(
            f"{'scenario':<88} {'transitions':>11} {'steps':>6} {'all fns':>8} {'calls':>6} {'USD/run':>9} {'wall s':>7} "
            f"{'AWS s':>7} {'speed-up':>9}"
        )
        for title, build in SCENARIOS:
            figures = [measure(aws, build(aws, net, i)) for i in range(args.runs)]
            median = {key: statistics.median(f[key] for f in figures) for key in figures[0]}
            billed = max(median["everything"], median["invocations"])
            price = median["transitions"] * PRICE_PER_TRANSITION + billed * PRICE_PER_INVOCATION
            print(
                f"{title:<88} {median['transitions']:>11.0f} {median['invocations']:>6.0f} "
                f"{median['everything']:>8.0f} {median['calls']:>6.0f} {price:>9.5f} {median['wall']:>7.2f} {median['aws_seconds']:>7.0f} "
                f"{median['aws_seconds'] / median['wall']:>8.0f}x"
            )
        if events is not None:
            print(
                f"\nbest-effort events lost: {len(events.dropped)} of {len(events.sent) + len(events.dropped)}"
            )
        latencies = [alarm_to_blue(aws, i) for i in range(args.runs)]
        print(
            "\nalarm to ALARM -> listener back at 100% blue: "
            f"median {statistics.median(latencies):.2f} s, worst {max(latencies):.2f} s over {len(latencies)} deploys "
            "(embedded wall time: the runtime scales only Wait and Retry time, and none lies on that path, so it "
            f"is AWS time; a poll's Wait on it would stand for {1 / aws.time_scale:.0f}x as long)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
