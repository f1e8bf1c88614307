"""CodePipeline's Lambda invoke action: start the run in the action's UserParameters, then report its
progress and outcome to the pipeline (PutJobSuccessResult with a continuation token while it runs)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from opsflow.aws import clients
from opsflow.aws.codepipeline import CodePipeline
from opsflow.aws.stepfunctions import StepFunctions
from opsflow.runs.wiring import default_config as config
from opsflow.runs.wiring import default_starter as starter
from opsflow.triggers import codepipeline as pipeline
from opsflow.triggers.idempotency import once_per

logger = Logger(service="opsflow-pipeline")
tracer = Tracer(service="opsflow-pipeline")


def log_unexpected(error: Exception) -> None:
    logger.exception("job could not be processed; reporting it failed", extra={"error": type(error).__name__})


# The event carries temporary credentials for the artifact bucket: it is never logged.
@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_once()(event, context)


@cache
def handle_once() -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    # CodePipeline gives each invocation, continuations included, its own job id: an invocation repeated
    # after its result was reported gets that answer again instead of a refused second report.
    return once_per(handle, key='"CodePipeline.job".id', expires_after_seconds=7 * 24 * 3600)


def handle(event: dict[str, Any]) -> dict[str, Any]:
    job = pipeline.PipelineJob.from_event(event)
    logger.append_keys(job_id=job.job_id)
    outcome = pipeline.handle_job(
        job,
        start=lambda request, requester, key: starter().start(request, requester, key),
        read_run=pipeline.run_reader(
            config().run_store(), StepFunctions(clients.client("stepfunctions")).describe
        ),
        reporter=CodePipeline(clients.client("codepipeline")),
        on_unexpected=log_unexpected,
    )
    logger.info(
        "job reported",
        extra={
            "run_id": outcome.run_id,
            "result": "success" if outcome.succeeded else "failure",
            "continues": outcome.continuation_token is not None,
            "failure_type": None if outcome.succeeded else outcome.failure_type,
        },
    )
    return outcome.as_dict()
