"""Powertools idempotency for the trigger handlers whose work has side effects: a repeated delivery
(Scheduler and asynchronous Lambda invocations are at least once, CodePipeline may invoke a job
again, a person may send a command twice) gets the first answer and acts once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from opsflow.aws import clients
from opsflow.runs.config import required_env

T = TypeVar("T")


def once_per(
    handle: Callable[[dict[str, Any]], T], *, key: str, expires_after_seconds: int
) -> Callable[[dict[str, Any], LambdaContext], T]:
    """`handle` made idempotent on the part of the event the JMESPath `key` selects. Built when first
    needed, not at import, so the client is made inside the function's environment."""
    config = IdempotencyConfig(
        event_key_jmespath=key, expires_after_seconds=expires_after_seconds, raise_on_no_idempotency_key=True
    )
    persistence = DynamoDBPersistenceLayer(
        table_name=required_env("IDEMPOTENCY_TABLE"), boto3_client=clients.client("dynamodb")
    )

    def run(event: dict[str, Any]) -> T:
        return handle(event)

    once: Callable[..., T] = idempotent_function(
        data_keyword_argument="event", persistence_store=persistence, config=config
    )(run)

    def call(event: dict[str, Any], context: LambdaContext) -> T:
        config.register_lambda_context(context)
        return once(event=event)

    return call
