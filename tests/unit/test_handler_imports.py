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
WORKFLOWS = ("ami_bake", "asg_refresh", "env_power", "ecs_blue_green", "remediate")
EVENT_HANDLER = "aws_lambda_powertools.event_handler"
IDEMPOTENCY = "aws_lambda_powertools.utilities.idempotency"

# What each handler may load beyond the opsflow core (with every workflow's package and request model),
# boto3, pydantic, Logger and Tracer. The steps handler is checked once per workflow it serves.
ALLOWED: dict[str, set[str]] = {
    "api": {EVENT_HANDLER},
    "command": {IDEMPOTENCY},
    "pipeline": {IDEMPOTENCY},
    "schedule": {IDEMPOTENCY},
    "notify": {"aws_lambda_powertools.utilities.parameters"},
    "run_ended": set(),
    "remediation": set(),
    "resume": set(),
    "steps": set(),
}
STEPS_ALLOWED: dict[str, set[str]] = {
    "ami_bake": {"opsflow.workflows.ami_bake", "opsflow.workflows.asg_refresh"},  # a bake may refresh
    "asg_refresh": {"opsflow.workflows.asg_refresh"},
    "env_power": {"opsflow.workflows.env_power"},
    "ecs_blue_green": {"opsflow.workflows.ecs_blue_green"},
    "remediate": {"opsflow.workflows.remediate"},
}
# Heavy, or needed by one function only: loaded where it is used. A workflow's package and its request
# model are light (the registry lists them), as are env power's calendar model (the environments store holds it) and
# its environments (the API, Chatbot and schedules configure them); the rest of the package is its code.
LIGHT = ("__init__", "request", "calendar", "environments")
WATCHED = (
    *(f"opsflow.workflows.{name}" for name in WORKFLOWS),
    "holidays",
    "slack_sdk",
    EVENT_HANDLER,
    IDEMPOTENCY,
    "aws_lambda_powertools.utilities.parameters",
)


def modules_after_importing(handler: str, environment: dict[str, str] | None = None) -> set[str]:
    program = (
        f"import json, sys\nsys.path.insert(0, {str(ROOT / 'functions' / handler)!r})\n"
        "import app\nprint(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(environment or {})},
    )
    return set(json.loads(done.stdout))


def heavy(module: str, watched: str) -> bool:
    if module == watched:
        return not watched.startswith("opsflow.workflows.")
    if not module.startswith(f"{watched}."):
        return False
    return not (watched.startswith("opsflow.workflows.") and module.removeprefix(f"{watched}.") in LIGHT)


def unexpected(loaded: set[str], allowed: set[str]) -> set[str]:
    return {
        watched for watched in WATCHED if watched not in allowed and any(heavy(m, watched) for m in loaded)
    }


def test_every_handler_is_checked() -> None:
    assert set(ALLOWED) == {path.parent.name for path in (ROOT / "functions").glob("*/app.py")}
    assert set(STEPS_ALLOWED) == set(WORKFLOWS)


@pytest.mark.parametrize("handler", sorted(ALLOWED))
def test_a_handler_imports_only_what_it_uses(handler: str) -> None:
    found = unexpected(modules_after_importing(handler), ALLOWED[handler])
    assert not found, f"{handler} imports {', '.join(sorted(found))} at cold start"


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_the_steps_handler_loads_only_its_own_workflow(workflow: str) -> None:
    program = (
        f"import json, sys\nsys.path.insert(0, {str(ROOT / 'functions' / 'steps')!r})\n"
        "import app\napp.runner()\nprint(json.dumps(sorted(sys.modules)))"
    )
    environment = {
        "WORKFLOW": workflow,
        "RUNS_TABLE": "runs",
        "LOCKS_TABLE": "locks",
        "CAPACITY_TABLE": "capacity",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    done = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **environment},
    )
    found = unexpected(set(json.loads(done.stdout)), STEPS_ALLOWED[workflow])
    assert not found, f"the {workflow} steps imports {', '.join(sorted(found))}"
