"""The AWS services an AMI bake calls."""

from __future__ import annotations

from dataclasses import dataclass

from opsflow.aws import clients
from opsflow.aws.autoscaling import AutoScaling
from opsflow.aws.ec2 import Ec2
from opsflow.aws.ssm import Ssm
from opsflow.aws.target import Target
from opsflow.workflows.asg_refresh.refresh import RefreshAws


@dataclass(frozen=True)
class BakeAws:
    ec2: Ec2
    autoscaling: AutoScaling
    refresh: RefreshAws
    ssm: Ssm

    @classmethod
    def at(cls, where: Target | None = None, event_bus: str = "default") -> BakeAws:
        refresh = RefreshAws.at(where, event_bus)
        account, region = (where.account, where.region) if where else (None, None)
        ssm = Ssm(clients.client_at("ssm", account, region))
        return cls(ec2=refresh.ec2, autoscaling=refresh.autoscaling, refresh=refresh, ssm=ssm)
