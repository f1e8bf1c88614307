"""PUT /accounts/{account}, GET /accounts and GET /accounts/{account}: the spoke accounts Opsflow may act in."""

from __future__ import annotations

import os
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from opsflow.aws import clients
from opsflow.aws.events import Events
from opsflow.errors import NotFound
from opsflow.runs.wiring import default_config
from opsflow.spokes import registration
from opsflow.triggers.api.routing import new_router, requester

logger = Logger(service="opsflow-api", child=True)
router = new_router()

AccountId = Annotated[str, Path(pattern=registration.ACCOUNT_ID, description="The 12-digit account id.")]


@router.put("/accounts/<account>")
def put_account(
    account: AccountId, body: Annotated[registration.AccountRegistration, Body()]
) -> dict[str, Any]:
    """Register a spoke account and its regions. Its spoke role is assumed first: an account whose role is
    missing, or trusts another hub, is refused with what to deploy, and nothing is stored."""
    sessions = clients.sessions()
    by = requester(router).identity
    # With an organization, its accounts are admitted to the hub's bus as a whole (the template's policy).
    bus = None if os.environ.get("ORGANIZATION_ID") else Events(clients.client("events"))
    stored = registration.register(account, body, by, default_config().account_store(), sessions, bus)
    logger.info("account registered", extra={"account": account, "regions": list(stored.regions), "by": by})
    return registration.describe(stored, sessions.home)


@router.get("/accounts")
def list_accounts() -> dict[str, Any]:
    """Every registered account, with its regions and when its spoke role was last assumed."""
    home = clients.sessions().home
    accounts = default_config().account_store().all()
    return {
        "hub": {"account": home.account, "region": home.region, "stack": home.stack_name},
        "accounts": [registration.describe(account, home) for account in accounts],
        "count": len(accounts),
    }


@router.get("/accounts/<account>")
def get_account(account: AccountId) -> dict[str, Any]:
    found = default_config().account_store().get(account)
    if found is None:
        raise NotFound(f"account {account} is not registered; PUT /accounts/{account} with its regions")
    return registration.describe(found, clients.sessions().home)
