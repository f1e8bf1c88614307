"""One cached boto3 client per service and region, with standard retries and Opsflow's user agent.

`client` is the hub's own (its tables, its state machines). `client_at` is for what a run acts on: in the
hub's account it is the same client; in another it is one signed with the spoke role's session for the run
being served (`acting_for`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import TYPE_CHECKING, Any, overload

import boto3
from botocore.config import Config

from opsflow import __version__
from opsflow.aws.sessions import Home, Sessions

if TYPE_CHECKING:
    from typing import Literal

    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_codepipeline import CodePipelineClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_scheduler import EventBridgeSchedulerClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, user_agent_extra=f"opsflow/{__version__}")


@overload
def client(service: Literal["ec2"], region: str | None = None) -> EC2Client: ...
@overload
def client(service: Literal["autoscaling"], region: str | None = None) -> AutoScalingClient: ...
@overload
def client(service: Literal["dynamodb"], region: str | None = None) -> DynamoDBClient: ...
@overload
def client(service: Literal["cloudwatch"], region: str | None = None) -> CloudWatchClient: ...
@overload
def client(service: Literal["codepipeline"], region: str | None = None) -> CodePipelineClient: ...
@overload
def client(service: Literal["events"], region: str | None = None) -> EventBridgeClient: ...
@overload
def client(service: Literal["ecs"], region: str | None = None) -> ECSClient: ...
@overload
def client(service: Literal["elbv2"], region: str | None = None) -> ElasticLoadBalancingv2Client: ...
@overload
def client(service: Literal["rds"], region: str | None = None) -> RDSClient: ...
@overload
def client(service: Literal["scheduler"], region: str | None = None) -> EventBridgeSchedulerClient: ...
@overload
def client(service: Literal["sqs"], region: str | None = None) -> SQSClient: ...
@overload
def client(service: Literal["stepfunctions"], region: str | None = None) -> SFNClient: ...
@overload
def client(service: str, region: str | None = None) -> Any: ...
def client(service: str, region: str | None = None) -> Any:
    return _cached_client(service, region or os.environ.get("AWS_REGION") or os.environ["AWS_DEFAULT_REGION"])


@cache
def _cached_client(service: str, region: str) -> Any:
    return boto3.session.Session().client(service, region_name=region, config=CONFIG)  # type: ignore[call-overload]


# The run a function is serving: it names the spoke sessions (SourceIdentity) for CloudTrail.
_acting_for: ContextVar[str] = ContextVar("opsflow_acting_for", default="opsflow")


@contextmanager
def acting_for(run_id: str) -> Iterator[None]:
    token = _acting_for.set(run_id or "opsflow")
    try:
        yield
    finally:
        _acting_for.reset(token)


def sessions() -> Sessions:
    """The sessions of this function's spoke role (`SPOKE_ROLE_NAME`)."""
    return _sessions_of(Home.from_env())


@cache
def _sessions_of(home: Home) -> Sessions:
    return Sessions(home, client)


def client_at(service: str, account: str | None = None, region: str | None = None) -> Any:
    """A client in `account` and `region` (None: the hub's), for the run being served. In another account
    the spoke role is assumed on the client's first call, so a step that never calls AWS there (one that
    reports the account's failure, say) needs no session."""
    found, acting = sessions(), _acting_for.get()
    if found.home.is_home_account(account):
        return found.client(service, account, region, acting)
    return _OnFirstCall(lambda: found.client(service, account, region, acting))


class _OnFirstCall:
    """A client made when first used."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = self._make()
        return getattr(self._client, name)


def reset_clients() -> None:
    """Forget cached clients and sessions (the embedded runtime calls this when it starts a fresh account)."""
    _cached_client.cache_clear()
    _sessions_of.cache_clear()
