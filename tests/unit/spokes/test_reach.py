"""Whether a run may act where its target is, asked before anything is recorded or locked: the hub's own
account and region always; another region once registered; another account once registered and reachable
through its spoke role."""

from __future__ import annotations

from typing import cast

import pytest

from opsflow.aws.sessions import Home, Sessions, SpokeUnreachable
from opsflow.aws.target import Target
from opsflow.spokes.reach import AccountNotRegistered, Reach, RegionNotRegistered
from opsflow.store.accounts import Account, InMemoryAccountStore

HUB, SPOKE = "111111111111", "222222222222"
HOME_REGION, AWAY, ELSEWHERE = "us-east-1", "eu-west-1", "ap-southeast-2"
HOME = Home(account=HUB, region=HOME_REGION, stack_name="opsflow", spoke_role_name="opsflow-spoke-api")
STAMP = "2026-11-23T09:00:00Z"
RUN = "asg-refresh-0123abcd"


class CountingAccountStore(InMemoryAccountStore):
    """The in-memory store, counting the look-ups a check makes."""

    def __init__(self) -> None:
        super().__init__()
        self.looked_up: list[str] = []

    def get(self, account: str) -> Account | None:
        self.looked_up.append(account)
        return super().get(account)


class FakeSessions:
    """Assumes a spoke account's role, or raises `SpokeUnreachable` for the accounts in `unreachable`."""

    def __init__(self, home: Home = HOME) -> None:
        self.home = home
        self.unreachable: set[str] = set()
        self.asked: list[tuple[str, str, str | None]] = []

    def credentials(self, account: str, acting_for: str, region: str | None = None) -> object:
        self.asked.append((account, acting_for, region))
        if account in self.unreachable:
            raise SpokeUnreachable(
                f"Opsflow cannot assume its role {self.home.role_arn(account)} in account {account}: "
                f"{self.home.spoke_stack_advice(account, region)}",
                account,
                region,
            )
        return object()


@pytest.fixture
def accounts() -> CountingAccountStore:
    return CountingAccountStore()


@pytest.fixture
def sessions() -> FakeSessions:
    return FakeSessions()


@pytest.fixture
def reach(accounts: CountingAccountStore, sessions: FakeSessions) -> Reach:
    return Reach(HOME, accounts, cast(Sessions, sessions), now=lambda: STAMP)


def register(accounts: InMemoryAccountStore, account: str, *regions: str) -> None:
    accounts.put(Account(account=account, regions=regions, name="qa", registered_by="alice"))


def test_the_hubs_own_target_passes_without_a_look_up(
    reach: Reach, accounts: CountingAccountStore, sessions: FakeSessions
) -> None:
    reach.check(Target("asg", "web"), RUN)

    assert accounts.looked_up == []
    assert sessions.asked == []


def test_the_hub_account_named_in_its_own_region_passes_without_a_role(
    reach: Reach, accounts: CountingAccountStore, sessions: FakeSessions
) -> None:
    reach.check(Target("asg", "web", HUB, HOME_REGION), RUN)

    assert sessions.asked == []
    assert accounts.get(HUB) is None  # nothing was registered or stamped on the way


@pytest.mark.parametrize("region", [None, AWAY])
def test_an_unregistered_account_is_refused_with_the_stack_to_deploy_and_how_to_register_it(
    reach: Reach, sessions: FakeSessions, region: str | None
) -> None:
    with pytest.raises(AccountNotRegistered) as refused:
        reach.check(Target("asg", "web", SPOKE, region), RUN)

    message = refused.value.message
    assert "spoke/template.yaml" in message
    assert SPOKE in message
    assert f"in {region or HOME_REGION}" in message
    assert f"PUT /accounts/{SPOKE}" in message
    assert f'"regions": ["{region or HOME_REGION}"]' in message
    assert refused.value.code == "AccountNotRegistered"
    assert sessions.asked == []


def test_a_registered_account_in_a_region_it_is_not_registered_for_is_refused(
    reach: Reach, accounts: CountingAccountStore, sessions: FakeSessions
) -> None:
    register(accounts, SPOKE, HOME_REGION, AWAY)

    with pytest.raises(RegionNotRegistered) as refused:
        reach.check(Target("asg", "web", SPOKE, ELSEWHERE), RUN)

    message = refused.value.message
    assert f"region {ELSEWHERE} is not registered for account {SPOKE}" in message
    assert f"(registered: {HOME_REGION}, {AWAY})" in message
    assert f"PUT /accounts/{SPOKE}" in message
    assert refused.value.code == "RegionNotRegistered"
    assert sessions.asked == []
    stored = accounts.get(SPOKE)
    assert stored is not None
    assert stored.last_assumed_at is None


def test_the_hub_account_in_another_region_needs_that_region_registered_for_it(
    reach: Reach, accounts: CountingAccountStore, sessions: FakeSessions
) -> None:
    with pytest.raises(RegionNotRegistered) as refused:
        reach.check(Target("asg", "web", None, AWAY), RUN)
    assert f"region {AWAY} is not registered for account {HUB} (registered: {HOME_REGION})" in (
        refused.value.message
    )

    register(accounts, HUB, AWAY)
    reach.check(Target("asg", "web", None, AWAY), RUN)
    reach.check(Target("asg", "web", HUB, AWAY), RUN)

    assert sessions.asked == []  # the hub's own credentials serve every region of its account
    stored = accounts.get(HUB)
    assert stored is not None
    assert stored.last_assumed_at is None


def test_the_hub_account_registered_for_other_regions_is_still_refused_elsewhere(
    reach: Reach, accounts: CountingAccountStore
) -> None:
    register(accounts, HUB, AWAY)

    with pytest.raises(RegionNotRegistered):
        reach.check(Target("asg", "web", None, ELSEWHERE), RUN)


def test_a_registered_reachable_account_passes_and_its_assumption_is_stamped(
    reach: Reach, accounts: CountingAccountStore, sessions: FakeSessions
) -> None:
    register(accounts, SPOKE, HOME_REGION, AWAY)

    reach.check(Target("asg", "web", SPOKE, AWAY), RUN)

    assert sessions.asked == [(SPOKE, RUN, AWAY)]
    stored = accounts.get(SPOKE)
    assert stored is not None
    assert stored.last_assumed_at == STAMP
    assert (stored.last_refusal, stored.last_refused_at) == (None, None)


def test_a_target_in_a_spoke_account_without_a_region_is_reached_in_the_hubs_region(
    reach: Reach, accounts: CountingAccountStore, sessions: FakeSessions
) -> None:
    register(accounts, SPOKE, HOME_REGION)

    reach.check(Target("asg", "web", SPOKE, None), RUN)

    assert sessions.asked == [(SPOKE, RUN, HOME_REGION)]


def test_an_unreachable_account_is_refused_and_its_refusal_recorded(
    reach: Reach, accounts: CountingAccountStore, sessions: FakeSessions
) -> None:
    register(accounts, SPOKE, HOME_REGION, AWAY)
    sessions.unreachable.add(SPOKE)

    with pytest.raises(SpokeUnreachable) as refused:
        reach.check(Target("asg", "web", SPOKE, AWAY), RUN)

    stored = accounts.get(SPOKE)
    assert stored is not None
    assert stored.last_refusal == refused.value.message
    assert "deploy spoke/template.yaml" in (stored.last_refusal or "")
    assert stored.last_refused_at == STAMP
    assert stored.last_assumed_at is None


def test_once_reachable_again_the_recorded_refusal_is_cleared(
    reach: Reach, accounts: CountingAccountStore, sessions: FakeSessions
) -> None:
    register(accounts, SPOKE, AWAY)
    sessions.unreachable.add(SPOKE)
    with pytest.raises(SpokeUnreachable):
        reach.check(Target("asg", "web", SPOKE, AWAY), RUN)

    sessions.unreachable.clear()
    reach.check(Target("asg", "web", SPOKE, AWAY), RUN)

    stored = accounts.get(SPOKE)
    assert stored is not None
    assert (stored.last_assumed_at, stored.last_refusal, stored.last_refused_at) == (STAMP, None, None)


# Discovery from AWS Organizations ------------------------------------------------------------------------


def discovering(
    accounts: CountingAccountStore, sessions: FakeSessions, members: dict[str, str]
) -> tuple[Reach, list[str]]:
    asked: list[str] = []

    def discover(account: str) -> str | None:
        asked.append(account)
        return members.get(account)

    reach = Reach(HOME, accounts, cast(Sessions, sessions), now=lambda: STAMP, discover=discover)
    return reach, asked


def test_an_active_member_of_the_organization_is_registered_on_its_first_request(
    accounts: CountingAccountStore, sessions: FakeSessions
) -> None:
    reach, asked = discovering(accounts, sessions, {SPOKE: "qa"})

    reach.check(Target("asg", "web", SPOKE, AWAY), RUN)

    assert asked == [SPOKE]
    found = accounts.get(SPOKE)
    assert found is not None
    assert (found.name, found.regions, found.registered_by) == ("qa", (AWAY,), "AWS Organizations")
    assert found.last_assumed_at == STAMP
    assert sessions.asked == [(SPOKE, RUN, AWAY)]


def test_a_discovered_account_gains_each_region_it_is_asked_for_and_is_not_asked_about_again(
    accounts: CountingAccountStore, sessions: FakeSessions
) -> None:
    reach, asked = discovering(accounts, sessions, {SPOKE: "qa"})
    reach.check(Target("asg", "web", SPOKE, AWAY), RUN)
    reach.check(Target("asg", "web", SPOKE, AWAY), RUN)

    reach.check(Target("asg", "web", SPOKE, ELSEWHERE), RUN)

    assert asked == [SPOKE, SPOKE]
    found = accounts.get(SPOKE)
    assert found is not None
    assert found.regions == (AWAY, ELSEWHERE)


def test_an_account_outside_the_organization_still_needs_registering(
    accounts: CountingAccountStore, sessions: FakeSessions
) -> None:
    reach, _ = discovering(accounts, sessions, {})

    with pytest.raises(AccountNotRegistered):
        reach.check(Target("asg", "web", SPOKE, AWAY), RUN)
    assert accounts.get(SPOKE) is None


def test_an_account_a_person_registered_keeps_its_regions_whatever_the_organization_says(
    accounts: CountingAccountStore, sessions: FakeSessions
) -> None:
    accounts.put(Account(account=SPOKE, regions=(HOME_REGION,), registered_by="alice"))
    reach, asked = discovering(accounts, sessions, {SPOKE: "qa"})

    with pytest.raises(RegionNotRegistered):
        reach.check(Target("asg", "web", SPOKE, AWAY), RUN)
    assert asked == []
