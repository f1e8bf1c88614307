"""An environment across many accounts and regions from one hub: AWS calls per stop and start, by
account-region and in all, role assumptions, state transitions and the largest execution history; against
one Opsflow deployment per account-region, the alternative a hub replaces.

    .venv/bin/python benchmarks/many_accounts.py [--accounts 20] [--regions 3]

Each account-region holds a small part of environment `qa`: one instance and one Auto Scaling group of one
instance, opted in. The hub's calls are held to IAM as deployed (its tables, its state machine, STS), and so
are the spoke roles' in each account-region, so the counts are the calls AWS would bill or throttle.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from typing import Any

from opsflow_local import EmbeddedAws, seed

HUB = "100000000000"
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]
PRICE_PER_TRANSITION = 0.025 / 1000


def seed_part(aws: Any) -> None:
    """One opted-in instance and a group of one, in environment qa."""
    net = seed.network(aws)
    tags = [{"Key": "opsflow:managed", "Value": "true"}, {"Key": "opsflow:environment", "Value": "qa"}]
    aws.client("ec2").run_instances(
        ImageId=seed.base_image_id(aws),
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        SubnetId=net.subnet_id,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )
    seed.launch_template_group(aws, net, "qa-web", capacity=1)
    aws.client("autoscaling").create_or_update_tags(
        Tags=[
            {"ResourceId": "qa-web", "ResourceType": "auto-scaling-group", "PropagateAtLaunch": False, **tag}
            for tag in tags
        ]
    )


def history(aws: EmbeddedAws, execution_arn: str) -> list[dict[str, Any]]:
    sfn = aws.client("stepfunctions")
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events += page["events"]
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def run(aws: EmbeddedAws, action: str, targets: list[dict[str, str]]) -> dict[str, Any]:
    calls_before = Counter(aws.iam.calls_by_place)
    operations_before = Counter(aws.iam.calls_by_operation)
    began = time.monotonic()
    response = aws.api.post(
        "/runs",
        json={"workflow": "env_power", "environment": "qa", "action": action, "targets": targets},
        headers={"Idempotency-Key": f"bench-{action}"},
    )
    assert response.status_code == 202, response.text
    done = aws.wait_for_run(response.json()["run_id"], timeout=1200)
    wall = time.monotonic() - began
    assert done["status"] == "SUCCEEDED", done["error"]
    events = history(aws, done["execution_arn"])
    by_place = Counter(aws.iam.calls_by_place)
    by_place.subtract(calls_before)
    operations = Counter(aws.iam.calls_by_operation)
    operations.subtract(operations_before)
    return {
        "wall": wall,
        "events": len(events),
        "transitions": sum(1 for e in events if e["type"].endswith("StateEntered")),
        "by_place": {place: n for place, n in by_place.items() if n},
        "assumed": operations["sts:AssumeRole"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=20, help="spoke accounts (default 20)")
    parser.add_argument("--regions", type=int, default=3, choices=range(1, len(REGIONS) + 1))
    args = parser.parse_args()
    spokes = [f"{200000000000 + i:012d}" for i in range(args.accounts)]
    regions = REGIONS[: args.regions]
    began = time.monotonic()
    with EmbeddedAws(accounts=[HUB, *spokes], regions=regions, time_scale=0.002) as aws:
        deployed = time.monotonic() - began
        for account in spokes:
            response = aws.api.put(f"/accounts/{account}", json={"regions": regions})
            assert response.status_code == 200, response.text
            for region in regions:
                seed_part(aws.located(account, region))
        targets = [{"account": account, "region": region} for account in spokes for region in regions]
        stop = run(aws, "stop", targets)
        start = run(aws, "start", targets)
        denied = len(aws.iam.denials)
    places = len(targets)
    print(
        f"{args.accounts} spoke accounts x {len(regions)} regions = {places} account-regions; hub and spokes "
        f"deployed in {deployed:.1f} s"
    )
    print()
    print(f"{'':<26} {'stop':>10} {'start':>10}")
    for label, key in (("state transitions", "transitions"), ("execution history events", "events")):
        print(f"{label:<26} {stop[key]:>10,} {start[key]:>10,}")
    spoke_calls = {
        action: [n for (account, _), n in result["by_place"].items() if account != HUB]
        for action, result in (("stop", stop), ("start", start))
    }
    hub_calls = {
        action: sum(n for (account, _), n in result["by_place"].items() if account == HUB)
        for action, result in (("stop", stop), ("start", start))
    }
    for label, pick in (
        ("AWS calls, all", lambda action: sum(spoke_calls[action]) + hub_calls[action]),
        ("  in the hub", lambda action: hub_calls[action]),
        ("  per account-region, median", lambda action: statistics.median(spoke_calls[action])),
        ("  per account-region, most", lambda action: max(spoke_calls[action])),
    ):
        print(f"{label:<26} {pick('stop'):>10,.0f} {pick('start'):>10,.0f}")
    print(f"{'role assumptions':<26} {stop['assumed']:>10,} {start['assumed']:>10,}")
    print(f"{'wall time, s (embedded)':<26} {stop['wall']:>10.1f} {start['wall']:>10.1f}")
    print(f"IAM denials: {denied}")
    print()
    # One deployment per account-region instead: each runs its own stop and start of its part, so
    # per part the transitions of a one-place run (measured by benchmarks/run_cost.py's env-power rows
    # shape, here re-measured on the same small part), and every deployment keeps its own stack, tables,
    # schedules and audit trail.
    single = EmbeddedAws(time_scale=0.002)
    with single as one:
        seed_part(one)
        one_stop = run(one, "stop", [{}])
        one_start = run(one, "start", [{}])
    print(
        f"One deployment per account-region instead ({places} stacks, {places} audit trails, {2 * places} schedules):"
    )
    for label, hub_value, one_value in (
        ("state transitions, stop", stop["transitions"], one_stop["transitions"] * places),
        ("state transitions, start", start["transitions"], one_start["transitions"] * places),
    ):
        print(
            f"  {label:<24} hub {hub_value:>7,}   {places} deployments {one_value:>7,}   "
            f"ratio {hub_value / one_value:.2f}"
        )
    for action, result, alone in (("stop", stop, one_stop), ("start", start, one_start)):
        price = result["transitions"] * PRICE_PER_TRANSITION
        print(
            f"  USD per {action:<5} (transitions)   hub {price:.4f}   {places} deployments "
            f"{alone['transitions'] * places * PRICE_PER_TRANSITION:.4f}"
        )
    return 0 if denied == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
