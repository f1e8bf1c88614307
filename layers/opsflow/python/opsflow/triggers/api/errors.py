"""How the API answers what it refuses: every error is a JSON `ErrorBody` whose message says what to fix.

Opsflow's domain errors map to HTTP statuses here, and Powertools' own refusals (validation, content type,
a path parameter its router does not match) get the same body instead of Powertools' defaults."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from pydantic import BaseModel, Field

from opsflow.errors import (
    AwsTransient,
    BadSignature,
    Busy,
    IdempotencyConflict,
    InvalidField,
    NotFound,
    NotOptedIn,
    OpsflowError,
    Refused,
    Replayed,
    Unauthenticated,
)
from opsflow.runs.requests import describe_validation_errors
from opsflow.triggers.api.routing import handles, new_router

logger = Logger(service="opsflow-api", child=True)
router = new_router()


class Problem(BaseModel):
    field: str = Field(description="The field, dotted (`refresh.checkpoints`), or `(body)`.")
    problem: str = Field(description="What is wrong with it and what to fix.")


class ErrorBody(BaseModel):
    """What every refused request gets: the error's kind and a message that says what to fix."""

    error: str = Field(description="NotFound, NotOptedIn, Busy, Refused, ValidationError, ...")
    message: str
    problems: list[Problem] | None = Field(None, description="For a 400: one entry per problem.")


_STATUS_OF = {
    Unauthenticated: HTTPStatus.UNAUTHORIZED,
    BadSignature: HTTPStatus.FORBIDDEN,
    Replayed: HTTPStatus.CONFLICT,
    NotOptedIn: HTTPStatus.FORBIDDEN,
    Busy: HTTPStatus.CONFLICT,
    IdempotencyConflict: HTTPStatus.CONFLICT,
    Refused: HTTPStatus.UNPROCESSABLE_ENTITY,
}


def error_response(status: HTTPStatus, error: str, message: str, **extra: Any) -> Response[dict[str, Any]]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body={"error": error, "message": message, **extra},
    )


@handles(router, RequestUnsupportedContentType)
def not_json(_: RequestUnsupportedContentType) -> Response[dict[str, Any]]:
    return error_response(
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        "UnsupportedMediaType",
        "Send the body as a JSON object with Content-Type: application/json.",
    )


@handles(router, ValueError)
def unreadable_body(error: ValueError) -> Response[dict[str, Any]]:
    # Powertools lets a multipart body without a boundary escape as a bare ValueError (a 502).
    if not router.current_event.headers.get("content-type", "").lower().startswith("multipart/"):
        raise error
    return not_json(RequestUnsupportedContentType(str(error), errors=[]))


@handles(router, NotFoundError)
def no_route(_: NotFoundError) -> Response[dict[str, Any]]:
    # API Gateway matched the resource, so only a path parameter Powertools' router refuses gets here.
    return error_response(
        HTTPStatus.NOT_FOUND,
        "NotFound",
        f"Nothing at {router.current_event.path}: run ids and environment names hold only letters, digits, "
        "'.', '_' and '-'.",
    )


@handles(router, RequestValidationError)
def invalid_request(error: RequestValidationError) -> Response[dict[str, Any]]:
    path = router.current_event.path
    what = (
        "rule" if path.startswith("/remediations") else "event" if path.startswith("/events") else "workflow"
    )
    problems = describe_validation_errors(error.errors(), what)
    summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
    return error_response(
        HTTPStatus.BAD_REQUEST, "ValidationError", f"The request is not valid: {summary}", problems=problems
    )


# How long a client should wait before it asks again after AWS throttled a check.
RETRY_AFTER_SECONDS = 5


@handles(router, OpsflowError)
def refused(error: OpsflowError) -> Response[dict[str, Any]]:
    if isinstance(error, InvalidField):
        return error_response(
            HTTPStatus.BAD_REQUEST,
            error.code,
            f"The request is not valid: {error.message}",
            problems=[{"field": error.field, "problem": error.problem}],
        )
    if isinstance(error, AwsTransient):
        logger.warning("AWS throttled or failed a call", extra={"error": error.message})
        return Response(
            status_code=HTTPStatus.SERVICE_UNAVAILABLE,
            content_type=content_types.APPLICATION_JSON,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            body={
                "error": error.code,
                "message": f"{error.message}. AWS throttled this call or failed on its side; try again in a "
                f"few seconds (the same request with the same idempotency key is safe to repeat).",
            },
        )
    if isinstance(error, NotFound):
        # Not found in the path is a 404; a resource a new run's request names that does not exist is 422.
        event = router.current_event
        starting = event.http_method == "POST" and event.path.rstrip("/").endswith("/runs")
        status = HTTPStatus.UNPROCESSABLE_ENTITY if starting else HTTPStatus.NOT_FOUND
    else:
        status = next(
            (code for kind, code in _STATUS_OF.items() if isinstance(error, kind)), HTTPStatus.BAD_GATEWAY
        )
    logger.info("request refused", extra={"error": error.code, "status": int(status)})
    if status == HTTPStatus.UNAUTHORIZED:
        # A 401 names the scheme the credentials are expected in (RFC 9110, 11.6.1).
        return Response(
            status_code=status,
            content_type=content_types.APPLICATION_JSON,
            headers={
                "WWW-Authenticate": 'HMAC-SHA256 realm="opsflow", headers="X-Signature-256 X-Timestamp"'
            },
            body={"error": error.code, "message": error.message},
        )
    return error_response(status, error.code, error.message)
