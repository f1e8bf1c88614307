"""What holding every call to IAM costs the embedded runtime: the same runs with IAM on and off.

    .venv/bin/python benchmarks/iam_overhead.py [--runs 3]

Per scenario: the median wall time of --runs runs with `EmbeddedAws(iam=True)` and with `iam=False`,
their ratio, and how many AWS calls each run had evaluated. Deploying (SAM's expansion of the
template's roles) is timed once, apart.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from opsflow_local import EmbeddedAws, seed
from opsflow_local.iam import translate
from opsflow_local.runtime import DEFAULT_TEMPLATE
from opsflow_local.template import Template

sys.path.insert(0, str(Path(__file__).parent))
from run_cost import measure, scenario_bake, scenario_bake_and_refresh, scenario_blue_green

SCENARIOS = [
    ("AMI bake", scenario_bake),
    ("AMI bake + refresh of 4", scenario_bake_and_refresh),
    ("ECS blue/green canary + bake", scenario_blue_green),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    began = time.perf_counter()
    translate(Template.load(DEFAULT_TEMPLATE, "us-east-1"))
    print(
        f"SAM expansion of the template's roles: {(time.perf_counter() - began) * 1000:.0f} ms (once per template)"
    )
    print(f"{'scenario':<32} {'IAM off s':>9} {'IAM on s':>9} {'ratio':>6} {'calls held/run':>15}")
    for title, build in SCENARIOS:
        walls: dict[bool, list[float]] = {True: [], False: []}
        held = 0
        for run in range(args.runs):
            for iam in (False, True):
                with EmbeddedAws(iam=iam) as aws:
                    net = seed.network(aws)
                    walls[iam].append(measure(aws, build(aws, net, run))["wall"])
                    if iam:
                        held += aws.iam.calls_held
        off, on = statistics.median(walls[False]), statistics.median(walls[True])
        print(f"{title:<32} {off:>9.2f} {on:>9.2f} {on / off:>5.2f}x {held / args.runs:>15.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
