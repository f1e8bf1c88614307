"""EventBridge's target for alarms going to ALARM: each is answered by the remediation rules that match it,
through their guards, with a remediation run started or a skip recorded for each resource."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from opsflow.aws import clients
from opsflow.aws.events import Events
from opsflow.runs.wiring import default_config as config
from opsflow.runs.wiring import default_starter as starter
from opsflow.triggers import remediation

logger = Logger(service="opsflow-remediation")
tracer = Tracer(service="opsflow-remediation")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = config()
    home = clients.sessions().home
    account = event.get("account")
    runs = settings.run_store()
    events = Events(clients.client("events"))
    answered = remediation.answer(
        event,
        settings.remediation_store(),
        starter(),
        remediation.AwsLookups(None if home.is_home_account(account) else account, event.get("region")),
        (home.account, home.region),
        datetime.now(UTC),
        already=lambda run_id: runs.get(run_id) is not None,
        announce=lambda stored, outcome, run_id: remediation.announce_breaker(
            events, stored, outcome, run_id
        ),
    )
    return {"answered": [a.as_dict() for a in answered]}
