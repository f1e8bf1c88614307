"""The AWS services an AMI bake calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from opsflow.aws import clients
from opsflow.aws.autoscaling import AutoScaling
from opsflow.aws.ec2 import Ec2
from opsflow.aws.sessions import Home
from opsflow.aws.ssm import Ssm
from opsflow.aws.target import Target
from opsflow.workflows.asg_refresh.refresh import RefreshAws


def ec2_at(account: str | None, region: str) -> Ec2:
    return Ec2(clients.client_at("ec2", account, region))


@dataclass(frozen=True)
class BakeAws:
    ec2: Ec2
    autoscaling: AutoScaling
    refresh: RefreshAws
    ssm: Ssm
    # Where the group is (account None: the hub's), and EC2 in any account and region, for a distribution.
    account: str | None = None
    region: str = ""
    ec2_in: Callable[[str | None, str], Ec2] = field(default=ec2_at)

    @classmethod
    def at(cls, where: Target | None = None, event_bus: str = "default") -> BakeAws:
        refresh = RefreshAws.at(where, event_bus)
        account, region = (where.account, where.region) if where else (None, None)
        ssm = Ssm(clients.client_at("ssm", account, region))
        return cls(
            ec2=refresh.ec2,
            autoscaling=refresh.autoscaling,
            refresh=refresh,
            ssm=ssm,
            account=account,
            region=region or Home.from_env().region,
        )
