"""When an Opsflow execution ends without its finish step (aborted, timed out), record how it ended, put a
blue/green deploy's traffic back on one side, and release its lock, so the target is not held until the
lock's TTL."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from opsflow.aws import clients
from opsflow.runs import settle_ended_run
from opsflow.steps import StepsConfig
from opsflow.store.locks import DynamoLockStore
from opsflow.store.runs import DynamoRunStore, Run

logger = Logger(service="opsflow-run-ended")
tracer = Tracer(service="opsflow-run-ended")


@cache
def stores() -> tuple[DynamoRunStore, DynamoLockStore]:
    config = StepsConfig.from_env()
    return (
        DynamoRunStore(clients.client("dynamodb"), config.runs_table),
        DynamoLockStore(clients.client("dynamodb"), config.locks_table),
    )


def put_back(run: Run) -> dict[str, Any] | None:
    if run.workflow != "ecs_blue_green":
        return None
    # Imported only for the one workflow with something to put back.
    from opsflow.workflows import ecs_blue_green

    return ecs_blue_green.put_back_ended_run(run, ecs_blue_green.DeployAws.from_default_clients())


@logger.inject_lambda_context(correlation_id_path="detail.name")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    detail = event["detail"]
    runs, locks = stores()
    settled = settle_ended_run(detail["name"], detail["status"], detail.get("cause"), runs, locks, put_back)
    logger.info("run ended", extra={"run_id": detail["name"], "status": detail["status"], "settled": settled})
    return {"run_id": detail["name"], "settled": settled}
