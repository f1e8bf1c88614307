"""Waiting for a run to reach a point, as a person watching it would, and reading what was sent about it."""

from __future__ import annotations

import json
import time

from opsflow_local import EmbeddedAws
from opsflow_local.sink import Notification


def wait_until_waiting_for_its_image(aws: EmbeddedAws, run_id: str, timeout: float = 30) -> None:
    """A person aborts a run they see going on; moto's Step Functions can mishandle a StopExecution that
    lands while the execution's first Task is being dispatched, which AWS does not."""
    deadline = time.monotonic() + timeout
    while not any(s["step"] == "check_image" for s in aws.api.get(f"/runs/{run_id}").json()["steps"]):
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} never reached check_image")
        time.sleep(0.05)


def notifications_about(aws: EmbeddedAws, run_id: str) -> list[Notification]:
    """What the channels received about one run, once the deliveries under way have settled."""
    return [n for n in aws.notifications if run_id in json.dumps(n.payload)]
