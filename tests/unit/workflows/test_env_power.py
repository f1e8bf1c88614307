"""Environment power's steps on in-memory fakes of EC2, Auto Scaling, ECS and RDS: what each step changes,
what it reports, and what the end of a run writes to the save."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from opsflow.aws.autoscaling import Group
from opsflow.aws.ec2 import Instance
from opsflow.aws.ecs import Service
from opsflow.aws.rds import Database
from opsflow.errors import AwsCallFailed, NotFound
from opsflow.runs.config import OptIn
from opsflow.store.capacity import (
    RESTORED,
    GroupCapacity,
    InMemoryCapacityStore,
    ResourceRef,
    SavedCapacity,
    ServiceCapacity,
)
from opsflow.workflows.env_power import results, start, stop
from opsflow.workflows.env_power.inventory import PowerAws, find_environment
from opsflow.workflows.env_power.state import EnvPowerState

OPT_IN = OptIn("opsflow:managed", "true")
ENV_KEY = "opsflow:environment"
TAGS = {ENV_KEY: "qa", "opsflow:managed": "true"}
CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/qa"


@dataclass
class FakeAutoScaling:
    groups: dict[str, tuple[int, int, int]]
    refusing: set[str] = field(default_factory=set)

    def find_groups(self, tags: dict[str, str]) -> list[Group]:
        return [
            Group(name, TAGS, lo, hi, desired, None, None, False, [])
            for name, (lo, desired, hi) in self.groups.items()
        ]

    def set_capacity(self, name: str, *, min_size: int, desired: int, max_size: int) -> None:
        if name in self.refusing:
            raise AwsCallFailed("UpdateAutoScalingGroup", "ValidationError", f"{name} refuses")
        self.groups[name] = (min_size, desired, max_size)


@dataclass
class FakeEcs:
    services: dict[str, int]

    def find_services(self, tags: dict[str, str]) -> list[Service]:
        return [
            Service(CLUSTER, f"{CLUSTER}/{name}", name, "ACTIVE", count, count, TAGS)
            for name, count in self.services.items()
        ]

    def set_desired_count(self, cluster_arn: str, service: str, count: int) -> None:
        if service not in self.services:
            raise NotFound(f"service {service} not found")
        self.services[service] = count


@dataclass
class FakeEc2:
    instances: dict[str, str]

    def find_instances(self, tags: dict[str, str]) -> list[Instance]:
        return [Instance(i, state, TAGS, None, []) for i, state in self.instances.items()]

    def stop_instances(self, ids: list[str]) -> None:
        self.instances.update(dict.fromkeys(ids, "stopped"))

    def start_instances(self, ids: list[str]) -> None:
        self.instances.update(dict.fromkeys(ids, "running"))


@dataclass
class FakeRds:
    statuses_by_key: dict[str, str]
    refusing: set[str] = field(default_factory=set)

    def find_databases(self, tags: dict[str, str]) -> list[Database]:
        return [
            Database(key.split(":")[0], key.split(":")[1], status, TAGS)
            for key, status in self.statuses_by_key.items()
        ]

    def statuses(self, keys: list[str]) -> dict[str, str]:
        return {k: self.statuses_by_key[k] for k in keys if k in self.statuses_by_key}

    def stop(self, key: str) -> None:
        if key in self.refusing:
            raise AwsCallFailed("StopDBInstance", "InvalidDBInstanceState", "refused")
        self.statuses_by_key[key] = "stopped"

    def start(self, key: str) -> None:
        self.statuses_by_key[key] = "available"


def an_environment() -> PowerAws:
    return PowerAws(
        ec2=FakeEc2({"i-1": "running", "i-2": "running", "i-3": "stopped"}),  # type: ignore[arg-type]
        autoscaling=FakeAutoScaling({"qa-web": (2, 3, 6), "qa-jobs": (1, 1, 2)}),  # type: ignore[arg-type]
        ecs=FakeEcs({"qa-api": 2}),  # type: ignore[arg-type]
        rds=FakeRds({"instance:qa-orders": "available"}),  # type: ignore[arg-type]
        capacity=InMemoryCapacityStore(),
    )


def a_state(action: str, **results_so_far: Any) -> EnvPowerState:
    return EnvPowerState.model_validate(
        {
            "run_id": f"{action}-run",
            "workflow": "env_power",
            "target": "env:qa",
            "request": {"workflow": "env_power", "environment": "qa", "action": action},
            **results_so_far,
        }
    )


def dumped(**results_so_far: Any) -> dict[str, Any]:
    return {key: value.model_dump(mode="json") for key, value in results_so_far.items()}


def save(aws: PowerAws) -> dict[str, Any]:
    result = stop.save_capacity(a_state("stop"), aws, OPT_IN, ENV_KEY, run_status=lambda run_id: None)
    return dumped(save=result)


def test_a_stop_saves_only_what_runs_and_one_refusing_group_does_not_stop_the_rest() -> None:
    aws = an_environment()
    aws.autoscaling.refusing.add("qa-jobs")  # type: ignore[attr-defined]
    so_far = save(aws)

    groups = stop.stop_groups(a_state("stop", **so_far), aws)
    instances = stop.stop_instances(a_state("stop", **so_far), aws)

    saved = aws.capacity.unrestored("qa")
    assert saved is not None
    assert saved.instances == ("i-1", "i-2")
    assert aws.autoscaling.groups["qa-web"] == (0, 0, 0)  # type: ignore[attr-defined]
    assert [f.ref for f in groups.failed] == [ResourceRef("group", "qa-jobs")]
    assert groups.changed == 1
    assert groups.failed_count == 1
    assert instances.changed == 2
    assert groups.model_dump(mode="json")["failed"] == [
        {"ref": {"kind": "group", "id": "qa-jobs"}, "error": groups.failed[0].error}
    ]


def test_a_stop_notes_the_databases_it_could_not_stop_and_ends_failed_naming_them() -> None:
    aws = an_environment()
    aws.rds.refusing.add("instance:qa-orders")  # type: ignore[attr-defined]
    so_far = save(aws)
    so_far.update(dumped(databases=stop.stop_databases(a_state("stop", **so_far), aws)))

    settled = results.settle_save(a_state("stop", **so_far), aws)
    error = results.run_error(a_state("stop", **so_far, **dumped(outcome=settled)))

    saved = aws.capacity.unrestored("qa")
    assert saved is not None
    assert saved.not_stopped == ("instance:qa-orders",)
    assert settled.failed_count == 1
    assert error["step"] == "stop_databases"
    assert error["failed"] == [
        {
            "resource": "database instance:qa-orders",
            "error": "StopDBInstance failed: InvalidDBInstanceState: refused",
        }
    ]


def test_what_a_start_up_could_not_restore_is_saved_as_before_by_the_next_stop() -> None:
    aws = an_environment()
    previous = SavedCapacity(
        environment="qa",
        run_id="old-stop",
        services=(ServiceCapacity(CLUSTER, "qa-api", 4),),
        groups=(GroupCapacity("qa-web", 3, 3, 5), GroupCapacity("qa-gone", 1, 1, 1)),
        instances=("i-3",),
        status=RESTORED,
        not_restored=(
            ResourceRef("group", "qa-web"),
            ResourceRef("group", "qa-gone"),
            ResourceRef("instance", "i-3"),
        ),
    )
    inventory = find_environment("qa", aws, OPT_IN, ENV_KEY)

    carried, refs = stop.carry_forward(inventory.to_save("qa", "new-stop"), previous, inventory)

    assert carried.groups == (GroupCapacity("qa-jobs", 1, 1, 2), GroupCapacity("qa-web", 3, 3, 5))
    assert carried.services == (ServiceCapacity(CLUSTER, "qa-api", 2),)  # restored: saved as it is now
    assert carried.instances == ("i-1", "i-2", "i-3")
    assert refs == [
        ResourceRef("group", "qa-web"),
        ResourceRef("instance", "i-3"),
    ]  # qa-gone no longer exists


def loaded(aws: PowerAws, saved: SavedCapacity) -> dict[str, Any]:
    aws.capacity.save(saved)
    return dumped(load=start.load_save(a_state("start"), aws))


def test_a_start_up_restores_the_save_reports_what_is_gone_and_keeps_what_failed_for_the_next_stop() -> None:
    aws = an_environment()
    aws.autoscaling.groups.update({"qa-web": (0, 0, 0), "qa-jobs": (0, 0, 0)})  # type: ignore[attr-defined]
    aws.autoscaling.refusing.add("qa-jobs")  # type: ignore[attr-defined]
    del aws.ecs.services["qa-api"]  # type: ignore[attr-defined]
    so_far = loaded(
        aws,
        SavedCapacity(
            environment="qa",
            run_id="stop-run",
            services=(ServiceCapacity(CLUSTER, "qa-api", 2),),
            groups=(GroupCapacity("qa-web", 2, 3, 6), GroupCapacity("qa-jobs", 1, 1, 2)),
        ),
    )
    groups = start.restore_groups(a_state("start", **so_far), aws, TAGS)
    services = start.restore_services(a_state("start", **so_far), aws)
    so_far.update(dumped(groups=groups, services=services))

    settled = results.settle_save(a_state("start", **so_far), aws)
    result = results.run_result(a_state("start", **so_far, **dumped(outcome=settled)))

    assert aws.autoscaling.groups["qa-web"] == (2, 3, 6)  # type: ignore[attr-defined]
    assert services.gone == [ResourceRef("service", "qa-api")]
    assert services.failed_count == 0
    latest = aws.capacity.latest("qa")
    assert latest is not None
    assert latest.status == RESTORED
    assert latest.not_restored == (ResourceRef("group", "qa-jobs"),)
    assert result["gone"] == ["ecs service qa-api"]
    assert result["not_restored"] == ["auto scaling group qa-jobs"]
    assert result["outcome"]["groups"]["failed"][0]["resource"] == "auto scaling group qa-jobs"


def test_a_step_that_failed_whole_counts_every_resource_of_its_kind_as_not_restored() -> None:
    aws = an_environment()
    so_far = loaded(aws, SavedCapacity(environment="qa", run_id="stop-run", instances=("i-1", "i-2")))
    so_far["instances"] = {"Error": "Lambda.Unknown", "Cause": "timed out"}

    settled = results.settle_save(a_state("start", **so_far), aws)

    latest = aws.capacity.latest("qa")
    assert latest is not None
    assert latest.not_restored == (ResourceRef("instance", "i-1"), ResourceRef("instance", "i-2"))
    assert settled.failed_count == 1


def test_databases_are_waited_for_until_available_and_reported_once_the_wait_runs_out() -> None:
    aws = an_environment()
    aws.rds.statuses_by_key.update({"instance:qa-orders": "stopping", "cluster:qa-reports": "stopped"})  # type: ignore[attr-defined]
    so_far = loaded(
        aws,
        SavedCapacity(
            environment="qa", run_id="stop-run", databases=("instance:qa-orders", "cluster:qa-reports")
        ),
    )
    now = [1000.0]

    first = start.start_databases(a_state("start", **so_far), aws, clock=lambda: now[0])
    now[0] += 4000
    last = start.databases_ready(
        a_state("start", **so_far, **dumped(databases=first)), aws, clock=lambda: now[0]
    )

    # Started while stopped, the cluster is waited for; the instance still stopping is started once stopped.
    assert first.started == 1
    assert first.waiting_for == ["instance:qa-orders", "cluster:qa-reports"]
    assert not first.ready
    assert last.ready
    assert last.failed_count == 1
    assert last.failed[0].ref == ResourceRef("database", "instance:qa-orders")
    assert "still stopping" in last.failed[0].error


@pytest.mark.parametrize("action", ["stop", "start"])
def test_a_step_failure_before_any_resource_names_the_step_and_keeps_the_save(action: str) -> None:
    state = EnvPowerState.model_validate(
        {
            **a_state(action).model_dump(mode="json"),
            "error": {"Error": "LockLost", "Cause": "lost"},
            "failed_step": "save" if action == "stop" else "load_save",
        }
    )

    error = results.run_error(state)

    assert error["step"] == ("save" if action == "stop" else "load_save")
    assert "kept" in error["message"]
