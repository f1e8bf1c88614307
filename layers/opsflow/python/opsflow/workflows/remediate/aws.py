"""The AWS services a remediation calls, in the account and region of the resource it acts on."""

from __future__ import annotations

from dataclasses import dataclass

from opsflow.aws import clients
from opsflow.aws.cloudwatch import CloudWatch
from opsflow.aws.ec2 import Ec2
from opsflow.aws.ecs import Ecs
from opsflow.aws.events import Events
from opsflow.aws.ssm import Ssm
from opsflow.aws.target import Target


@dataclass(frozen=True)
class RemediateAws:
    ec2: Ec2
    cloudwatch: CloudWatch
    ecs: Ecs
    ssm: Ssm
    # The hub's bus: what the run does is told in its thread.
    events: Events | None = None

    @classmethod
    def at(cls, where: Target | None = None, event_bus: str = "default") -> RemediateAws:
        account, region = (where.account, where.region) if where else (None, None)
        return cls(
            ec2=Ec2(clients.client_at("ec2", account, region)),
            cloudwatch=CloudWatch(clients.client_at("cloudwatch", account, region)),
            ecs=Ecs(clients.client_at("ecs", account, region)),
            ssm=Ssm(clients.client_at("ssm", account, region)),
            events=Events(clients.client("events"), event_bus),
        )
