"""EventBridge Scheduler's target: each environment's daily stop and start fire here, and start a run
through the same guard and audit record as the API, or record why the calendar skipped it."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from opsflow.runs.wiring import default_config as config
from opsflow.runs.wiring import default_starter as starter
from opsflow.triggers import scheduler
from opsflow.triggers.idempotency import once_per

logger = Logger(service="opsflow-schedule")
tracer = Tracer(service="opsflow-schedule")


def run_status(run_id: str) -> str | None:
    run = config().run_store().get(run_id)
    return run.status if run else None


@cache
def handle_once() -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    # One answer per fire: Scheduler and Lambda's asynchronous retries deliver at least once.
    return once_per(handle, key="[schedule_arn, scheduled_time, request]", expires_after_seconds=24 * 3600)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_once()(event, context)


def handle(event: dict[str, Any]) -> dict[str, Any]:
    settings = config()
    if event.get("check") == "stopped_databases":
        # Only the daily check needs the workflow's code: a schedule's fire does not load it.
        from opsflow.workflows.env_power.inventory import PowerAws

        check = scheduler.DailyCheck.from_event(event)
        runs = scheduler.recheck_databases(
            check,
            settings.capacity_store(),
            PowerAws.at(settings.capacity_table),
            start=lambda request, requester, key: starter().start(request, requester, key),
        )
        logger.info("daily database check", extra={"runs": [r.run.run_id for r in runs]})
        return {"runs": [{"run_id": r.run.run_id, "target": r.run.target} for r in runs]}
    fire = scheduler.ScheduledFire.from_event(event)
    started = scheduler.on_fire(
        fire,
        settings.environment_store(),
        settings.capacity_store(),
        start=lambda request, requester, key: starter().start(request, requester, key),
        skip=lambda request, requester, reason, key: starter().skip(request, requester, reason, key),
        run_status=run_status,
    )
    run = started.run
    logger.info(
        "scheduled run",
        extra={
            "run_id": run.run_id,
            "status": run.status,
            "schedule": fire.schedule_arn,
            "created": started.created,
        },
    )
    return {"run_id": run.run_id, "status": run.status, "summary": (run.result or {}).get("summary")}
