"""An environment's resources as AWS has them now, and the adapters environment power reaches them through.

An environment is every resource carrying its environment tag *and* the opt-in tag: ECS services,
Auto Scaling groups, EC2 instances outside any group, RDS DB instances and DB clusters (Aurora is
stopped as a cluster, never member by member).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from opsflow.aws import clients
from opsflow.aws.autoscaling import AutoScaling, Group
from opsflow.aws.ec2 import Ec2, Instance
from opsflow.aws.ecs import Ecs, Service
from opsflow.aws.rds import Database, Rds
from opsflow.aws.target import Target
from opsflow.runs.config import OptIn
from opsflow.store.capacity import (
    CapacityStore,
    DynamoCapacityStore,
    GroupCapacity,
    ResourceRef,
    SavedCapacity,
    ServiceCapacity,
)

# Instances an Auto Scaling group launched carry this tag; the group, not Opsflow, owns their state.
GROUP_MEMBER_TAG = "aws:autoscaling:groupName"
INSTANCE_UP = frozenset({"pending", "running"})
# A database in any of these is not running, or cannot be stopped and need not be saved.
DATABASE_NOT_UP = frozenset({"stopped", "stopping", "creating", "deleting", "failed", "deleted"})
DATABASE_READY = "available"
KIND_NAMES = {
    "services": ("ECS service", "ECS services"),
    "groups": ("Auto Scaling group", "Auto Scaling groups"),
    "instances": ("instance", "instances"),
    "databases": ("database", "databases"),
}


@dataclass(frozen=True)
class PowerAws:
    ec2: Ec2
    autoscaling: AutoScaling
    ecs: Ecs
    rds: Rds
    capacity: CapacityStore

    @classmethod
    def at(cls, capacity_table: str, where: Target | None = None) -> PowerAws:
        """In the account and region of `where` (None: the hub's); saved capacity stays in the hub's table."""
        account, region = (where.account, where.region) if where else (None, None)
        return cls(
            ec2=Ec2(clients.client_at("ec2", account, region)),
            autoscaling=AutoScaling(clients.client_at("autoscaling", account, region)),
            ecs=Ecs(clients.client_at("ecs", account, region)),
            rds=Rds(clients.client_at("rds", account, region)),
            capacity=DynamoCapacityStore(clients.client("dynamodb"), capacity_table),
        )


@dataclass(frozen=True)
class Inventory:
    """An environment's resources as they are now."""

    services: list[Service]
    groups: list[Group]
    instances: list[Instance]
    databases: list[Database]

    def to_save(self, environment: str, run_id: str) -> SavedCapacity:
        """What a stop changes, and so what a start must put back: only what runs now."""
        return SavedCapacity(
            environment=environment,
            run_id=run_id,
            services=tuple(
                ServiceCapacity(s.cluster_arn, s.name, s.desired_count)
                for s in self.services
                if s.desired_count
            ),
            groups=tuple(
                GroupCapacity(g.name, g.min_size, g.desired_capacity, g.max_size)
                for g in self.groups
                if g.min_size or g.desired_capacity or g.max_size
            ),
            instances=tuple(i.instance_id for i in self.instances if i.state in INSTANCE_UP),
            databases=tuple(d.key for d in self.databases if d.status not in DATABASE_NOT_UP),
        )

    def is_empty(self) -> bool:
        return not (self.services or self.groups or self.instances or self.databases)

    def refs(self) -> set[ResourceRef]:
        return {
            *(ResourceRef("service", s.name) for s in self.services),
            *(ResourceRef("group", g.name) for g in self.groups),
            *(ResourceRef("instance", i.instance_id) for i in self.instances),
            *(ResourceRef("database", d.key) for d in self.databases),
        }


def environment_tags(environment: str, opt_in: OptIn, environment_key: str) -> dict[str, str]:
    return {environment_key: environment, opt_in.key: opt_in.value}


def find_environment(environment: str, aws: PowerAws, opt_in: OptIn, environment_key: str) -> Inventory:
    tags = environment_tags(environment, opt_in, environment_key)
    return Inventory(
        services=aws.ecs.find_services(tags),
        groups=aws.autoscaling.find_groups(tags),
        instances=[i for i in aws.ec2.find_instances(tags) if GROUP_MEMBER_TAG not in i.tags],
        databases=aws.rds.find_databases(tags),
    )


def databases_up_again(saved: SavedCapacity, aws: PowerAws) -> list[str]:
    """Saved databases that are running although the environment is down: AWS starts a database that
    has been stopped for seven days, and a stopped environment would otherwise pay for it unnoticed."""
    # A database the shutdown could not stop was never down: stopping it "again" would fail every day.
    candidates = [key for key in saved.databases if key not in saved.not_stopped]
    statuses = aws.rds.statuses(candidates)
    return [key for key in candidates if statuses.get(key) == DATABASE_READY]


def describe_counts(counts: Mapping[str, int]) -> str:
    parts = [f"{n:,} {KIND_NAMES[k][0] if n == 1 else KIND_NAMES[k][1]}" for k, n in counts.items() if n]
    return ", ".join(parts) or "nothing running"
