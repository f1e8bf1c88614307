"""The environment power state machine's steps: one Lambda, dispatching on `step`."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from opsflow.aws import clients
from opsflow.settings import environment_tag_key, required_env
from opsflow.steps import StepRunner, StepsConfig, build_runner
from opsflow.store.runs import DynamoRunStore
from opsflow.workflows import env_power

logger = Logger(service="opsflow-env-power")
tracer = Tracer(service="opsflow-env-power")


@cache
def runner() -> StepRunner:
    config = StepsConfig.from_env()
    aws = env_power.PowerAws.from_default_clients(required_env("CAPACITY_TABLE"))
    runs = DynamoRunStore(clients.client("dynamodb"), config.runs_table)

    def run_status(run_id: str) -> str | None:
        run = runs.get(run_id)
        return run.status if run else None

    return build_runner(
        config,
        env_power.step_table(aws, config.opt_in, environment_tag_key(), run_status),
        env_power.run_outcome,
        env_power.run_error,
        finish=lambda state, runs, locks: env_power.finish_run(state, aws, runs, locks),
    )


@logger.inject_lambda_context(correlation_id_path="state.run_id")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.info("step", extra={"step": event.get("step")})
    return runner()(event)
