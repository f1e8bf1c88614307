"""What the steps act through: the AWS adapters and the run's record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from opsflow.aws import clients
from opsflow.aws.cloudwatch import CloudWatch
from opsflow.aws.ecs import Ecs
from opsflow.aws.elbv2 import Elbv2
from opsflow.aws.events import Events
from opsflow.aws.lambda_functions import LambdaFunctions
from opsflow.aws.target import Target
from opsflow.runs.config import OptIn
from opsflow.traffic.alb import ListenerShifter
from opsflow.traffic.smoke import HttpGet, http_status
from opsflow.workflows.ecs_blue_green.state import DeploySpec

# Reads the run's record: whether the run still runs.
StillRunning = Callable[[str], bool]
# Marks the run, only while it runs (RunStore.claim); False when it has ended.
Claim = Callable[[str, str], bool]


@dataclass(frozen=True)
class DeployAws:
    ecs: Ecs
    elbv2: Elbv2
    cloudwatch: CloudWatch
    events: Events
    functions: LambdaFunctions
    http_get: HttpGet = http_status

    @classmethod
    def at(cls, where: Target | None = None, event_bus: str = "default") -> DeployAws:
        """In the account and region of `where` (None: the hub's); Opsflow's own events go to the hub's bus."""
        account, region = (where.account, where.region) if where else (None, None)
        return cls(
            ecs=Ecs(clients.client_at("ecs", account, region)),
            elbv2=Elbv2(clients.client_at("elbv2", account, region)),
            cloudwatch=CloudWatch(clients.client_at("cloudwatch", account, region)),
            events=Events(clients.client("events"), event_bus),
            functions=LambdaFunctions(clients.client_at("lambda", account, region)),
        )

    def production_traffic(self, spec: DeploySpec) -> ListenerShifter:
        return ListenerShifter(self.elbv2, spec.listener_arn, spec.blue.target_group, spec.green.target_group)


def _always(run_id: str, mark: str) -> bool:
    return True


@dataclass(frozen=True)
class Deps:
    """A step that changed something re-checks `still_running` and puts back what it did when the run
    ended meanwhile; `claim` marks the run before what an abort could not put back (retiring blue)."""

    aws: DeployAws
    opt_in: OptIn
    still_running: StillRunning
    claim: Claim = _always
