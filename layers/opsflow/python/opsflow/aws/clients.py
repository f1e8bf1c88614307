"""One cached boto3 client per service and region, with standard retries and Opsflow's user agent."""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Any, overload

import boto3
from botocore.config import Config

from opsflow import __version__

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

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, user_agent_extra=f"opsflow/{__version__}")


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
    return boto3.session.Session().client(service, region_name=region, config=_CONFIG)  # type: ignore[call-overload]


def reset_clients() -> None:
    """Forget cached clients (the embedded runtime calls this when it starts a fresh account)."""
    _cached_client.cache_clear()
