"""Whether a run may act where its target is: the hub's own account and region always; another region only
once registered for the account; another account only once registered and its spoke role can be assumed.

The starter asks before anything is recorded or locked, so a request for an account Opsflow cannot reach is
refused with what to deploy where, and nothing starts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from opsflow.aws.sessions import Home, Sessions, SpokeUnreachable
from opsflow.aws.target import Target
from opsflow.errors import Refused
from opsflow.store.accounts import Account, AccountStore
from opsflow.store.runs import now_iso

# Who registered an account that the organization vouched for.
DISCOVERED = "AWS Organizations"


class AccountNotRegistered(Refused):
    code = "AccountNotRegistered"


class RegionNotRegistered(Refused):
    code = "RegionNotRegistered"


@dataclass
class Reach:
    home: Home
    accounts: AccountStore
    sessions: Sessions
    now: Callable[[], str] = now_iso
    # An account's name if it is an active member of the hub's organization (the hub in its management or a
    # delegated administrator account), else None: such an account needs no registration.
    discover: Callable[[str], str | None] | None = None

    def check(self, target: Target, acting_for: str, probe: bool = True) -> None:
        """Raise a `Refused` naming what to deploy or register, unless a run may act on `target`; with
        `probe`, the account's spoke role must answer too."""
        if target.account is None and target.region is None:
            return
        account = target.account or self.home.account
        region = target.region or self.home.region
        registered = self.accounts.get(account)
        at_home = self.home.is_home_account(account)
        if not at_home and (registered is None or registered.registered_by == DISCOVERED):
            registered = self._discovered(account, region, registered) or registered
        if registered is None and not at_home:
            raise AccountNotRegistered(
                f"account {account} is not registered with Opsflow: "
                f"{self.home.spoke_stack_advice(account, region)} "
                f'(body: {{"regions": ["{region}"]}})'
            )
        if region != self.home.region and (registered is None or region not in registered.regions):
            known = ", ".join((self.home.region,) if registered is None else registered.regions) or "none"
            raise RegionNotRegistered(
                f"region {region} is not registered for account {account} (registered: {known}): deploy "
                f"spoke/template.yaml to {account} in {region} (the stack forwards its events to the hub), "
                f"then add {region} to its regions with PUT /accounts/{account}"
            )
        if at_home or not probe:
            return
        try:
            self.sessions.credentials(account, acting_for, region)
        except SpokeUnreachable as refusal:
            self.accounts.record_refused(account, self.now(), refusal.message)
            raise
        self.accounts.record_assumed(account, self.now())

    def _discovered(self, account: str, region: str, known: Account | None) -> Account | None:
        """A member of the organization, registered as it is first asked for, in each region as it is asked
        for: its spoke stack comes with the organization's StackSet, and its role's answer is the check."""
        if known is not None and region in known.regions:
            return known
        name = self.discover(account) if self.discover is not None else None
        if name is None:
            return None
        regions = (*(known.regions if known else ()), region)
        return self.accounts.put(
            Account(
                account=account,
                regions=regions,
                name=name,
                registered_by=DISCOVERED,
                registered_at=self.now(),
            )
        )
