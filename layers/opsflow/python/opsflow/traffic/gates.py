"""Gates: what must hold for traffic to stay where it is. The engine checks a step's gates and, when one
fails, puts all traffic back on blue before the failure leaves the step."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from opsflow.aws.elbv2 import display_name
from opsflow.errors import OpsflowError

if TYPE_CHECKING:
    from opsflow.aws.cloudwatch import CloudWatch
    from opsflow.aws.elbv2 import Elbv2
    from opsflow.aws.route53 import Route53


class GateFailed(OpsflowError):
    code = "GateFailed"


class AlarmFired(GateFailed):
    code = "AlarmFired"


class GreenUnhealthy(GateFailed):
    code = "GreenUnhealthy"


class SmokeTestFailed(GateFailed):
    code = "SmokeTestFailed"


class HealthCheckFailed(GateFailed):
    code = "HealthCheckFailed"


class Gate(Protocol):
    def check(self) -> str:
        """A few words on what passed; raises GateFailed when the gate is shut."""
        ...


@dataclass(frozen=True)
class AlarmsQuiet:
    """The alarms are not in ALARM now, and (with `since`) went to ALARM at no moment since then: an alarm
    that fired and recovered within a hold still stops the deploy, even if its state change event was
    missed."""

    cloudwatch: CloudWatch
    alarms: Sequence[str]
    since: datetime | None = None

    def check(self) -> str:
        states = self.cloudwatch.alarm_states(list(self.alarms))
        firing = [name for name in self.alarms if states.get(name) == "ALARM"]
        if firing:
            raise AlarmFired(f"alarm {', '.join(firing)} went to ALARM")
        if self.since is not None:
            flips = self.cloudwatch.went_to_alarm(list(self.alarms), self.since, datetime.now(UTC))
            if flips:
                first = flips[0]
                raise AlarmFired(
                    f"alarm {first.alarm} went to ALARM at {first.at.astimezone(UTC):%H:%M:%S} UTC and back "
                    "within the hold"
                )
        gone = [name for name in self.alarms if name not in states]
        if gone:
            raise AlarmFired(f"alarm {', '.join(gone)} was deleted: the deploy cannot be watched")
        return f"{len(self.alarms)} alarm(s) quiet"


@dataclass(frozen=True)
class GreenHealthy:
    """Green's target group has a healthy target to take its share."""

    elbv2: Elbv2
    target_group: str

    def check(self) -> str:
        health = self.elbv2.target_health(self.target_group)
        healthy = sum(1 for state in health.values() if state == "healthy")
        if healthy == 0:
            seen = ", ".join(sorted(set(health.values()))) or "no targets"
            raise GreenUnhealthy(f"green has no healthy target in {display_name(self.target_group)} ({seen})")
        return f"{healthy} healthy target(s)"


@dataclass(frozen=True)
class HealthChecksPass:
    """Each Route 53 health check is healthy as Route 53 judges it (more than 18 % of its checkers report
    success), so DNS answers with the records it guards."""

    route53: Route53
    health_checks: Sequence[str]

    def check(self) -> str:
        for health_check_id in self.health_checks:
            status = self.route53.health_check_status(health_check_id)
            if not status.healthy:
                said = f": {status.failure}" if status.failure else ""
                raise HealthCheckFailed(
                    f"Route 53 health check {health_check_id} is unhealthy ({status.healthy_checkers} of "
                    f"{status.checkers} checkers report success){said}"
                )
        return f"{len(self.health_checks)} health check(s) healthy"
