"""What one run costs: Step Functions state transitions (Standard workflows bill per transition),
Lambda invocations, and how long it takes on the embedded runtime against the AWS time it stands for.

    .venv/bin/python benchmarks/run_cost.py [--runs 3]

Figures are per run, as the median of --runs runs. The price is Step Functions Standard's list price in
us-east-1 (USD 0.025 per 1,000 state transitions); Lambda and API calls are left out (cents per thousand).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from opsflow_local import EmbeddedAws, seed

PRICE_PER_TRANSITION = 0.025 / 1000


def measure(aws: EmbeddedAws, request: dict[str, Any]) -> dict[str, float]:
    began = time.monotonic()
    response = aws.api.post("/runs", json=request)
    assert response.status_code == 202, response.text
    run = aws.wait_for_run(response.json()["run_id"], timeout=300)
    wall = time.monotonic() - began
    assert run["status"] == "SUCCEEDED", run["error"]
    history = aws.client("stepfunctions").get_execution_history(
        executionArn=run["execution_arn"], maxResults=1000
    )
    events = history["events"]
    transitions = sum(1 for e in events if e["type"].endswith("StateEntered"))
    invocations = sum(1 for e in events if e["type"] == "TaskScheduled")
    aws_seconds = (events[-1]["timestamp"] - events[0]["timestamp"]).total_seconds() / aws.time_scale
    return {"wall": wall, "transitions": transitions, "invocations": invocations, "aws_seconds": aws_seconds}


def scenario_bake(aws: EmbeddedAws, net: seed.Network, index: int) -> dict[str, Any]:
    name = f"web{index}"
    seed.launch_template_group(aws, net, name)
    return {"workflow": "ami_bake", "instance_id": seed.instance(aws, net, f"app-{index}"), "asg_name": name}


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    scenarios: list[tuple[str, Callable[[EmbeddedAws, seed.Network, int], dict[str, Any]]]] = [
        ("AMI bake (image pending 60 s, polled every 15 s)", scenario_bake),
        (
            "AMI bake + refresh of 4 (warm-up 300 s, 2 checkpoints of 600 s, polled every 30 s)",
            scenario_bake_and_refresh,
        ),
        (
            "ECS blue/green of 2 tasks: canary 10% for 300 s, bake 600 s, polled every 30 s",
            scenario_blue_green,
        ),
    ]
    with EmbeddedAws() as aws:
        net = seed.network(aws)
        print(
            f"{'scenario':<88} {'transitions':>11} {'USD/run':>9} {'lambdas':>8} {'wall s':>7} {'AWS s':>7} {'speed-up':>9}"
        )
        for title, build in scenarios:
            figures = [measure(aws, build(aws, net, i)) for i in range(args.runs)]
            median = {key: statistics.median(f[key] for f in figures) for key in figures[0]}
            print(
                f"{title:<88} {median['transitions']:>11.0f} {median['transitions'] * PRICE_PER_TRANSITION:>9.5f} "
                f"{median['invocations']:>8.0f} {median['wall']:>7.2f} {median['aws_seconds']:>7.0f} "
                f"{median['aws_seconds'] / median['wall']:>8.0f}x"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
