"""RDS and Aurora stop/start behaviours that moto 5.2.5 bends, emulated as Amazon RDS documents them.

- StopDBInstance / StartDBInstance (RDS User Guide, "Stopping an Amazon RDS DB instance temporarily"
  and "Starting an Amazon RDS DB instance that was previously stopped"; API reference, DBInstance
  status): "the status of the DB instance changes to stopping and then stopped"; a start goes
  `starting`, then `available`. Stopping needs an `available` instance and starting a `stopped` one,
  so a second stop or start while `stopping`/`starting` is refused with InvalidDBInstanceState (the
  StopDBInstance/StartDBInstance error "The DB instance isn't in a valid state"). moto changes at once.
- Limitations (same User Guide page): "You can't stop a DB instance that has a read replica, or that
  is a read replica", nor an RDS for SQL Server DB instance in a Multi-AZ configuration. moto refuses
  the replica and SQL Server Multi-AZ (kept as moto words them); a source of read replicas is refused
  here with InvalidDBInstanceState.
- Aurora members (API reference, StopDBInstance and StartDBInstance: "This command doesn't apply to
  RDS Custom, Aurora MySQL, and Aurora PostgreSQL. For Aurora clusters, use StopDBCluster instead."):
  refused with InvalidParameterCombination, the code RDS returns for this ("aurora-postgresql DB
  instances are not eligible for stopping and starting."), with a message naming the cluster call.
  moto stops the member on its own.
- StopDBCluster / StartDBCluster (Aurora User Guide, "Stopping and starting an Amazon Aurora DB
  cluster"): stopping a cluster stops all of its DB instances; the cluster and its members go
  `stopping` then `stopped`, and on start `starting` then `available`. A cluster that is not
  `available` (stop) or `stopped` (start) is refused with InvalidDBClusterStateFault, as moto does.
  moto leaves the members `available` and answers StartDBCluster with a status `started`.
- Seven days (both User Guides; API reference, DBInstance/DBCluster AutomaticRestartTime): "If you
  don't manually start your DB instance after it is stopped for seven consecutive days, RDS
  automatically starts it", and likewise a cluster with its instances. A stopped instance or cluster
  reports AutomaticRestartTime; `restart_after_seven_days` makes that restart happen now.
- Events (RDS User Guide, "Amazon RDS event categories and event messages", "Creating a rule that triggers
  on an Amazon RDS event"; Aurora User Guide, "Overview of events for Aurora"): when a stop or start
  completes, RDS sends the default bus an `RDS DB Instance Event` for the DB instance (RDS-EVENT-0087 "DB
  instance stopped", RDS-EVENT-0088 "DB instance started") and an `RDS DB Cluster Event` for the Aurora
  cluster (RDS-EVENT-0150 "DB cluster stopped", RDS-EVENT-0151 "DB cluster started"), whose DB instances
  send their own (the Aurora guide lists 0087 and 0088 among its DB instance events). The seven-day restart
  is announced first: RDS-EVENT-0154 (instance) or RDS-EVENT-0153 (cluster), "... is being started due to
  it exceeding the maximum allowed time being stopped". Source `aws.rds`, the resource ARN in `resources`,
  detail EventCategories ["notification"], SourceType DB_INSTANCE or CLUSTER, SourceArn, Date
  (2021-03-19T19:34:09.293Z), Message, SourceIdentifier and EventID, as in the guides' examples. Best
  effort ("they might be out of sequence or missing"). moto sends none.
Durations are AWS seconds multiplied by `time_scale`. Transitions are recorded with a deadline and
completed when RDS state is next read or acted on, or, in the embedded runtime, at the deadline
(`aws_events.wake_at`), so that the event goes out when AWS would send it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

from moto.rds.exceptions import DBClusterNotFoundError, InvalidDBClusterStateFault, RDSClientError
from moto.rds.models import DBCluster, DBInstance, DBInstanceClustered, RDSBackend, rds_backends

from opsflow_local.emulation import aws_events
from opsflow_local.emulation.aws_events import HeldEvents

STOPPED_LIMIT = timedelta(days=7)
INSTANCE_EVENT = "RDS DB Instance Event"
CLUSTER_EVENT = "RDS DB Cluster Event"
# What a target that reached a status tells, by kind: (EventID, Message).
_REACHED = {
    (False, "stopped"): ("RDS-EVENT-0087", "DB instance stopped"),
    (False, "available"): ("RDS-EVENT-0088", "DB instance started"),
    (True, "stopped"): ("RDS-EVENT-0150", "DB cluster stopped"),
    (True, "available"): ("RDS-EVENT-0151", "DB cluster started"),
}
_RESTARTING = {
    False: (
        "RDS-EVENT-0154",
        "DB instance is being started due to it exceeding the maximum allowed time being stopped",
    ),
    True: (
        "RDS-EVENT-0153",
        "DB cluster is being started due to it exceeding the maximum allowed time being stopped",
    ),
}


@dataclass
class _Transition:
    """Clusters and DB instances in `during` that reach `final` at `due` (time.monotonic)."""

    due: float
    targets: list[DBCluster | DBInstance]
    during: str
    final: str
    restart_at: datetime | None


@dataclass
class RdsEmulation:
    """Controls for tests and the demo. Durations are AWS seconds, scaled like Wait states."""

    time_scale: float = 1.0
    stop_seconds: float = 300.0
    start_seconds: float = 300.0
    _transitions: list[_Transition] = field(default_factory=list)
    _events: HeldEvents = field(default_factory=HeldEvents)

    def _locked(self) -> AbstractContextManager[None]:
        return self._events.held()

    def _tell(self, target: DBCluster | DBInstance, event: tuple[str, str]) -> None:
        event_id, message = event
        self._events.later(lambda: _send(target, event_id, message))

    def restart_after_seven_days(self, identifier: str) -> None:
        """Act as if the stopped DB instance or Aurora cluster `identifier` had stayed stopped for seven
        days: RDS starts it, and a cluster's instances with it. For a test; AWS does this on its own."""
        with self._locked():
            self._advance()
            for backend in _loaded_backends():
                if identifier in backend.clusters:
                    cluster = backend.clusters[identifier]
                    self._require_stopped(identifier, cluster.status)
                    targets: list[DBCluster | DBInstance] = [cluster, *cluster.members]
                    break
                if identifier in backend.databases:
                    database = backend.databases[identifier]
                    if isinstance(database, DBInstanceClustered):
                        raise ValueError(
                            f"{identifier} is a member of the Aurora cluster {database.db_cluster_identifier}: "
                            "RDS restarts the cluster, pass its identifier."
                        )
                    self._require_stopped(identifier, database.status)
                    targets = [database]
                    break
            else:
                raise LookupError(f"No DB instance or DB cluster {identifier} in any loaded RDS backend.")
            # The cluster (or the lone instance) announces it; its members then tell they started.
            self._tell(targets[0], _RESTARTING[isinstance(targets[0], DBCluster)])
            for target in targets:
                if target.status == "stopped":
                    target.status = "available"
                    _set_restart_time(target, None)
                    self._tell(target, _REACHED[isinstance(target, DBCluster), "available"])

    @staticmethod
    def _require_stopped(identifier: str, status: str) -> None:
        if status != "stopped":
            raise ValueError(
                f"{identifier} is {status}: RDS restarts only what stayed stopped for seven days."
            )

    def _begin(self, targets: list[DBCluster | DBInstance], during: str, final: str, seconds: float) -> None:
        for target in targets:
            target.status = during
            _set_restart_time(target, None)
        due = time.monotonic() + seconds * self.time_scale
        restart_at = None
        if final == "stopped":
            restart_at = datetime.now(UTC) + timedelta(seconds=seconds * self.time_scale) + STOPPED_LIMIT
        self._transitions.append(_Transition(due, targets, during, final, restart_at))
        aws_events.wake_at(due, self._advance)

    def _advance(self) -> None:
        if not self._transitions:
            return
        now = time.monotonic()
        with self._locked():
            pending: list[_Transition] = []
            for transition in self._transitions:
                if transition.due > now:
                    pending.append(transition)
                    continue
                for target in transition.targets:
                    # Anything else (deleting, rebooting) happened meanwhile and wins.
                    if target.status == transition.during:
                        target.status = transition.final
                        _set_restart_time(target, transition.restart_at)
                        self._tell(target, _REACHED[isinstance(target, DBCluster), transition.final])
            self._transitions = pending

    # Installed calls ------------------------------------------------------------------------------

    def _stop_db_instance(
        self,
        original: Callable[..., DBInstance],
        backend: RDSBackend,
        db_instance_identifier: str,
        db_snapshot_identifier: str | None = None,
    ) -> DBInstance:
        with self._locked():
            database = _eligible_instance(backend, db_instance_identifier, "stop")
            if database.replicas and not database.is_replica:
                raise RDSClientError(
                    "InvalidDBInstanceState",
                    f"Cannot stop DB instance {db_instance_identifier}: it has read replicas "
                    f"({', '.join(database.replicas)}). You can't stop a DB instance that has a read replica.",
                )
            # moto checks the rest (replica, SQL Server Multi-AZ, `available`) and takes the snapshot.
            original(backend, db_instance_identifier, db_snapshot_identifier)
            self._begin([database], "stopping", "stopped", self.stop_seconds)
            return database

    def _start_db_instance(
        self, original: Callable[..., DBInstance], backend: RDSBackend, db_instance_identifier: str
    ) -> DBInstance:
        with self._locked():
            database = _eligible_instance(backend, db_instance_identifier, "start")
            original(backend, db_instance_identifier)
            self._begin([database], "starting", "available", self.start_seconds)
            return database

    def _stop_db_cluster(self, backend: RDSBackend, cluster_identifier: str) -> DBCluster:
        with self._locked():
            self._advance()
            cluster = _cluster_in(backend, cluster_identifier, "available")
            members = [m for m in cluster.members if m.status == "available"]
            self._begin([cluster, *members], "stopping", "stopped", self.stop_seconds)
            return cluster

    def _start_db_cluster(self, backend: RDSBackend, cluster_identifier: str) -> DBCluster:
        with self._locked():
            self._advance()
            cluster = _cluster_in(
                backend, cluster_identifier, "stopped", "inaccessible-encryption-credentials-recoverable"
            )
            members = [m for m in cluster.members if m.status == "stopped"]
            self._begin([cluster, *members], "starting", "available", self.start_seconds)
            return cluster

    def install(self, stack: ExitStack) -> None:
        emulation = self
        original_describe_instances = RDSBackend.describe_db_instances
        original_describe_clusters = RDSBackend.describe_db_clusters
        original_stop_instance = RDSBackend.stop_db_instance
        original_start_instance = RDSBackend.start_db_instance

        def describe_db_instances(backend: RDSBackend, *args: Any, **kwargs: Any) -> list[DBInstance]:
            emulation._advance()
            return original_describe_instances(backend, *args, **kwargs)

        def describe_db_clusters(backend: RDSBackend, *args: Any, **kwargs: Any) -> list[DBCluster]:
            emulation._advance()
            return original_describe_clusters(backend, *args, **kwargs)

        def stop_db_instance(
            backend: RDSBackend, db_instance_identifier: str, db_snapshot_identifier: str | None = None
        ) -> DBInstance:
            return emulation._stop_db_instance(
                original_stop_instance, backend, db_instance_identifier, db_snapshot_identifier
            )

        def start_db_instance(backend: RDSBackend, db_instance_identifier: str) -> DBInstance:
            return emulation._start_db_instance(original_start_instance, backend, db_instance_identifier)

        def stop_db_cluster(backend: RDSBackend, cluster_identifier: str) -> DBCluster:
            return emulation._stop_db_cluster(backend, cluster_identifier)

        def start_db_cluster(backend: RDSBackend, cluster_identifier: str) -> DBCluster:
            return emulation._start_db_cluster(backend, cluster_identifier)

        for name, replacement in (
            ("describe_db_instances", describe_db_instances),
            ("describe_db_clusters", describe_db_clusters),
            ("stop_db_instance", stop_db_instance),
            ("start_db_instance", start_db_instance),
            ("stop_db_cluster", stop_db_cluster),
            ("start_db_cluster", start_db_cluster),
        ):
            stack.enter_context(mock.patch.object(RDSBackend, name, replacement))
        stack.callback(self._forget)

    def _forget(self) -> None:
        with self._events.mutex:
            self._transitions = []
        self._events.forget()


def _eligible_instance(backend: RDSBackend, identifier: str, action: str) -> DBInstance:
    backend._validate_db_identifier(identifier)
    database = backend.describe_db_instances(identifier)[0]
    if isinstance(database, DBInstanceClustered):
        raise RDSClientError(
            "InvalidParameterCombination",
            f"{database.engine} DB instances are not eligible for stopping and starting. "
            f"To {action} {identifier}, {action} its DB cluster {database.db_cluster_identifier} with "
            f"{action.capitalize()}DBCluster instead.",
        )
    return database


def _cluster_in(backend: RDSBackend, identifier: str, required: str, *also_accepted: str) -> DBCluster:
    cluster = backend.clusters.get(identifier)
    if cluster is None:
        raise DBClusterNotFoundError(identifier)
    status = cluster.status
    if status != required:
        expected = ",".join((required, *also_accepted))
        raise InvalidDBClusterStateFault(
            f"DbCluster {identifier} is in {status} state but expected it to be one of {expected}."
        )
    return cluster


def _set_restart_time(target: DBCluster | DBInstance, when: datetime | None) -> None:
    # moto's models have no such field; its serializer reads AutomaticRestartTime from this attribute.
    target.automatic_restart_time = when  # type: ignore[union-attr]


def _send(target: DBCluster | DBInstance, event_id: str, message: str) -> None:
    if isinstance(target, DBCluster):
        detail_type, source_type = CLUSTER_EVENT, "CLUSTER"
        arn, identifier = target.db_cluster_arn, target.db_cluster_identifier
    else:
        detail_type, source_type = INSTANCE_EVENT, "DB_INSTANCE"
        arn, identifier = target.db_instance_arn, target.db_instance_identifier
    now = datetime.now(UTC)
    aws_events.send(
        target.account_id,
        target.region,
        "aws.rds",
        detail_type,
        [arn],
        {
            "EventCategories": ["notification"],
            "SourceType": source_type,
            "SourceArn": arn,
            "Date": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
            "Message": message,
            "SourceIdentifier": identifier,
            "EventID": event_id,
        },
    )


def _loaded_backends() -> list[RDSBackend]:
    return [backend for account in rds_backends.values() for backend in account.values()]
