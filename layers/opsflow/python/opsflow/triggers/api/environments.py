"""PUT and GET /environments/{name}, its keep-alive, and the plan of its next stop and start."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from opsflow.aws import clients
from opsflow.aws.scheduler import Scheduler
from opsflow.errors import NotFound
from opsflow.runs.config import required_env
from opsflow.runs.wiring import default_config
from opsflow.triggers.api.routing import new_router, requester
from opsflow.workflows.env_power import environments
from opsflow.workflows.env_power.calendar import EnvironmentSchedule
from opsflow.workflows.env_power.request import ENVIRONMENT_NAME

logger = Logger(service="opsflow-api", child=True)
router = new_router()

EnvironmentName = Annotated[str, Path(pattern=ENVIRONMENT_NAME, description="The environment tag's value.")]


@router.put("/environments/<name>")
def put_environment(
    name: EnvironmentName, schedule: Annotated[EnvironmentSchedule, Body()]
) -> dict[str, Any]:
    """Set an environment's schedule; creates or updates its two EventBridge Scheduler schedules."""
    settings = default_config()
    environment = environments.configure(
        name,
        schedule,
        requester(router).identity,
        settings.environment_store(),
        Scheduler(clients.client("scheduler"), required_env("SCHEDULE_GROUP")),
        environments.ScheduleTarget(
            function_arn=required_env("SCHEDULE_FUNCTION_ARN"),
            role_arn=required_env("SCHEDULER_ROLE_ARN"),
            dead_letter_arn=required_env("SCHEDULE_DEAD_LETTER_QUEUE_ARN"),
        ),
    )
    return environments.describe(environment, settings.capacity_store(), datetime.now(UTC))


@router.get("/environments/<name>")
def get_environment(name: EnvironmentName) -> dict[str, Any]:
    settings = default_config()
    environment = settings.environment_store().get(name)
    if environment is None:
        raise NotFound(f"no environment {name}; PUT /environments/{name} with its schedule to add it")
    return environments.describe(environment, settings.capacity_store(), datetime.now(UTC))


@router.post("/environments/<name>/keep-alive")
def post_keep_alive(
    name: EnvironmentName, keep: Annotated[environments.KeepAliveRequest, Body()]
) -> dict[str, Any]:
    """Skip the nightly stops until a time; the keep-alive expires by itself."""
    settings = default_config()
    environment = environments.keep_alive(
        name, keep, requester(router).identity, settings.environment_store(), datetime.now(UTC)
    )
    return environments.describe(environment, settings.capacity_store(), datetime.now(UTC))


@router.delete("/environments/<name>/keep-alive")
def delete_keep_alive(name: EnvironmentName) -> dict[str, Any]:
    settings = default_config()
    logger.info("keep-alive ended", extra={"environment": name, "by": requester(router).identity})
    environment = settings.environment_store().set_keep_alive(name, None)
    return environments.describe(environment, settings.capacity_store(), datetime.now(UTC))


@router.get("/environments/<name>/plan")
def get_plan(name: EnvironmentName) -> dict[str, Any]:
    """What the next stop and the next start would do to each resource, and when; changes nothing."""
    # The one route that needs a workflow's code: the other routes' cold starts do not load it.
    from opsflow.workflows.env_power.plan_view import environment_plan

    return environment_plan(name, default_config(), datetime.now(UTC))
