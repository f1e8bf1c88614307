"""The AWS services an AMI bake calls."""

from __future__ import annotations

from dataclasses import dataclass

from opsflow.aws.autoscaling import AutoScaling
from opsflow.aws.ec2 import Ec2
from opsflow.workflows.asg_refresh.refresh import RefreshAws


@dataclass(frozen=True)
class BakeAws:
    ec2: Ec2
    autoscaling: AutoScaling
    refresh: RefreshAws

    @classmethod
    def from_default_clients(cls, event_bus: str = "default") -> BakeAws:
        refresh = RefreshAws.from_default_clients(event_bus)
        return cls(ec2=refresh.ec2, autoscaling=refresh.autoscaling, refresh=refresh)
