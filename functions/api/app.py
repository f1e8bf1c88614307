"""POST /runs and GET /runs/{run_id}, behind API Gateway with AWS_IAM authorization."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from http import HTTPStatus
from typing import Annotated, Any, Literal

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel
from pydantic import Field as PydanticField

import opsflow
from opsflow.aws import clients
from opsflow.aws.scheduler import Scheduler
from opsflow.aws.stepfunctions import StepFunctions
from opsflow.errors import Busy, IdempotencyConflict, NotFound, NotOptedIn, OpsflowError, Refused
from opsflow.runs import registry
from opsflow.runs.config import StarterConfig, required_env
from opsflow.runs.requests import describe_validation_errors
from opsflow.runs.start import RunStarter
from opsflow.runs.view import abort_run, run_summary, run_view
from opsflow.runs.wiring import build_starter
from opsflow.store.environments import Environment
from opsflow.store.runs import DRY_RUN, DynamoRunStore, Requester
from opsflow.workflows.env_power import environments
from opsflow.workflows.env_power.calendar import EnvironmentSchedule
from opsflow.workflows.env_power.request import ENVIRONMENT_NAME

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


# Every workflow's request model, told apart by `workflow`.
RunRequestBody = registry.request_union()


@app.post("/runs")
def create_run(run_request: Annotated[RunRequestBody, Body()]) -> Response[dict[str, Any]]:
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


@app.get("/runs")
def list_runs(
    target: Annotated[
        str | None, Query(description="Only runs of this target, e.g. asg:web or env:qa.", max_length=300)
    ] = None,
    workflow: Annotated[
        Literal["ami_bake", "asg_refresh", "env_power", "ecs_blue_green"] | None, Query()
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    """The newest runs first: who asked for what, when, and how it ended."""
    found = runs().recent(target=target, workflow=workflow, limit=limit)
    return {"runs": [run_summary(run) for run in found], "count": len(found)}


@app.post("/runs/<run_id>/abort")
def abort(run_id: str) -> Response[dict[str, Any]]:
    """Stop a running run at once; its record says ABORTED and its target is freed."""
    run = runs().get(run_id)
    if run is None:
        raise NotFound(f"no run {run_id}")
    by = requester()
    abort_run(run, StepFunctions(clients.client("stepfunctions")), by)
    logger.info("run aborted", extra={"run_id": run_id, "by": by.identity})
    return Response(
        status_code=HTTPStatus.ACCEPTED,
        content_type=content_types.APPLICATION_JSON,
        body={
            "run_id": run_id,
            "status": "ABORTING",
            "message": f"Run {run_id} is being stopped; GET /runs/{run_id} shows it ABORTED in a moment.",
        },
    )


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
            function_arn=required_env("SCHEDULE_FUNCTION_ARN"),
            role_arn=required_env("SCHEDULER_ROLE_ARN"),
            dead_letter_arn=required_env("SCHEDULE_DEAD_LETTER_QUEUE_ARN"),
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
    logger.info("keep-alive ended", extra={"environment": name, "by": requester().identity})
    environment = settings.environment_store().set_keep_alive(name, None)
    return environments.describe(environment, settings.capacity_store(), datetime.now(UTC))


@app.get("/environments/<name>/plan")
def get_plan(name: EnvironmentName) -> dict[str, Any]:
    """What the next stop and the next start would do to each resource, and when; changes nothing."""
    # The one route that needs a workflow's code: the other routes' cold starts do not load it.
    from opsflow.workflows.env_power.inventory import PowerAws
    from opsflow.workflows.env_power.preflight import plan_start, plan_stop

    settings = config()
    environment = settings.environment_store().get(name)
    view = environments.describe(
        environment or Environment(name), settings.capacity_store(), datetime.now(UTC)
    )
    aws = PowerAws.from_default_clients(settings.capacity_table)
    return {
        "environment": name,
        "timezone": environment.schedule.timezone if environment and environment.schedule else None,
        "stop": {
            "when": (view.get("next") or {}).get("stop"),
            **plan_stop(name, aws, settings.opt_in, settings.environment_tag_key),
        },
        "start": {"when": (view.get("next") or {}).get("start"), **plan_start(name, aws)},
        "keep_alive": view["keep_alive"],
    }


# OpenAPI -----------------------------------------------------------------------------------------


class Problem(BaseModel):
    field: str = PydanticField(description="The field, dotted (`refresh.checkpoints`), or `(body)`.")
    problem: str = PydanticField(description="What is wrong with it and what to fix.")


class ErrorBody(BaseModel):
    """What every refused request gets: the error's kind and a message that says what to fix."""

    error: str = PydanticField(description="NotFound, NotOptedIn, Busy, Refused, ValidationError, ...")
    message: str
    problems: list[Problem] | None = PydanticField(None, description="For a 400: one entry per problem.")


_REFUSALS: dict[int, str] = {
    400: "The request is malformed: each problem names the field and what to fix.",
    403: "The target lacks the opt-in tag, or the request carries no IAM caller. API Gateway's own 403 "
    "(unsigned request, unknown route) has only a message.",
    404: "No such run or environment, or a path parameter holds characters no run id or name has.",
    409: "Another run holds the target, or the Idempotency-Key was used for another request.",
    415: "The body is not sent as JSON.",
    422: "The request cannot be carried out safely as it stands; the message says how to fix it.",
}


_ACCEPTED = {
    ("post", "/runs"): "The run started; follow it at GET /runs/{run_id}.",
    ("post", "/runs/{run_id}/abort"): "The run is being stopped.",
}


@cache
def openapi_document() -> str:
    """The API's OpenAPI document, with the error answers the exception handlers below give.

    Powertools documents a request validation failure as its own 422; this API answers it with a 400
    and the body of `_error`, so each operation's 4xx answers are set here from one place."""
    document = json.loads(
        app.get_openapi_json_schema(
            title="Opsflow",
            version=opsflow.__version__,
            description="Start and follow operational runs (AMI bake, ASG refresh, environment power) and "
            "manage environment schedules. Every request is signed with SigV4 (service execute-api).",
        )
    )
    ref = "#/components/schemas/{model}"
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas.update(ErrorBody.model_json_schema(ref_template=ref).pop("$defs"))
    schemas["ErrorBody"] = ErrorBody.model_json_schema(ref_template=ref)
    schemas["ErrorBody"].pop("$defs", None)
    schemas["GatewayError"] = {
        "type": "object",
        "properties": {"message": {"type": "string"}},
        "required": ["message"],
    }
    if "ResponseValidationError" not in json.dumps(document["paths"]):
        schemas.pop("ResponseValidationError", None)
    error_body = {"$ref": "#/components/schemas/ErrorBody"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            codes = (400, 403, 404, 422) if method == "get" else (400, 403, 404, 409, 422)
            responses = operation["responses"]
            responses.pop("422", None)
            if "requestBody" in operation:
                codes = (*codes, 415)
            if (method, path) in _ACCEPTED:
                responses["202"] = {**responses["200"], "description": _ACCEPTED[method, path]}
            for code in codes:
                schema = error_body
                if code == 403:
                    schema = {"anyOf": [error_body, {"$ref": "#/components/schemas/GatewayError"}]}
                responses[str(code)] = {
                    "description": _REFUSALS[code],
                    "content": {content_types.APPLICATION_JSON: {"schema": schema}},
                }
    return json.dumps(document, indent=2) + "\n"


@app.get("/openapi.json", include_in_schema=False)
def get_openapi() -> Response[str]:
    return Response(
        status_code=HTTPStatus.OK, content_type=content_types.APPLICATION_JSON, body=openapi_document()
    )


def _error(status: HTTPStatus, error: str, message: str, **extra: Any) -> Response[dict[str, Any]]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body={"error": error, "message": message, **extra},
    )


@app.exception_handler(RequestUnsupportedContentType)
def not_json(_: RequestUnsupportedContentType) -> Response[dict[str, Any]]:
    return _error(
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        "UnsupportedMediaType",
        "Send the body as a JSON object with Content-Type: application/json.",
    )


@app.exception_handler(ValueError)
def unreadable_body(error: ValueError) -> Response[dict[str, Any]]:
    # Powertools lets a multipart body without a boundary escape as a bare ValueError (a 502).
    if not app.current_event.headers.get("content-type", "").lower().startswith("multipart/"):
        raise error
    return not_json(RequestUnsupportedContentType(str(error), errors=[]))


@app.not_found
def no_route(_: NotFoundError) -> Response[dict[str, Any]]:
    # API Gateway matched the resource, so only a path parameter Powertools' router refuses gets here.
    return _error(
        HTTPStatus.NOT_FOUND,
        "NotFound",
        f"Nothing at {app.current_event.path}: run ids and environment names hold only letters, digits, "
        "'.', '_' and '-'.",
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
        # Not found in the path is a 404; a resource a new run's request names that does not exist is 422.
        event = app.current_event
        starting = event.http_method == "POST" and event.path.rstrip("/").endswith("/runs")
        status = HTTPStatus.UNPROCESSABLE_ENTITY if starting else HTTPStatus.NOT_FOUND
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
