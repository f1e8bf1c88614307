"""Clients in the account and region a run acts on: the hub's own credentials at home, the spoke role's
session elsewhere, assumed with the run's id for CloudTrail and kept until shortly before it expires."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from opsflow.aws.sessions import RENEW_BEFORE, Home, Sessions, SpokeUnreachable, source_identity
from opsflow.errors import AwsTransient

HUB, SPOKE, OTHER = "111111111111", "222222222222", "333333333333"
HOME_REGION, AWAY = "us-east-1", "eu-west-1"
HOME = Home(account=HUB, region=HOME_REGION, stack_name="opsflow", spoke_role_name="opsflow-spoke-api")
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
# What STS accepts in SourceIdentity and RoleSessionName (botocore's STS model: sourceIdentityType).
STS_IDENTITY = re.compile(r"[A-Za-z0-9_+=,.@-]{2,64}")


class Clock:
    def __init__(self, at: datetime = START) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, by: timedelta) -> None:
        self.at += by


class FakeSts:
    """Answers AssumeRole with numbered credentials that expire `lasts` after the clock's time, or raises
    `error`."""

    def __init__(self, clock: Clock, lasts: timedelta = timedelta(hours=1)) -> None:
        self.clock = clock
        self.lasts = lasts
        self.calls: list[dict[str, Any]] = []
        self.error: ClientError | None = None
        self.expiration: Any = None  # given as is instead of clock + lasts, when set

    def assume_role(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        n = len(self.calls)
        return {
            "Credentials": {
                "AccessKeyId": f"ASIA-SPOKE-{n}",
                "SecretAccessKey": f"secret-{n}",
                "SessionToken": f"token-{n}",
                "Expiration": self.expiration if self.expiration is not None else self.clock() + self.lasts,
            }
        }


@dataclass(frozen=True)
class HubClient:
    service: str
    region: str | None


class HubClients:
    """The function's own clients, signed with the hub's credentials: `(service, region) -> client`."""

    def __init__(self, sts: FakeSts) -> None:
        self.sts = sts
        self.asked: list[tuple[str, str | None]] = []

    def __call__(self, service: str, region: str | None) -> Any:
        self.asked.append((service, region))
        return self.sts if service == "sts" else HubClient(service, region)


@dataclass
class MadeClient:
    service: str
    kwargs: dict[str, Any] = field(default_factory=dict)


class ClientFactory:
    """Stands in for boto3: records what each client was made with."""

    def __init__(self) -> None:
        self.made: list[MadeClient] = []

    def __call__(self, service: str, **kwargs: Any) -> MadeClient:
        client = MadeClient(service, kwargs)
        self.made.append(client)
        return client


@dataclass
class World:
    clock: Clock
    sts: FakeSts
    hub: HubClients
    factory: ClientFactory
    sessions: Sessions


@pytest.fixture
def world() -> World:
    clock = Clock()
    sts = FakeSts(clock)
    hub = HubClients(sts)
    factory = ClientFactory()
    return World(clock, sts, hub, factory, Sessions(HOME, hub, make_client=factory, now=clock))


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} for AssumeRole"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "AssumeRole",
    )


# The hub's own account -----------------------------------------------------------------------------------


@pytest.mark.parametrize("account", [None, HUB])
def test_a_client_in_the_hubs_own_account_is_the_hub_client_and_assumes_no_role(
    world: World, account: str | None
) -> None:
    client = world.sessions.client("ec2", account, AWAY, "asg-refresh-1")

    assert client == HubClient("ec2", AWAY)
    assert world.sts.calls == []
    assert world.factory.made == []
    assert world.sessions.assumed == 0


def test_a_hub_client_without_a_region_is_in_the_hubs_region(world: World) -> None:
    client = world.sessions.client("autoscaling", None, None, "asg-refresh-1")

    assert client == HubClient("autoscaling", HOME_REGION)


# Another account -----------------------------------------------------------------------------------------


def test_a_spoke_client_is_signed_with_the_assumed_credentials_never_the_hubs(world: World) -> None:
    client = world.sessions.client("ec2", SPOKE, AWAY, "asg-refresh-1")

    assert isinstance(client, MadeClient)
    assert world.factory.made == [
        MadeClient(
            "ec2",
            {
                "region_name": AWAY,
                "aws_access_key_id": "ASIA-SPOKE-1",
                "aws_secret_access_key": "secret-1",
                "aws_session_token": "token-1",
            },
        )
    ]
    # The hub's credentials served only the AssumeRole call itself, in the hub's region.
    assert world.hub.asked == [("sts", HOME_REGION)]


def test_a_spoke_client_without_a_region_is_in_the_hubs_region(world: World) -> None:
    world.sessions.client("ec2", SPOKE, None, "asg-refresh-1")

    assert world.factory.made[0].kwargs["region_name"] == HOME_REGION


def test_the_spoke_role_is_assumed_with_the_run_as_source_identity_and_session_tag(world: World) -> None:
    world.sessions.client("autoscaling", SPOKE, AWAY, "asg-refresh-0123abcd")

    (call,) = world.sts.calls
    assert call["RoleArn"] == f"arn:aws:iam::{SPOKE}:role/opsflow-spoke-api"
    assert call["SourceIdentity"] == "asg-refresh-0123abcd"
    assert call["Tags"] == [{"Key": "opsflow:run", "Value": "asg-refresh-0123abcd"}]
    assert call["RoleSessionName"].startswith("opsflow-")
    assert "asg-refresh-0123abcd" in call["RoleSessionName"]
    assert STS_IDENTITY.fullmatch(call["RoleSessionName"])


def test_the_role_session_name_of_a_long_run_id_keeps_within_64_characters(world: World) -> None:
    world.sessions.client("ec2", SPOKE, AWAY, "ecs-blue-green-" + "f" * 80)

    (call,) = world.sts.calls
    assert call["RoleSessionName"].startswith("opsflow-ecs-blue-green-")
    assert len(call["RoleSessionName"]) == 64
    assert len(call["SourceIdentity"]) == 64


def test_one_assumption_serves_every_service_and_region_of_a_run_in_an_account(world: World) -> None:
    for service, region in (("ec2", AWAY), ("autoscaling", AWAY), ("ec2", HOME_REGION), ("rds", None)):
        world.sessions.client(service, SPOKE, region, "env-power-1")

    assert len(world.sts.calls) == 1
    assert world.sessions.assumed == 1
    assert {made.kwargs["aws_access_key_id"] for made in world.factory.made} == {"ASIA-SPOKE-1"}
    assert [(m.service, m.kwargs["region_name"]) for m in world.factory.made] == [
        ("ec2", AWAY),
        ("autoscaling", AWAY),
        ("ec2", HOME_REGION),
        ("rds", HOME_REGION),
    ]


def test_the_same_client_is_handed_out_again_while_its_credentials_hold(world: World) -> None:
    first = world.sessions.client("ec2", SPOKE, AWAY, "env-power-1")
    world.clock.advance(timedelta(minutes=30))

    again = world.sessions.client("ec2", SPOKE, AWAY, "env-power-1")

    assert again is first
    assert len(world.factory.made) == 1


def test_credentials_are_kept_until_shortly_before_they_expire_then_assumed_again(world: World) -> None:
    world.sessions.client("ec2", SPOKE, AWAY, "env-power-1")
    expires = START + timedelta(hours=1)

    world.clock.at = expires - RENEW_BEFORE - timedelta(seconds=1)
    kept = world.sessions.client("ec2", SPOKE, AWAY, "env-power-1")
    assert len(world.sts.calls) == 1
    assert kept.kwargs["aws_access_key_id"] == "ASIA-SPOKE-1"

    world.clock.at = expires - RENEW_BEFORE
    renewed = world.sessions.client("ec2", SPOKE, AWAY, "env-power-1")

    assert len(world.sts.calls) == 2
    assert renewed is not kept
    assert renewed.kwargs["aws_access_key_id"] == "ASIA-SPOKE-2"
    assert renewed.kwargs["aws_session_token"] == "token-2"
    # The renewed credentials hold for their own hour.
    world.clock.advance(timedelta(minutes=50))
    assert world.sessions.client("ec2", SPOKE, AWAY, "env-power-1") is renewed
    assert len(world.sts.calls) == 2


@pytest.mark.parametrize(
    "expiration",
    [
        "2026-11-23T09:10:00Z",  # text, as some SDKs and caches hand it over
        datetime(2026, 11, 23, 9, 10),  # naive: STS's times are UTC
    ],
)
def test_an_expiration_given_as_text_or_without_a_zone_is_read_as_utc(world: World, expiration: Any) -> None:
    world.sts.expiration = expiration
    world.sessions.credentials(SPOKE, "env-power-1")

    world.clock.at = datetime(2026, 11, 23, 9, 4, 59, tzinfo=UTC)  # 5 min 1 s before 09:10 UTC
    world.sessions.credentials(SPOKE, "env-power-1")
    assert len(world.sts.calls) == 1

    world.clock.at = datetime(2026, 11, 23, 9, 5, tzinfo=UTC)
    world.sessions.credentials(SPOKE, "env-power-1")
    assert len(world.sts.calls) == 2


def test_a_different_run_gets_its_own_session_named_for_it(world: World) -> None:
    world.sessions.client("ec2", SPOKE, AWAY, "asg-refresh-a")
    world.sessions.client("ec2", SPOKE, AWAY, "asg-refresh-b")
    world.sessions.client("autoscaling", SPOKE, AWAY, "asg-refresh-a")

    assert [call["SourceIdentity"] for call in world.sts.calls] == ["asg-refresh-a", "asg-refresh-b"]
    assert [m.kwargs["aws_access_key_id"] for m in world.factory.made] == [
        "ASIA-SPOKE-1",
        "ASIA-SPOKE-2",
        "ASIA-SPOKE-1",
    ]


def test_another_account_gets_its_own_session_through_its_own_role(world: World) -> None:
    world.sessions.client("ec2", SPOKE, AWAY, "asg-refresh-a")
    world.sessions.client("ec2", OTHER, AWAY, "asg-refresh-a")

    assert [call["RoleArn"] for call in world.sts.calls] == [
        f"arn:aws:iam::{SPOKE}:role/opsflow-spoke-api",
        f"arn:aws:iam::{OTHER}:role/opsflow-spoke-api",
    ]


# Refusals ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["AccessDenied", "AccessDeniedException"])
def test_a_role_that_cannot_be_assumed_is_refused_with_the_spoke_stack_to_deploy(
    world: World, code: str
) -> None:
    world.sts.error = client_error(code, 403)

    with pytest.raises(SpokeUnreachable) as refused:
        world.sessions.client("ec2", SPOKE, AWAY, "asg-refresh-1")

    message = refused.value.message
    assert f"arn:aws:iam::{SPOKE}:role/opsflow-spoke-api" in message
    assert f"account {SPOKE}" in message
    assert "deploy spoke/template.yaml" in message
    assert AWAY in message
    assert f"PUT /accounts/{SPOKE}" in message
    assert (refused.value.account, refused.value.region) == (SPOKE, AWAY)
    assert refused.value.code == "SpokeUnreachable"
    assert world.factory.made == []
    assert world.sessions.assumed == 0


def test_a_refused_assumption_is_not_kept_and_is_tried_again(world: World) -> None:
    world.sts.error = client_error("AccessDenied", 403)
    with pytest.raises(SpokeUnreachable):
        world.sessions.credentials(SPOKE, "asg-refresh-1", AWAY)

    world.sts.error = None  # the spoke stack was deployed meanwhile
    credentials = world.sessions.credentials(SPOKE, "asg-refresh-1", AWAY)

    assert credentials.access_key == "ASIA-SPOKE-2"
    assert len(world.sts.calls) == 2


def test_a_throttled_assumption_is_transient_so_the_step_is_retried(world: World) -> None:
    world.sts.error = client_error("Throttling", 400)

    with pytest.raises(AwsTransient) as raised:
        world.sessions.client("ec2", SPOKE, AWAY, "asg-refresh-1")

    assert type(raised.value) is AwsTransient
    assert (raised.value.operation, raised.value.aws_code) == ("AssumeRole", "Throttling")
    assert not isinstance(raised.value, SpokeUnreachable)


# Source identity -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("acting_for", "identity"),
    [
        ("asg-refresh-0123abcd", "asg-refresh-0123abcd"),
        # What SourceIdentity and a session tag value both take beside letters and digits; a comma only the first.
        ("a_b+c=d,e.f@g-h", "a_b+c=d-e.f@g-h"),
        ("run 1/eu-west-1:web", "run-1-eu-west-1-web"),
        ("x" * 70, "x" * 64),
        ("r", "opsflow-r"),  # STS wants at least two characters
        ("", "opsflow-"),
    ],
)
def test_the_source_identity_cleans_what_sts_refuses_and_keeps_at_most_64_characters(
    acting_for: str, identity: str
) -> None:
    assert source_identity(acting_for) == identity
    assert STS_IDENTITY.fullmatch(source_identity(acting_for))


def test_a_cleaned_run_id_is_what_the_session_carries(world: World) -> None:
    world.sessions.credentials(SPOKE, "run 1/with:colons" + "y" * 80)

    (call,) = world.sts.calls
    assert call["SourceIdentity"] == ("run-1-with-colons" + "y" * 80)[:64]
    assert call["Tags"][0]["Value"] == call["SourceIdentity"]
    assert STS_IDENTITY.fullmatch(call["RoleSessionName"])


def test_the_session_tag_carries_only_characters_sts_takes_in_a_tag_value(world: World) -> None:
    world.sessions.credentials(SPOKE, "run,1")

    (call,) = world.sts.calls
    assert "," not in call["Tags"][0]["Value"]
