"""POST /events/ci and POST /events/ci/hook: a CI server that is not AWS (Jenkins, GitLab CI, Bitbucket
Pipelines) reports a run, which becomes a `CI Run State Change` event on the default bus (source
`opsflow.ci`); the notify function sends it to Slack and Teams as it does CodePipeline's.

`/events/ci` is signed with SigV4 like every other route. `/events/ci/hook` is for servers that cannot sign:
API Gateway does not authorize it, so this function authenticates each request itself (opsflow.ci.hook)
before it reads the body, and refuses a request it accepted once already."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import time
from http import HTTPStatus
from typing import Annotated, Any, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Header
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from pydantic import ValidationError

from opsflow.aws import clients
from opsflow.aws.events import Events
from opsflow.ci import gitlab, hook
from opsflow.ci.event import DETAIL_TYPE, SOURCE, CiEvent
from opsflow.errors import AwsCallFailed, Replayed
from opsflow.runs.config import required_env
from opsflow.triggers.api.routing import new_router, requester

logger = Logger(service="opsflow-api", child=True)
router = new_router()

# The shared secret is read at most once every five minutes: a new value is in use five minutes after it is
# put (rotate by putting the new value, then changing the senders within the same five minutes).
SECRET_MAX_AGE_SECONDS = 300


@router.post("/events/ci")
def report_ci_run(ci_event: Annotated[CiEvent, Body()]) -> Response[dict[str, Any]]:
    """A CI server reports a run that started or ended; Slack and Teams get it like a CodePipeline run's.
    Signed with SigV4, like every other request; a server that cannot sign uses POST /events/ci/hook."""
    by = requester(router)
    return _accepted(ci_event, {"via": "sigv4", "identity": by.identity})


@router.post("/events/ci/hook")
def report_ci_run_hook(
    x_signature_256: Annotated[
        str | None,
        Header(
            alias=hook.SIGNATURE,
            description="sha256=<hex HMAC-SHA256 of X-Timestamp + '.' + the body>, keyed with the shared "
            "secret (the stack's CiHookSecretArn output).",
        ),
    ] = None,
    x_timestamp: Annotated[
        str | None,
        Header(alias=hook.TIMESTAMP, description="The Unix time in seconds the body was signed at."),
    ] = None,
    x_gitlab_token: Annotated[
        str | None,
        Header(alias=hook.GITLAB_TOKEN, description="The shared secret, as a GitLab webhook's secret token."),
    ] = None,
    x_gitlab_event_uuid: Annotated[
        str | None,
        Header(alias=hook.GITLAB_EVENT_UUID, description="The GitLab delivery's id, which GitLab sends."),
    ] = None,
    x_request_id: Annotated[
        str | None,
        Header(alias=hook.REQUEST_ID, description="With X-Gitlab-Token from a job: an id of this delivery."),
    ] = None,
    x_gitlab_event: Annotated[
        str | None,
        Header(
            alias="X-Gitlab-Event", description="GitLab's event name: a Pipeline Hook is read as GitLab's."
        ),
    ] = None,
) -> Response[dict[str, Any]]:
    """The same report from a CI server that cannot sign with SigV4, authenticated with the shared secret:
    an HMAC of the body (X-Signature-256 with X-Timestamp) or a GitLab webhook's token (X-Gitlab-Token with
    X-Gitlab-Event-UUID). The body is the CI event, or a GitLab pipeline event (X-Gitlab-Event: Pipeline
    Hook). A request accepted once is refused when sent again."""
    now = time.time()
    body = _raw_body(cast(APIGatewayProxyEvent, router.current_event))
    headers = {
        name: value
        for name, value in (
            (hook.SIGNATURE, x_signature_256),
            (hook.TIMESTAMP, x_timestamp),
            (hook.GITLAB_TOKEN, x_gitlab_token),
            (hook.GITLAB_EVENT_UUID, x_gitlab_event_uuid),
            (hook.REQUEST_ID, x_request_id),
        )
        if value is not None
    }
    verified = hook.verify(headers, body, _shared_secret(), now)
    reported = _read(body, x_gitlab_event)
    if isinstance(reported, str):
        logger.info("CI hook event not reported", extra={"reason": reported})
        return Response(
            status_code=HTTPStatus.OK,
            content_type=content_types.APPLICATION_JSON,
            body={"reported": False, "message": f"Nothing sent: {reported}."},
        )
    seen = hook.DynamoSeenDeliveries(clients.client("dynamodb"), required_env("IDEMPOTENCY_TABLE"))
    if not seen.first_time(verified.replay_key, now, verified.remember_seconds):
        logger.warning("CI hook request replayed", extra={"via": verified.method})
        raise Replayed(
            "This request was accepted once already and is not sent again: sign each report afresh (a new "
            "X-Timestamp), or give each delivery its own id."
        )
    try:
        return _accepted(reported, {"via": verified.method})
    except Exception:
        # Not sent: the sender may try the same request again.
        with contextlib.suppress(Exception):
            seen.forget(verified.replay_key)
        raise


def _accepted(ci_event: CiEvent, reported_by: dict[str, str]) -> Response[dict[str, Any]]:
    detail = ci_event.detail(reported_by)
    event_id = Events(clients.client("events"), os.environ.get("EVENT_BUS_NAME", "default")).put(
        SOURCE, DETAIL_TYPE, detail
    )
    logger.info(
        "CI run reported",
        extra={
            "system": ci_event.system,
            "pipeline": ci_event.pipeline,
            "run": ci_event.run,
            "status": ci_event.status,
            "via": reported_by["via"],
            "event_id": event_id,
        },
    )
    return Response(
        status_code=HTTPStatus.ACCEPTED,
        content_type=content_types.APPLICATION_JSON,
        body={
            "reported": True,
            "event_id": event_id,
            "source": SOURCE,
            "detail_type": DETAIL_TYPE,
            "detail": detail,
            "message": f"Pipeline {ci_event.pipeline} run {ci_event.run} {ci_event.status}: sent to the channels "
            "whose filters match it.",
        },
    )


def _raw_body(event: APIGatewayProxyEvent) -> bytes:
    """The body exactly as sent: what the signature covers."""
    raw = event.body or ""
    return base64.b64decode(raw) if event.is_base64_encoded else raw.encode("utf-8")


def _read(body: bytes, gitlab_event: str | None) -> CiEvent | str:
    """The CI event the body holds, or why there is none to report; a RequestValidationError (a 400 naming
    each field) for a body that is neither a CI event nor a GitLab pipeline event."""
    try:
        parsed = json.loads(body)
    except ValueError:
        raise RequestValidationError(
            [{"loc": ("body",), "type": "json_invalid", "msg": "invalid JSON"}]
        ) from None
    if not isinstance(parsed, dict):
        raise RequestValidationError([{"loc": ("body",), "type": "dict_type", "msg": "not an object"}])
    try:
        if gitlab_event is None:
            return CiEvent.model_validate(parsed)
        if gitlab_event.strip() != gitlab.PIPELINE_HOOK:
            return f"GitLab {gitlab_event.strip()[:64]} events are not reported, only {gitlab.PIPELINE_HOOK} events"
        return gitlab.ci_event(parsed)
    except ValidationError as error:
        raise RequestValidationError(error.errors()) from None


def _shared_secret() -> str:
    """The secret, cached. Powertools' parameters are imported here: only this route reads one, and the rest
    of the API need not load them at cold start."""
    from aws_lambda_powertools.utilities import parameters

    arn = required_env("CI_HOOK_SECRET_ARN")
    try:
        secret = str(parameters.get_secret(arn, max_age=SECRET_MAX_AGE_SECONDS))
    except Exception as error:  # noqa: BLE001 - name the kind of failure, never the secret
        raise AwsCallFailed(
            "GetSecretValue", type(error).__name__, "the CI hook's shared secret could not be read"
        ) from None
    if len(secret) < hook.MIN_SECRET_LENGTH:
        raise AwsCallFailed(
            "GetSecretValue", "SecretTooShort", "the CI hook's shared secret is too short to be used"
        )
    return secret
