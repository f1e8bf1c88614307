"""A handler's cold start imports only what it uses: no other workflow's code, no library another function
needs. Checked on the modules a fresh interpreter holds after importing the handler, as Lambda imports it;
benchmarks/cold_start.py measures what that costs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ("ami_bake", "asg_refresh", "env_power", "ecs_blue_green")
EVENT_HANDLER = "aws_lambda_powertools.event_handler"
IDEMPOTENCY = "aws_lambda_powertools.utilities.idempotency"

# What each handler may load beyond the opsflow core, boto3, pydantic, Logger and Tracer.
ALLOWED: dict[str, set[str]] = {
    "api": {EVENT_HANDLER},
    "command": {IDEMPOTENCY},
    "pipeline": {IDEMPOTENCY},
    "schedule": {IDEMPOTENCY},
    "notify": {"aws_lambda_powertools.utilities.parameters"},
    "run_ended": set(),
    "steps_ami_bake": {"opsflow.workflows.ami_bake", "opsflow.workflows.asg_refresh"},  # a bake may refresh
    "steps_asg_refresh": {"opsflow.workflows.asg_refresh"},
    "steps_env_power": {"opsflow.workflows.env_power"},
    "steps_ecs_blue_green": {"opsflow.workflows.ecs_blue_green"},
}
# Heavy, or needed by one function only: loaded where it is used.
WATCHED = (
    *(f"opsflow.workflows.{name}" for name in WORKFLOWS),
    "holidays",
    "slack_sdk",
    EVENT_HANDLER,
    IDEMPOTENCY,
    "aws_lambda_powertools.utilities.parameters",
)


def modules_after_importing(handler: str) -> set[str]:
    program = (
        f"import json, sys\nsys.path.insert(0, {str(ROOT / 'functions' / handler)!r})\n"
        "import app\nprint(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, env=dict(os.environ)
    )
    return set(json.loads(done.stdout))


def test_every_handler_is_checked() -> None:
    assert set(ALLOWED) == {path.parent.name for path in (ROOT / "functions").glob("*/app.py")}


@pytest.mark.parametrize("handler", sorted(ALLOWED))
def test_a_handler_imports_only_what_it_uses(handler: str) -> None:
    loaded = modules_after_importing(handler)
    unexpected = {
        watched
        for watched in WATCHED
        if watched not in ALLOWED[handler]
        and any(m == watched or m.startswith(f"{watched}.") for m in loaded)
    }
    assert not unexpected, f"{handler} imports {', '.join(sorted(unexpected))} at cold start"
