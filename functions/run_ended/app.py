"""When an Opsflow execution ends without its finish step (aborted, timed out), record how it ended, put a
blue/green deploy's traffic back on one side, and release its lock, so the target is not held until the
lock's TTL. `{"redrive": true}` settles the end events parked in its dead-letter queue."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from opsflow.aws import clients
from opsflow.aws.sqs import Queue
from opsflow.runs import registry
from opsflow.runs.config import RunEndedConfig
from opsflow.runs.dead_letters import redrive
from opsflow.runs.settle import settle_ended_run
from opsflow.store.locks import DynamoLockStore
from opsflow.store.runs import DynamoRunStore, Run

logger = Logger(service="opsflow-run-ended")
tracer = Tracer(service="opsflow-run-ended")


@cache
def stores() -> tuple[DynamoRunStore, DynamoLockStore]:
    config = RunEndedConfig.from_env()
    return (
        DynamoRunStore(clients.client("dynamodb"), config.runs_table),
        DynamoLockStore(clients.client("dynamodb"), config.locks_table),
    )


@cache
def dead_letters() -> Queue:
    return Queue(clients.client("sqs"), RunEndedConfig.from_env().dead_letter_queue_url)


def put_back(run: Run) -> dict[str, Any] | None:
    workflow = registry.WORKFLOWS.get(run.workflow)
    return workflow.put_back(run) if workflow is not None and workflow.put_back is not None else None


def settle(event: dict[str, Any]) -> bool:
    """Whether the event's run still needed settling."""
    detail = event["detail"]
    runs, locks = stores()
    settled = settle_ended_run(detail["name"], detail["status"], detail.get("cause"), runs, locks, put_back)
    logger.info("run ended", extra={"run_id": detail["name"], "status": detail["status"], "settled": settled})
    return settled


def settle_again(event: dict[str, Any]) -> bool:
    settle(event)
    return True  # dealt with, whether or not its run still needed settling


@logger.inject_lambda_context(correlation_id_path="detail.name")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("redrive"):
        result = redrive(dead_letters(), settle_again)
        logger.info("redrive", extra={"redriven": result.handled, "failed": result.failed})
        return {"redriven": result.handled, "failed": result.failed}
    return {"run_id": event["detail"]["name"], "settled": settle(event)}
