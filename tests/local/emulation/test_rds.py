"""The RDS emulation against the Amazon RDS API Reference (StopDBInstance, StartDBInstance, StopDBCluster,
StartDBCluster, DBInstance and DBCluster AutomaticRestartTime), the RDS User Guide ("Stopping an Amazon RDS
DB instance temporarily", "Starting an Amazon RDS DB instance that was previously stopped") and the Aurora
User Guide ("Stopping and starting an Amazon Aurora DB cluster")."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.rds.models import RDSBackend

from opsflow_local.emulation.rds import RdsEmulation

pytestmark = pytest.mark.usefixtures("rds_emulation")


def rds() -> Any:
    return boto3.client("rds", region_name="us-east-1")


def postgres(identifier: str = "orders") -> str:
    rds().create_db_instance(
        DBInstanceIdentifier=identifier,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="admin_user",
        MasterUserPassword="a-long-password",
        AllocatedStorage=20,
    )
    return identifier


def aurora(identifier: str = "ledger", members: int = 2) -> list[str]:
    """An Aurora PostgreSQL cluster with `members` DB instances; returns the instance identifiers."""
    rds().create_db_cluster(
        DBClusterIdentifier=identifier,
        Engine="aurora-postgresql",
        MasterUsername="admin_user",
        MasterUserPassword="a-long-password",
    )
    names = [f"{identifier}-{n}" for n in range(1, members + 1)]
    for name in names:
        rds().create_db_instance(
            DBInstanceIdentifier=name,
            DBClusterIdentifier=identifier,
            Engine="aurora-postgresql",
            DBInstanceClass="db.r6g.large",
        )
    assert cluster(identifier)["Status"] == "available"
    return names


def instance(identifier: str) -> dict[str, Any]:
    return dict(rds().describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0])


def cluster(identifier: str) -> dict[str, Any]:
    return dict(rds().describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0])


def statuses(cluster_id: str, members: list[str]) -> list[str]:
    return [cluster(cluster_id)["Status"], *(instance(m)["DBInstanceStatus"] for m in members)]


def wait_until(read: Callable[[], Any], expected: Any, timeout: float = 30) -> None:
    # Generous: transitions last 2 s, but a loaded 2-core machine can stall a worker for seconds.
    deadline = time.monotonic() + timeout
    while (seen := read()) != expected:
        assert time.monotonic() < deadline, seen
        time.sleep(0.005)


def error_code(caught: pytest.ExceptionInfo[ClientError]) -> str:
    return str(caught.value.response["Error"]["Code"])


def stopped(emulation: RdsEmulation, identifier: str) -> str:
    """Stop `identifier` quickly: for tests about what follows."""
    emulation.stop_seconds = 20
    rds().stop_db_instance(DBInstanceIdentifier=identifier)
    wait_until(lambda: instance(identifier)["DBInstanceStatus"], "stopped")
    return identifier


def stopped_cluster(emulation: RdsEmulation, identifier: str, members: list[str]) -> None:
    emulation.stop_seconds = 20
    rds().stop_db_cluster(DBClusterIdentifier=identifier)
    wait_until(lambda: statuses(identifier, members), ["stopped"] * (len(members) + 1))


def test_stop_db_instance_goes_stopping_then_stopped() -> None:
    """User Guide: "The status of the DB instance changes to stopping and then stopped". A stopped DB
    instance reports when RDS will restart it: seven days later (DBInstance.AutomaticRestartTime)."""
    identifier = postgres()
    answer = rds().stop_db_instance(DBInstanceIdentifier=identifier)["DBInstance"]
    assert answer["DBInstanceStatus"] == "stopping"
    assert instance(identifier)["DBInstanceStatus"] == "stopping"
    assert "AutomaticRestartTime" not in instance(identifier)
    wait_until(lambda: instance(identifier)["DBInstanceStatus"], "stopped")
    restart = instance(identifier)["AutomaticRestartTime"]
    assert timedelta(days=6, hours=23) < restart - datetime.now(UTC) <= timedelta(days=7)


def test_start_db_instance_goes_starting_then_available(rds_emulation: RdsEmulation) -> None:
    """StartDBInstance on a stopped DB instance: `starting`, then `available`; no restart is due any more."""
    identifier = stopped(rds_emulation, postgres())
    answer = rds().start_db_instance(DBInstanceIdentifier=identifier)["DBInstance"]
    assert answer["DBInstanceStatus"] == "starting"
    assert instance(identifier)["DBInstanceStatus"] == "starting"
    wait_until(lambda: instance(identifier)["DBInstanceStatus"], "available")
    assert "AutomaticRestartTime" not in instance(identifier)


def test_stop_or_start_while_stopping_is_refused() -> None:
    """StopDBInstance needs an `available` DB instance and StartDBInstance a `stopped` one: while it is
    `stopping`, InvalidDBInstanceState ("The DB instance isn't in a valid state")."""
    identifier = postgres()
    rds().stop_db_instance(DBInstanceIdentifier=identifier)
    for call in (rds().stop_db_instance, rds().start_db_instance):
        with pytest.raises(ClientError) as caught:
            call(DBInstanceIdentifier=identifier)
        assert error_code(caught) == "InvalidDBInstanceState"
    assert instance(identifier)["DBInstanceStatus"] == "stopping"


def test_stop_or_start_while_starting_is_refused(rds_emulation: RdsEmulation) -> None:
    """While a DB instance is `starting`, neither StartDBInstance nor StopDBInstance is accepted."""
    identifier = stopped(rds_emulation, postgres())
    rds().start_db_instance(DBInstanceIdentifier=identifier)
    for call in (rds().start_db_instance, rds().stop_db_instance):
        with pytest.raises(ClientError) as caught:
            call(DBInstanceIdentifier=identifier)
        assert error_code(caught) == "InvalidDBInstanceState"
    assert instance(identifier)["DBInstanceStatus"] == "starting"


def test_stop_db_instance_takes_the_requested_snapshot_first() -> None:
    """StopDBInstance DBSnapshotIdentifier: "the DB Snapshot created immediately before the DB instance
    is stopped"."""
    identifier = postgres()
    rds().stop_db_instance(DBInstanceIdentifier=identifier, DBSnapshotIdentifier="before-stop")
    snapshots = rds().describe_db_snapshots(DBSnapshotIdentifier="before-stop")["DBSnapshots"]
    assert [s["DBInstanceIdentifier"] for s in snapshots] == [identifier]


def test_an_aurora_db_instance_cannot_be_stopped_or_started_on_its_own() -> None:
    """StopDBInstance and StartDBInstance: "This command doesn't apply to ... Aurora MySQL, and Aurora
    PostgreSQL. For Aurora clusters, use StopDBCluster instead." RDS answers InvalidParameterCombination."""
    members = aurora()
    for call in (rds().stop_db_instance, rds().start_db_instance):
        with pytest.raises(ClientError) as caught:
            call(DBInstanceIdentifier=members[0])
        assert error_code(caught) == "InvalidParameterCombination"
        assert "DBCluster" in caught.value.response["Error"]["Message"]
    assert statuses("ledger", members) == ["available"] * 3


def test_stop_db_cluster_stops_every_db_instance_of_the_cluster() -> None:
    """Aurora User Guide: stopping a cluster stops all of its DB instances; cluster and instances go
    `stopping`, then `stopped`, and the cluster reports its AutomaticRestartTime."""
    members = aurora()
    assert rds().stop_db_cluster(DBClusterIdentifier="ledger")["DBCluster"]["Status"] == "stopping"
    assert statuses("ledger", members) == ["stopping"] * 3
    wait_until(lambda: statuses("ledger", members), ["stopped"] * 3)
    restart = cluster("ledger")["AutomaticRestartTime"]
    assert timedelta(days=6, hours=23) < restart - datetime.now(UTC) <= timedelta(days=7)


def test_start_db_cluster_starts_every_db_instance_of_the_cluster(rds_emulation: RdsEmulation) -> None:
    """StartDBCluster: the cluster and its DB instances go `starting`, then `available`."""
    members = aurora()
    stopped_cluster(rds_emulation, "ledger", members)
    assert rds().start_db_cluster(DBClusterIdentifier="ledger")["DBCluster"]["Status"] == "starting"
    assert statuses("ledger", members) == ["starting"] * 3
    wait_until(lambda: statuses("ledger", members), ["available"] * 3)
    assert "AutomaticRestartTime" not in cluster("ledger")


def test_a_cluster_is_stopped_only_when_available_and_started_only_when_stopped() -> None:
    """StopDBCluster / StartDBCluster: InvalidDBClusterStateFault, "The requested operation can't be
    performed while the cluster is in this state"."""
    aurora(members=1)
    with pytest.raises(ClientError) as caught:
        rds().start_db_cluster(DBClusterIdentifier="ledger")
    assert error_code(caught) == "InvalidDBClusterStateFault"
    rds().stop_db_cluster(DBClusterIdentifier="ledger")
    for call in (rds().stop_db_cluster, rds().start_db_cluster):
        with pytest.raises(ClientError) as caught:
            call(DBClusterIdentifier="ledger")
        assert error_code(caught) == "InvalidDBClusterStateFault"


def test_a_read_replica_and_its_source_cannot_be_stopped() -> None:
    """User Guide limitations: "You can't stop a DB instance that has a read replica, or that is a read
    replica." Both stay available."""
    source = postgres()
    rds().create_db_instance_read_replica(
        DBInstanceIdentifier="orders-replica", SourceDBInstanceIdentifier=source
    )
    with pytest.raises(ClientError) as caught:
        rds().stop_db_instance(DBInstanceIdentifier=source)
    assert error_code(caught) == "InvalidDBInstanceState"
    with pytest.raises(ClientError) as caught:
        rds().stop_db_instance(DBInstanceIdentifier="orders-replica")
    assert error_code(caught) == "InvalidDBClusterStateFault"  # as moto answers it
    assert {instance(i)["DBInstanceStatus"] for i in (source, "orders-replica")} == {"available"}


def test_a_sql_server_multi_az_db_instance_cannot_be_stopped() -> None:
    """User Guide limitations: "You can't stop an RDS for SQL Server DB instance in a Multi-AZ
    configuration"."""
    rds().create_db_instance(
        DBInstanceIdentifier="erp",
        Engine="sqlserver-se",
        LicenseModel="license-included",
        DBInstanceClass="db.m5.large",
        MasterUsername="admin_user",
        MasterUserPassword="a-long-password",
        AllocatedStorage=20,
        MultiAZ=True,
    )
    with pytest.raises(ClientError):
        rds().stop_db_instance(DBInstanceIdentifier="erp")
    assert instance("erp")["DBInstanceStatus"] == "available"


def test_a_db_instance_stopped_for_seven_days_is_started_again(rds_emulation: RdsEmulation) -> None:
    """User Guide: "If you don't manually start your DB instance after it is stopped for seven consecutive
    days, RDS automatically starts it"."""
    identifier = stopped(rds_emulation, postgres())
    rds_emulation.restart_after_seven_days(identifier)
    found = instance(identifier)
    assert found["DBInstanceStatus"] == "available"
    assert "AutomaticRestartTime" not in found


def test_a_cluster_stopped_for_seven_days_is_started_again_with_its_instances(
    rds_emulation: RdsEmulation,
) -> None:
    """Aurora User Guide: "If you don't manually start your DB cluster after seven days, your DB cluster
    is automatically started"; its DB instances with it."""
    members = aurora()
    stopped_cluster(rds_emulation, "ledger", members)
    rds_emulation.restart_after_seven_days("ledger")
    assert statuses("ledger", members) == ["available"] * 3


def test_only_what_stayed_stopped_is_restarted(rds_emulation: RdsEmulation) -> None:
    """The seven-day restart applies to a stopped DB instance or cluster, and to an Aurora DB instance
    only through its cluster."""
    identifier = postgres()
    members = aurora()
    with pytest.raises(ValueError, match="available"):
        rds_emulation.restart_after_seven_days(identifier)
    stopped_cluster(rds_emulation, "ledger", members)
    with pytest.raises(ValueError, match="ledger"):
        rds_emulation.restart_after_seven_days(members[0])
    with pytest.raises(LookupError):
        rds_emulation.restart_after_seven_days("nowhere")
    assert statuses("ledger", members) == ["stopped"] * 3


def test_closing_the_stack_restores_moto_and_leaves_no_thread() -> None:
    """The emulation is lazy: nothing runs in the background, and closing its ExitStack undoes it."""
    # The fixture's emulation is installed: compare against a second, nested install and removal.
    installed = RDSBackend.stop_db_instance
    threads = threading.active_count()
    with ExitStack() as stack:
        RdsEmulation(time_scale=0.001).install(stack)
        assert RDSBackend.stop_db_instance is not installed
        identifier = postgres()
        rds().stop_db_instance(DBInstanceIdentifier=identifier)
        assert threading.active_count() == threads
    assert RDSBackend.stop_db_instance is installed
