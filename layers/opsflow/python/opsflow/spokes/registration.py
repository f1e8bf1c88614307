"""PUT /accounts/{account}: register a spoke account and its regions, after proving its role can be assumed."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from opsflow.aws.events import Events
from opsflow.aws.sessions import Home, Sessions, SpokeUnreachable
from opsflow.store.accounts import Account, AccountStore
from opsflow.store.runs import now_iso

ACCOUNT_ID = r"^\d{12}$"
REGION = r"^[a-z]{2}(-[a-z]+)+-\d$"


class AccountRegistration(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    regions: Annotated[
        list[Annotated[str, Field(pattern=REGION)]],
        Field(min_length=1, max_length=40, description="The regions Opsflow may act in, in this account."),
    ]
    name: Annotated[str, Field(max_length=100, description="For people: `qa`, `payments-prod`.")] = ""


def register(
    account: str,
    registration: AccountRegistration,
    by: str,
    accounts: AccountStore,
    sessions: Sessions,
    bus: Events | None,
) -> Account:
    """Store the registration once the spoke role answers (the hub's own account has no spoke role), and
    admit the account to the hub's event bus (`bus`; None when the organization is admitted as a whole).

    A role that cannot be assumed is refused with what to deploy, and nothing is stored."""
    home = sessions.home
    if not home.is_home_account(account):
        sessions.credentials(account, f"register-{account}", registration.regions[0])
        if bus is not None:
            bus.admit_account(account, f"spoke-{account}")
    stamp = now_iso()
    stored = accounts.put(
        Account(
            account=account,
            regions=tuple(dict.fromkeys(registration.regions)),
            name=registration.name,
            registered_by=by,
            registered_at=stamp,
        )
    )
    if not home.is_home_account(account):
        accounts.record_assumed(account, stamp)
        stored = accounts.get(account) or stored
    return stored


def describe(account: Account, home: Home) -> dict[str, Any]:
    return {
        "account": account.account,
        "name": account.name,
        "regions": list(account.regions),
        "hub": home.is_home_account(account.account),
        "role_arn": None if home.is_home_account(account.account) else home.role_arn(account.account),
        "registered_by": account.registered_by,
        "registered_at": account.registered_at,
        "last_assumed_at": account.last_assumed_at,
        "last_refusal": account.last_refusal,
        "last_refused_at": account.last_refused_at,
    }


__all__ = ["AccountRegistration", "SpokeUnreachable", "describe", "register"]
