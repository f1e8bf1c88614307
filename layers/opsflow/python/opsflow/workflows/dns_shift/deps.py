"""What the steps act through: the AWS adapters and the run's record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from opsflow.aws import clients
from opsflow.aws.cloudwatch import CloudWatch
from opsflow.aws.events import Events
from opsflow.aws.route53 import Route53
from opsflow.aws.target import Target
from opsflow.runs.config import OptIn
from opsflow.traffic.route53 import WeightedRecordShifter
from opsflow.traffic.smoke import HttpGet, http_status
from opsflow.workflows.dns_shift.state import CutoverSpec


@dataclass(frozen=True)
class CutoverAws:
    route53: Route53
    cloudwatch: CloudWatch
    events: Events
    http_get: HttpGet = http_status

    @classmethod
    def at(cls, where: Target | None = None, event_bus: str = "default") -> CutoverAws:
        """In the account of `where` (None: the hub's); alarms in its region; Opsflow's own events go to the
        hub's bus."""
        account, region = (where.account, where.region) if where else (None, None)
        return cls(
            route53=Route53(clients.client_at("route53", account, region)),
            cloudwatch=CloudWatch(clients.client_at("cloudwatch", account, region)),
            events=Events(clients.client("events"), event_bus),
        )

    def shifter(self, spec: CutoverSpec) -> WeightedRecordShifter:
        return WeightedRecordShifter(
            self.route53, spec.hosted_zone_id, spec.name, spec.type, spec.green, dict(spec.start)
        )


@dataclass(frozen=True)
class Deps:
    aws: CutoverAws
    opt_in: OptIn
    # Reads the run's record: whether the run still runs.
    still_running: Callable[[str], bool]
