"""POST /runs and GET /runs/{run_id}, behind API Gateway with AWS_IAM authorization."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from opsflow.aws import clients
from opsflow.aws.stepfunctions import StepFunctions
from opsflow.errors import Busy, IdempotencyConflict, NotFound, NotOptedIn, OpsflowError, Refused
from opsflow.requests import AnyRunRequest, AsgRefreshRequest, RunRequest, describe_validation_errors
from opsflow.runs import RunStarter, run_view
from opsflow.settings import OptIn, required_env
from opsflow.store.locks import DynamoLockStore
from opsflow.store.runs import DRY_RUN, DynamoRunStore, Requester
from opsflow.workflows import ami_bake, asg_refresh

logger = Logger(service="opsflow-api")
tracer = Tracer(service="opsflow-api")
app = APIGatewayRestResolver(enable_validation=True)


@dataclass(frozen=True)
class ApiConfig:
    runs_table: str
    locks_table: str
    state_machines: dict[str, str]
    opt_in: OptIn
    lock_ttl_seconds: int
    image_poll_seconds: int
    image_max_wait_seconds: int
    refresh_poll_seconds: int

    @classmethod
    def from_env(cls) -> ApiConfig:
        return cls(
            runs_table=required_env("RUNS_TABLE"),
            locks_table=required_env("LOCKS_TABLE"),
            state_machines={
                "ami_bake": required_env("AMI_BAKE_STATE_MACHINE_ARN"),
                "asg_refresh": required_env("ASG_REFRESH_STATE_MACHINE_ARN"),
            },
            opt_in=OptIn.from_env(),
            lock_ttl_seconds=int(os.environ.get("LOCK_TTL_SECONDS", "21600")),
            image_poll_seconds=int(os.environ.get("IMAGE_POLL_SECONDS", "15")),
            image_max_wait_seconds=int(os.environ.get("IMAGE_MAX_WAIT_SECONDS", "7200")),
            refresh_poll_seconds=int(os.environ.get("REFRESH_POLL_SECONDS", "30")),
        )


@cache
def config() -> ApiConfig:
    return ApiConfig.from_env()


def runs() -> DynamoRunStore:
    return DynamoRunStore(clients.client("dynamodb"), config().runs_table)


def starter() -> RunStarter:
    settings = config()
    return RunStarter(
        runs=runs(),
        locks=DynamoLockStore(clients.client("dynamodb"), settings.locks_table),
        executions=StepFunctions(clients.client("stepfunctions")),
        preflight=lambda request: preflight(request, settings.opt_in),
        state_machine_arns=settings.state_machines,
        settings={
            "image_poll_seconds": settings.image_poll_seconds,
            "image_max_wait_seconds": settings.image_max_wait_seconds,
            "refresh_poll_seconds": settings.refresh_poll_seconds,
        },
        lock_ttl_seconds=settings.lock_ttl_seconds,
    )


def preflight(request: AnyRunRequest, opt_in: OptIn) -> dict[str, Any]:
    if isinstance(request, AsgRefreshRequest):
        return asg_refresh.preflight(request, asg_refresh.RefreshAws.from_default_clients(), opt_in)
    return ami_bake.preflight(request, ami_bake.BakeAws.from_default_clients(), opt_in)


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
