"""The accounts table against moto's DynamoDB and its in-memory twin: registrations read back as given,
re-registering keeps the record of the spoke role's assumptions, and nothing is recorded for an account
that was never registered."""

from __future__ import annotations

import boto3
import pytest

from opsflow.store.accounts import Account, AccountStore, DynamoAccountStore, InMemoryAccountStore

from .conftest import table_from_template

pytestmark = pytest.mark.usefixtures("mocked_aws")

TABLE = "accounts"


@pytest.fixture(params=["dynamodb", "memory"])
def store(request: pytest.FixtureRequest) -> AccountStore:
    if request.param == "memory":
        return InMemoryAccountStore()
    return DynamoAccountStore(boto3.client("dynamodb"), table_from_template("AccountsTable", TABLE))


def an_account(account: str = "222222222222", *regions: str, name: str = "qa") -> Account:
    return Account(
        account=account,
        regions=regions or ("eu-west-1", "us-east-1", "ap-southeast-2"),
        name=name,
        registered_by="arn:aws:iam::111111111111:user/alice",
        registered_at="2026-11-23T09:00:00Z",
    )


def test_a_registration_reads_back_as_given_with_its_regions_in_order(store: AccountStore) -> None:
    stored = store.put(an_account())

    assert stored == an_account()
    assert store.get("222222222222") == an_account()
    assert store.get("333333333333") is None


def test_re_registering_replaces_regions_and_name_but_keeps_when_the_role_was_last_assumed(
    store: AccountStore,
) -> None:
    store.put(an_account())
    store.record_assumed("222222222222", "2026-11-23T09:05:00Z")

    again = store.put(an_account("222222222222", "us-west-2", name="qa-renamed"))

    assert again.regions == ("us-west-2",)
    assert again.name == "qa-renamed"
    assert again.last_assumed_at == "2026-11-23T09:05:00Z"
    assert store.get("222222222222") == again


def test_re_registering_keeps_a_refusal_recorded_since_the_last_assumption(store: AccountStore) -> None:
    store.put(an_account())
    store.record_refused("222222222222", "2026-11-23T09:06:00Z", "cannot assume opsflow-spoke-api")

    again = store.put(an_account(name="qa-renamed"))

    assert (again.last_refusal, again.last_refused_at) == (
        "cannot assume opsflow-spoke-api",
        "2026-11-23T09:06:00Z",
    )


def test_a_refusal_keeps_its_message_and_the_last_assumption(store: AccountStore) -> None:
    store.put(an_account())
    store.record_assumed("222222222222", "2026-11-23T09:05:00Z")
    message = (
        "Opsflow cannot assume its role arn:aws:iam::222222222222:role/opsflow-spoke-api in account "
        "222222222222: deploy spoke/template.yaml to account 222222222222 in eu-west-1"
    )

    store.record_refused("222222222222", "2026-11-23T09:06:00Z", message)

    stored = store.get("222222222222")
    assert stored is not None
    assert stored.last_refusal == message
    assert stored.last_refused_at == "2026-11-23T09:06:00Z"
    assert stored.last_assumed_at == "2026-11-23T09:05:00Z"
    assert stored.regions == an_account().regions


def test_an_assumption_clears_a_previous_refusal(store: AccountStore) -> None:
    store.put(an_account())
    store.record_refused("222222222222", "2026-11-23T09:06:00Z", "cannot assume")

    store.record_assumed("222222222222", "2026-11-23T09:07:00Z")

    stored = store.get("222222222222")
    assert stored is not None
    assert (stored.last_assumed_at, stored.last_refusal, stored.last_refused_at) == (
        "2026-11-23T09:07:00Z",
        None,
        None,
    )
    assert stored.name == "qa"


def test_recording_for_an_unregistered_account_does_nothing(store: AccountStore) -> None:
    store.record_assumed("111111111111", "2026-11-23T09:05:00Z")
    store.record_refused("111111111111", "2026-11-23T09:06:00Z", "cannot assume")

    assert store.get("111111111111") is None
    assert store.all() == []


def test_recording_for_an_unregistered_account_creates_no_item_in_the_table() -> None:
    client = boto3.client("dynamodb")
    store = DynamoAccountStore(client, table_from_template("AccountsTable", TABLE))

    store.record_assumed("111111111111", "2026-11-23T09:05:00Z")
    store.record_refused("111111111111", "2026-11-23T09:06:00Z", "cannot assume")

    assert client.scan(TableName=TABLE)["Items"] == []


def test_all_lists_every_account_sorted_by_account(store: AccountStore) -> None:
    for account in ("444444444444", "222222222222", "333333333333"):
        store.put(an_account(account, "eu-west-1", name=f"team-{account[0]}"))
    store.record_assumed("333333333333", "2026-11-23T09:05:00Z")

    listed = store.all()

    assert [a.account for a in listed] == ["222222222222", "333333333333", "444444444444"]
    assert [a.name for a in listed] == ["team-2", "team-3", "team-4"]
    assert [a.last_assumed_at for a in listed] == [None, "2026-11-23T09:05:00Z", None]


def test_all_of_an_empty_store_is_empty(store: AccountStore) -> None:
    assert store.all() == []
