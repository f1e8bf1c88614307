"""The API's OpenAPI document, as `GET /openapi.json` serves it and `openapi.json` holds it, with the error
answers `errors` gives.

Powertools documents a request validation failure as its own 422; this API answers it with a 400 and an
`ErrorBody`, so each operation's 4xx answers are set here from one place."""

from __future__ import annotations

import json
from functools import cache
from http import HTTPStatus
from typing import Any, cast

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types

import opsflow
from opsflow.runs import registry
from opsflow.triggers.api.errors import ErrorBody
from opsflow.triggers.api.routing import new_router

router = new_router()

_REFUSALS: dict[int, str] = {
    400: "The request is malformed: each problem names the field and what to fix.",
    401: "The request carries no credentials: an X-Signature-256 with its X-Timestamp, or an X-Gitlab-Token.",
    403: "The target lacks the opt-in tag, or the request carries no IAM caller. API Gateway's own 403 "
    "(unsigned request, unknown route) has only a message.",
    404: "No such run or environment, or a path parameter holds characters no run id or name has.",
    409: "Another run holds the target, or the Idempotency-Key was used for another request.",
    415: "The body is not sent as JSON.",
    422: "The request cannot be carried out safely as it stands; the message says how to fix it.",
    503: "AWS throttled a call the request needed, or failed on its side: try again after Retry-After "
    "seconds (with the same Idempotency-Key, a repeat cannot start a second run).",
}

_ACCEPTED = {
    ("post", "/runs"): "The run started; follow it at GET /runs/{run_id}.",
    ("post", "/runs/{run_id}/abort"): "The run is being stopped.",
    ("post", "/events/ci"): "The run's event is on the bus, for the channels whose filters match it.",
    ("post", "/events/ci/hook"): "The run's event is on the bus, for the channels whose filters match it.",
}
# The route API Gateway does not authorize: the function authenticates it with the shared secret, and its
# body is read only once it has.
_HOOK = ("post", "/events/ci/hook")
_HOOK_REFUSALS = {
    403: "The signature or token does not match the shared secret, or X-Timestamp is more than 5 minutes "
    "away. API Gateway's own 403 (unknown route) has only a message.",
    409: "This request, or this delivery id, was accepted once already.",
}


def description() -> str:
    workflows = ", ".join(workflow.title_in_a_sentence for workflow in registry.WORKFLOWS.values())
    return (
        f"Start and follow operational runs ({workflows}) and manage environment schedules; CI servers "
        "report their runs for Slack and Teams. Every request is signed with SigV4 (service execute-api), "
        "except POST /events/ci/hook, which is signed with the shared secret instead."
    )


@cache
def openapi_document(app: APIGatewayRestResolver) -> str:
    """The document of `app`'s routes, with the error answers every operation can get."""
    document = json.loads(
        app.get_openapi_json_schema(title="Opsflow", version=opsflow.__version__, description=description())
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
    paths = document["paths"]
    if "/events/ci/hook" in paths and "/events/ci" in paths:
        paths["/events/ci/hook"]["post"]["requestBody"] = paths["/events/ci"]["post"]["requestBody"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            codes: tuple[int, ...] = (400, 403, 404, 422) if method == "get" else (400, 403, 404, 409, 422)
            responses = operation["responses"]
            responses.pop("422", None)
            if (method, path) == _HOOK:
                codes = (400, 401, 403, 409, 422)
            elif "requestBody" in operation:
                codes = (*codes, 415)
            if (method, path) in _ACCEPTED:
                responses["202"] = {**responses["200"], "description": _ACCEPTED[method, path]}
            for code in codes:
                schema: dict[str, Any] = error_body
                if code == 403:
                    schema = {"anyOf": [error_body, {"$ref": "#/components/schemas/GatewayError"}]}
                refusals = _HOOK_REFUSALS if (method, path) == _HOOK else {}
                responses[str(code)] = {
                    "description": refusals.get(code, _REFUSALS[code]),
                    "content": {content_types.APPLICATION_JSON: {"schema": schema}},
                }
    return json.dumps(document, indent=2) + "\n"


@router.get("/openapi.json", include_in_schema=False)
def get_openapi() -> Response[str]:
    app = cast(APIGatewayRestResolver, router.api_resolver)
    return Response(
        status_code=HTTPStatus.OK, content_type=content_types.APPLICATION_JSON, body=openapi_document(app)
    )
