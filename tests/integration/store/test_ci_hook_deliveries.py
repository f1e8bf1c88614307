"""The CI hook's memory of accepted requests, held by the idempotency table (as the template declares it)
and its in-memory twin alike: a key is accepted once until it expires, and a forgotten one again."""

from __future__ import annotations

import boto3
import pytest

from opsflow.ci.hook import DynamoSeenDeliveries, InMemorySeenDeliveries, SeenDeliveries

from .conftest import table_from_template

pytestmark = pytest.mark.usefixtures("mocked_aws")
NOW = 1_800_000_000


@pytest.fixture(params=["dynamodb", "memory"])
def seen(request: pytest.FixtureRequest) -> SeenDeliveries:
    if request.param == "memory":
        return InMemorySeenDeliveries()
    return DynamoSeenDeliveries(boto3.client("dynamodb"), table_from_template("IdempotencyTable"))


def test_a_key_is_accepted_once(seen: SeenDeliveries) -> None:
    assert seen.first_time("hmac:ab", NOW, 660)
    assert not seen.first_time("hmac:ab", NOW + 659, 660)


def test_an_expired_key_is_accepted_again_before_dynamodb_deletes_it(seen: SeenDeliveries) -> None:
    seen.first_time("hmac:ab", NOW, 660)

    assert seen.first_time("hmac:ab", NOW + 660, 660)


def test_a_forgotten_key_is_accepted_again(seen: SeenDeliveries) -> None:
    seen.first_time("delivery:1", NOW, 86400)

    seen.forget("delivery:1")

    assert seen.first_time("delivery:1", NOW + 1, 86400)


def test_keys_live_beside_the_idempotency_records_under_their_own_prefix() -> None:
    table = table_from_template("IdempotencyTable")
    DynamoSeenDeliveries(boto3.client("dynamodb"), table).first_time("hmac:ab", NOW, 660)

    [item] = boto3.client("dynamodb").scan(TableName=table)["Items"]

    assert item == {"id": {"S": "ci-hook#hmac:ab"}, "expiration": {"N": str(NOW + 660)}}
