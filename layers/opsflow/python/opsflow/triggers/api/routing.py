"""What every area's routes share: a Router, who signed the request, and typed exception handlers
(Powertools' Router is not annotated)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter, Router
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from opsflow.errors import NotOptedIn
from opsflow.store.runs import Requester

E = TypeVar("E", bound=Exception)
ErrorHandler = Callable[[E], Response[dict[str, Any]]]


def new_router() -> Router:
    return Router()  # type: ignore[no-untyped-call]


def handles(router: Router, error: type[E]) -> Callable[[ErrorHandler[E]], ErrorHandler[E]]:
    """`router.exception_handler(error)`, typed."""
    return cast(Callable[[ErrorHandler[E]], ErrorHandler[E]], router.exception_handler(error))


def requester(router: BaseRouter) -> Requester:
    identity = cast(APIGatewayProxyEvent, router.current_event).request_context.identity
    caller = identity.user_arn or identity.caller
    if not caller:
        raise NotOptedIn("the request carries no IAM caller identity; sign it with SigV4")
    return Requester(kind="iam", identity=caller)
