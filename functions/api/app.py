"""The REST API behind API Gateway with AWS_IAM authorization: runs and environments
(opsflow.triggers.api)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from opsflow.triggers.api.app import app

logger = Logger(service="opsflow-api")
tracer = Tracer(service="opsflow-api")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
