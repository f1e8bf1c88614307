"""What the quiet costs and saves: a failing pipeline run's six events, through the template's rule to the
notify function on the embedded runtime, with a Slack bot channel, a Slack webhook and a Teams webhook.

    .venv/bin/python benchmarks/notify_bursts.py [--runs 3]

Per channel: the messages it shows (top-level and replies) against the six a channel got before bursts;
then the notify function's AWS calls per event (DynamoDB for the de-duplication and the burst) and its
median time per event. DynamoDB on-demand prices: USD 1.25 per million writes, 0.25 per million reads
(us-east-1).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from opsflow_local import EmbeddedAws, seed

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.test_notify_bursts import CHANNELS

WRITES = {"dynamodb:PutItem", "dynamodb:UpdateItem"}
READS = {"dynamodb:GetItem"}


def one_run(run: int) -> tuple[dict[str, tuple[int, int, int]], Counter[str], float, int]:
    with EmbeddedAws(parameters={"NotifyChannels": json.dumps(CHANNELS)}) as aws:
        secrets = aws.client("secretsmanager")
        secrets.create_secret(Name="opsflow/slack-bot", SecretString="xoxb-0000-test-token")
        secrets.create_secret(Name="opsflow/slack-hook", SecretString=aws.sink.url("slack", "hook"))
        secrets.create_secret(Name="opsflow/teams-cards", SecretString=aws.sink.url("teams", "cards"))
        events = seed.failing_pipeline_run(
            aws, "web-deploy", f"e-{run}", "Build failed: npm test exited with 1"
        )
        before = Counter(aws.iam.calls_by_operation)
        began = time.perf_counter()
        aws.client("events").put_events(Entries=events)
        received = aws.notifications
        seconds = time.perf_counter() - began
        calls = Counter(aws.iam.calls_by_operation)
        calls.subtract(before)
        shown = {}
        for channel in ("C0DEPLOYS", "hook", "cards"):
            mine = [n for n in received if n.channel == channel]
            tops = sum(1 for n in mine if n.thread_ts is None)
            shown[channel] = (tops, len(mine) - tops, sum(n.edits for n in mine))
        return shown, calls, seconds, len(events)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = [one_run(run) for run in range(args.runs)]
    shown, calls, _, events = results[0]
    print(f"{events} events of a failing CodePipeline run, {args.runs} run(s)")
    print(f"{'channel':<22} {'top-level':>9} {'replies':>8} {'edits':>6} {'before bursts':>14} {'ratio':>6}")
    for channel, label in (
        ("C0DEPLOYS", "Slack bot token"),
        ("hook", "Slack webhook"),
        ("cards", "Teams webhook"),
    ):
        tops, replies, edits = shown[channel]
        print(f"{label:<22} {tops:>9} {replies:>8} {edits:>6} {events:>14} {(tops + replies) / events:>6.2f}")
    writes = sum(n for op, n in calls.items() if op in WRITES)
    reads = sum(n for op, n in calls.items() if op in READS)
    print(f"notify's DynamoDB calls per event: {writes / events:.1f} writes, {reads / events:.1f} reads")
    print(f"  DynamoDB cost per 1,000 such runs: USD {(writes * 1.25 + reads * 0.25) / 1e6 * 1000:.4f}")
    print(f"  all AWS calls of the run: {dict(sorted((op, n) for op, n in calls.items() if n))}")
    median = statistics.median(seconds / events for _, _, seconds, events in results)
    print(f"median wall time per event, delivery included: {median * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
