"""POST /runs and GET /runs/{run_id}, behind API Gateway with AWS_IAM authorization."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from opsflow import environments
from opsflow.aws import clients
from opsflow.aws.scheduler import Scheduler
from opsflow.aws.stepfunctions import StepFunctions
from opsflow.errors import Busy, IdempotencyConflict, NotFound, NotOptedIn, OpsflowError, Refused
from opsflow.requests import (
    ENVIRONMENT_NAME,
    RunRequest,
    describe_validation_errors,
)
from opsflow.runs import RunStarter, run_view
from opsflow.schedules import EnvironmentSchedule
from opsflow.settings import required_env
from opsflow.starter import StarterConfig, build_starter
from opsflow.store.environments import Environment
from opsflow.store.runs import DRY_RUN, DynamoRunStore, Requester
from opsflow.workflows import env_power

logger = Logger(service="opsflow-api")
tracer = Tracer(service="opsflow-api")
app = APIGatewayRestResolver(enable_validation=True)


@cache
def config() -> StarterConfig:
    return StarterConfig.from_env()


def runs() -> DynamoRunStore:
    return config().run_store()


def starter() -> RunStarter:
    return build_starter(config())


def requester() -> Requester:
    identity = app.current_event.request_context.identity
    caller = identity.user_arn or identity.caller
    if not caller:
        raise NotOptedIn("the request carries no IAM caller identity; sign it with SigV4")
    return Requester(kind="iam", identity=caller)


@app.post("/runs")
def create_run(run_request: Annotated[RunRequest, Body()]) -> Response[dict[str, Any]]:
    key = app.current_event.headers.get("Idempotency-Key")
    started = starter().start(run_request, requester(), key)
    run = started.run
    body: dict[str, Any] = {
        "run_id": run.run_id,
        "workflow": run.workflow,
        "target": run.target,
        "status": run.status,
        "execution_arn": run.execution_arn,
        "plan": run.plan,
        "links": {"run": f"/runs/{run.run_id}"},
    }
    if run.status == DRY_RUN:
        body["message"] = "Dry run: nothing was changed. The plan lists what a real run would do."
        status = HTTPStatus.OK
    elif not started.created:
        body["message"] = (
            f"This request was already made: run {run.run_id} is {run.status}. Follow it at GET /runs/{run.run_id}."
        )
        status = HTTPStatus.ACCEPTED if run.status == "RUNNING" else HTTPStatus.OK
    else:
        body["message"] = f"Run {run.run_id} started; follow it at GET /runs/{run.run_id}."
        status = HTTPStatus.ACCEPTED
    headers = {} if started.created else {"Idempotent-Replayed": "true"}
    logger.info(
        "run accepted", extra={"run_id": run.run_id, "created": started.created, "status": run.status}
    )
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers
    )


@app.get("/runs/<run_id>")
def get_run(run_id: str) -> dict[str, Any]:
    run = runs().get(run_id)
    if run is None:
        raise NotFound(f"no run {run_id}")
    execution = (
        StepFunctions(clients.client("stepfunctions")).describe(run.execution_arn)
        if run.execution_arn
        else None
    )
    return run_view(run, execution)


# Environments -------------------------------------------------------------------------------------

EnvironmentName = Annotated[str, Path(pattern=ENVIRONMENT_NAME, description="The environment tag's value.")]


@app.put("/environments/<name>")
def put_environment(
    name: EnvironmentName, schedule: Annotated[EnvironmentSchedule, Body()]
) -> dict[str, Any]:
    """Set an environment's schedule; creates or updates its two EventBridge Scheduler schedules."""
    settings = config()
    environment = environments.configure(
        name,
        schedule,
        requester().identity,
        settings.environment_store(),
        Scheduler(clients.client("scheduler"), required_env("SCHEDULE_GROUP")),
        environments.ScheduleTarget(
            function_arn=required_env("SCHEDULE_FUNCTION_ARN"), role_arn=required_env("SCHEDULER_ROLE_ARN")
        ),
    )
    return environments.describe(environment, settings.capacity_store(), datetime.now(UTC))


@app.get("/environments/<name>")
def get_environment(name: EnvironmentName) -> dict[str, Any]:
    settings = config()
    environment = settings.environment_store().get(name)
    if environment is None:
        raise NotFound(f"no environment {name}; PUT /environments/{name} with its schedule to add it")
    return environments.describe(environment, settings.capacity_store(), datetime.now(UTC))


@app.post("/environments/<name>/keep-alive")
def post_keep_alive(
    name: EnvironmentName, keep: Annotated[environments.KeepAliveRequest, Body()]
) -> dict[str, Any]:
    """Skip the nightly stops until a time; the keep-alive expires by itself."""
    settings = config()
    environment = environments.keep_alive(
        name, keep, requester().identity, settings.environment_store(), datetime.now(UTC)
    )
    return environments.describe(environment, settings.capacity_store(), datetime.now(UTC))


@app.delete("/environments/<name>/keep-alive")
def delete_keep_alive(name: EnvironmentName) -> dict[str, Any]:
    settings = config()
    environment = settings.environment_store().set_keep_alive(name, None)
    return environments.describe(environment, settings.capacity_store(), datetime.now(UTC))


@app.get("/environments/<name>/plan")
def get_plan(name: EnvironmentName) -> dict[str, Any]:
    """What the next stop and the next start would do to each resource, and when; changes nothing."""
    settings = config()
    environment = settings.environment_store().get(name)
    view = environments.describe(
        environment or Environment(name), settings.capacity_store(), datetime.now(UTC)
    )
    aws = settings.power_aws()
    return {
        "environment": name,
        "timezone": environment.schedule.timezone if environment and environment.schedule else None,
        "stop": {
            "when": (view.get("next") or {}).get("stop"),
            **env_power.plan_stop(name, aws, settings.opt_in, settings.environment_tag_key),
        },
        "start": {"when": (view.get("next") or {}).get("start"), **env_power.plan_start(name, aws)},
        "keep_alive": view["keep_alive"],
    }


def _error(status: HTTPStatus, error: str, message: str, **extra: Any) -> Response[dict[str, Any]]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body={"error": error, "message": message, **extra},
    )


@app.exception_handler(RequestValidationError)
def invalid_request(error: RequestValidationError) -> Response[dict[str, Any]]:
    problems = describe_validation_errors(error.errors())
    summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
    return _error(
        HTTPStatus.BAD_REQUEST, "ValidationError", f"The request is not valid: {summary}", problems=problems
    )


_STATUS_OF = {
    NotOptedIn: HTTPStatus.FORBIDDEN,
    Busy: HTTPStatus.CONFLICT,
    IdempotencyConflict: HTTPStatus.CONFLICT,
    Refused: HTTPStatus.UNPROCESSABLE_ENTITY,
}


@app.exception_handler(OpsflowError)
def refused(error: OpsflowError) -> Response[dict[str, Any]]:
    if isinstance(error, NotFound):
        status = (
            HTTPStatus.NOT_FOUND
            if app.current_event.http_method == "GET"
            else HTTPStatus.UNPROCESSABLE_ENTITY
        )
    else:
        status = next(
            (code for kind, code in _STATUS_OF.items() if isinstance(error, kind)), HTTPStatus.BAD_GATEWAY
        )
    logger.info("request refused", extra={"error": error.code, "status": int(status)})
    return _error(status, error.code, error.message)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
