"""PUT, GET and DELETE /remediations/{name}, GET /remediations, and DELETE /remediations/{name}/breaker: the
rules that answer failure events, and the breaker a team closes once it has looked."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from opsflow.aws import clients
from opsflow.aws.ssm import Ssm
from opsflow.aws.target import Target
from opsflow.errors import InvalidField, NotFound
from opsflow.remediation import guard, runbooks, views
from opsflow.remediation.rules import RULE_NAME, RemediationRule
from opsflow.runs.wiring import default_config
from opsflow.spokes.reach import Reach
from opsflow.triggers.api.routing import new_router, requester

logger = Logger(service="opsflow-api", child=True)
router = new_router()

RuleName = Annotated[
    str, Path(pattern=RULE_NAME, description="The rule's name: letters, digits, '_' and '-'.")
]


@router.put("/remediations/<name>")
def put_remediation(name: RuleName, rule: Annotated[RemediationRule, Body()]) -> dict[str, Any]:
    """Create or replace a rule. Its account and region must be reachable, and a runbook must exist there
    with the parameters given; its cooldowns, breaker and decisions so far are kept."""
    by = requester(router).identity
    sessions = clients.sessions()
    config = default_config()
    where = Target("remediation", name, rule.account, rule.region)
    Reach(sessions.home, config.account_store(), sessions).check(where, by)
    if rule.action.kind == "runbook":
        if rule.account and not sessions.home.is_home_account(rule.account):
            raise InvalidField(
                "account",
                "a runbook action runs in the hub's own account only: spoke stacks have no runbook role yet; "
                "use reboot, stop_start, recover or ecs_redeploy there",
            )
        ssm = Ssm(sessions.client("ssm", rule.account, rule.region, by))
        place = f"{rule.account or sessions.home.account}/{rule.region or sessions.home.region}"
        runbooks.check(rule.action, ssm, place)
    stored = config.remediation_store().put(name, rule, by)
    logger.info("remediation rule put", extra={"rule": name, "by": by, "action": rule.action.kind})
    return views.describe(stored, datetime.now(UTC))


@router.get("/remediations")
def list_remediations() -> dict[str, Any]:
    now = datetime.now(UTC)
    rules = default_config().remediation_store().all()
    return {"remediations": [views.describe(rule, now) for rule in rules], "count": len(rules)}


@router.get("/remediations/<name>")
def get_remediation(name: RuleName) -> dict[str, Any]:
    """The rule, its breaker, what is under way and in its cooldown, and its latest decisions."""
    stored = default_config().remediation_store().get(name)
    if stored is None:
        raise NotFound(f"no remediation {name}; PUT /remediations/{name} with its rule to add it")
    return views.describe(stored, datetime.now(UTC))


@router.delete("/remediations/<name>")
def delete_remediation(name: RuleName) -> dict[str, Any]:
    """Remove the rule; remediations under way finish, and no new event fires it."""
    if not default_config().remediation_store().delete(name):
        raise NotFound(f"no remediation {name}")
    logger.info("remediation rule deleted", extra={"rule": name, "by": requester(router).identity})
    return {"deleted": name}


@router.delete("/remediations/<name>/breaker")
def close_breaker(name: RuleName) -> dict[str, Any]:
    """Close the rule's circuit breaker: it acts again, and the actions that opened it no longer count."""
    store = default_config().remediation_store()
    now = datetime.now(UTC)
    was_open = store.change_guard(
        name, lambda _rule, record: (guard.close_breaker(record, now), record.breaker)
    )
    logger.info(
        "remediation breaker closed",
        extra={"rule": name, "by": requester(router).identity, "was_open": was_open is not None},
    )
    stored = store.get(name)
    if stored is None:
        raise NotFound(f"no remediation {name}")
    return views.describe(stored, now)
