"""The AWS services an AMI bake calls."""

from __future__ import annotations

from dataclasses import dataclass

from opsflow.aws.autoscaling import AutoScaling
from opsflow.aws.ec2 import Ec2
from opsflow.aws.target import Target
from opsflow.workflows.asg_refresh.refresh import RefreshAws


@dataclass(frozen=True)
class BakeAws:
    ec2: Ec2
    autoscaling: AutoScaling
    refresh: RefreshAws

    @classmethod
    def at(cls, where: Target | None = None, event_bus: str = "default") -> BakeAws:
        refresh = RefreshAws.at(where, event_bus)
        return cls(ec2=refresh.ec2, autoscaling=refresh.autoscaling, refresh=refresh)
