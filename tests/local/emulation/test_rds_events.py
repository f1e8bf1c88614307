"""The RDS emulation's events against the RDS User Guide ("Amazon RDS event categories and event messages";
"Creating a rule that triggers on an Amazon RDS event", whose tutorial shows the RDS-EVENT-0087 event) and
the Aurora User Guide ("Amazon RDS event categories and event messages for Aurora", "Overview of events for
Aurora"): source aws.rds, detail-type `RDS DB Instance Event` or `RDS DB Cluster Event`, detail
EventCategories, SourceType, SourceArn, Date, Message, SourceIdentifier and EventID."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import boto3
import pytest
from moto import mock_aws

from opsflow_local.emulation.aws_events import AwsEvents
from opsflow_local.emulation.rds import RdsEmulation

from .bus import Rule, rule

RDS_EVENTS = {"source": ["aws.rds"]}


@pytest.fixture
def emulation() -> Iterator[RdsEmulation]:
    """Stopping and starting last 100 AWS seconds = 0.1 s; the clock completes them on time."""
    rds_emulation = RdsEmulation(time_scale=0.001, stop_seconds=100, start_seconds=100)
    with ExitStack() as stack:
        rds_emulation.install(stack)
        stack.enter_context(mock_aws())
        AwsEvents().install(stack)
        yield rds_emulation


@pytest.fixture
def rds_rule(emulation: RdsEmulation) -> Rule:
    return rule("rds-events", RDS_EVENTS)


def rds() -> Any:
    return boto3.client("rds", region_name="us-east-1")


def postgres(identifier: str = "orders") -> str:
    return str(
        rds().create_db_instance(
            DBInstanceIdentifier=identifier,
            Engine="postgres",
            DBInstanceClass="db.t3.micro",
            MasterUsername="admin_user",
            MasterUserPassword="a-long-password",
            AllocatedStorage=20,
        )["DBInstance"]["DBInstanceArn"]
    )


def aurora(identifier: str = "ledger") -> tuple[str, str]:
    """An Aurora PostgreSQL cluster with one DB instance: their ARNs."""
    cluster_arn = rds().create_db_cluster(
        DBClusterIdentifier=identifier,
        Engine="aurora-postgresql",
        MasterUsername="admin_user",
        MasterUserPassword="a-long-password",
    )["DBCluster"]["DBClusterArn"]
    instance_arn = rds().create_db_instance(
        DBInstanceIdentifier=f"{identifier}-1",
        DBClusterIdentifier=identifier,
        Engine="aurora-postgresql",
        DBInstanceClass="db.r6g.large",
    )["DBInstance"]["DBInstanceArn"]
    return str(cluster_arn), str(instance_arn)


def summary(event: dict[str, Any]) -> tuple[str, str, str, str]:
    detail = event["detail"]
    return (event["detail-type"], detail["SourceIdentifier"], detail["EventID"], detail["Message"])


def test_a_stopped_db_instance_sends_rds_event_0087_as_the_tutorial_shows(rds_rule: Rule) -> None:
    """The tutorial's event: detail-type RDS DB Instance Event, resources [the DB ARN], EventCategories
    ["notification"], SourceType DB_INSTANCE, SourceArn, Date with milliseconds, Message "DB instance
    stopped", SourceIdentifier the DB identifier, EventID RDS-EVENT-0087. Sent when the instance is stopped,
    without anyone describing it."""
    arn = postgres()
    rds().stop_db_instance(DBInstanceIdentifier="orders")

    [event] = rds_rule.received(1)

    assert (event["source"], event["detail-type"], event["resources"]) == (
        "aws.rds",
        "RDS DB Instance Event",
        [arn],
    )
    assert set(event["detail"]) == {
        "EventCategories",
        "SourceType",
        "SourceArn",
        "Date",
        "Message",
        "SourceIdentifier",
        "EventID",
    }
    detail = event["detail"]
    assert detail["EventCategories"] == ["notification"]
    assert (detail["SourceType"], detail["SourceArn"], detail["SourceIdentifier"]) == (
        "DB_INSTANCE",
        arn,
        "orders",
    )
    assert (detail["EventID"], detail["Message"]) == ("RDS-EVENT-0087", "DB instance stopped")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", detail["Date"])
    assert rds().describe_db_instances(DBInstanceIdentifier="orders")["DBInstances"][0][
        "DBInstanceStatus"
    ] == ("stopped")


def test_a_started_db_instance_sends_rds_event_0088(rds_rule: Rule) -> None:
    """DB instance events, notification: RDS-EVENT-0088 "DB instance started", once it is available."""
    postgres()
    rds().stop_db_instance(DBInstanceIdentifier="orders")
    rds_rule.received(1)
    rds().start_db_instance(DBInstanceIdentifier="orders")

    [event] = rds_rule.received(1)

    assert summary(event) == ("RDS DB Instance Event", "orders", "RDS-EVENT-0088", "DB instance started")
    assert rds().describe_db_instances(DBInstanceIdentifier="orders")["DBInstances"][0][
        "DBInstanceStatus"
    ] == ("available")


def test_nothing_is_sent_while_stopping(emulation: RdsEmulation, rds_rule: Rule) -> None:
    emulation.stop_seconds = 400  # 0.4 s
    postgres()
    rds().stop_db_instance(DBInstanceIdentifier="orders")
    assert rds().describe_db_instances(DBInstanceIdentifier="orders")["DBInstances"][0][
        "DBInstanceStatus"
    ] == ("stopping")
    assert rds_rule.nothing_more()
    assert [summary(e)[2] for e in rds_rule.received(1)] == ["RDS-EVENT-0087"]


def test_an_aurora_cluster_sends_cluster_events_0150_and_0151_and_its_instances_theirs(
    rds_rule: Rule,
) -> None:
    """DB cluster events, notification: RDS-EVENT-0150 "DB cluster stopped", RDS-EVENT-0151 "DB cluster
    started", detail-type RDS DB Cluster Event and SourceType CLUSTER (the guide's cluster example); the
    cluster's DB instance sends RDS-EVENT-0087 and 0088, which the Aurora guide lists as DB instance events."""
    cluster_arn, instance_arn = aurora()

    rds().stop_db_cluster(DBClusterIdentifier="ledger")
    stopped = rds_rule.received(2)
    rds().start_db_cluster(DBClusterIdentifier="ledger")
    started = rds_rule.received(2)

    assert sorted(summary(e) for e in stopped) == [
        ("RDS DB Cluster Event", "ledger", "RDS-EVENT-0150", "DB cluster stopped"),
        ("RDS DB Instance Event", "ledger-1", "RDS-EVENT-0087", "DB instance stopped"),
    ]
    assert sorted(summary(e) for e in started) == [
        ("RDS DB Cluster Event", "ledger", "RDS-EVENT-0151", "DB cluster started"),
        ("RDS DB Instance Event", "ledger-1", "RDS-EVENT-0088", "DB instance started"),
    ]
    cluster_event = next(e for e in stopped if e["detail-type"] == "RDS DB Cluster Event")
    assert cluster_event["resources"] == [cluster_arn]
    assert (cluster_event["detail"]["SourceType"], cluster_event["detail"]["SourceArn"]) == (
        "CLUSTER",
        cluster_arn,
    )
    assert cluster_event["detail"]["EventCategories"] == ["notification"]
    instance_event = next(e for e in stopped if e["detail-type"] == "RDS DB Instance Event")
    assert instance_event["resources"] == [instance_arn]


def test_the_seven_day_restart_is_announced_then_started(emulation: RdsEmulation, rds_rule: Rule) -> None:
    """RDS-EVENT-0154 "DB instance is being started due to it exceeding the maximum allowed time being
    stopped", then RDS-EVENT-0088; for a cluster RDS-EVENT-0153, then RDS-EVENT-0151."""
    postgres()
    aurora()
    rds().stop_db_instance(DBInstanceIdentifier="orders")
    rds().stop_db_cluster(DBClusterIdentifier="ledger")
    rds_rule.received(3)

    emulation.restart_after_seven_days("orders")
    emulation.restart_after_seven_days("ledger")

    received = [summary(e) for e in rds_rule.received(5)]
    assert [(name, event_id) for _, name, event_id, _ in received[:3]] == [
        ("orders", "RDS-EVENT-0154"),
        ("orders", "RDS-EVENT-0088"),
        ("ledger", "RDS-EVENT-0153"),
    ]
    assert sorted((name, event_id) for _, name, event_id, _ in received[3:]) == [
        ("ledger", "RDS-EVENT-0151"),
        ("ledger-1", "RDS-EVENT-0088"),
    ]
    assert (
        received[0][3]
        == "DB instance is being started due to it exceeding the maximum allowed time being stopped"
    )
    assert (
        received[2][3]
        == "DB cluster is being started due to it exceeding the maximum allowed time being stopped"
    )
