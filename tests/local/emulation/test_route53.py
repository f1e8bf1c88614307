"""The Route 53 emulation against the Route 53 API Reference (ChangeResourceRecordSets, GetChange, ChangeInfo,
GetHealthCheckStatus, HealthCheckObservation) and the Developer Guide (weighted routing; how Route 53
determines whether a health check is healthy)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from opsflow_local.emulation.route53 import CHECKER_REGIONS, Route53Emulation

SCALE = 0.001  # seconds per AWS second


@pytest.fixture
def emulation() -> Iterator[Route53Emulation]:
    # Changes propagate in 100 AWS seconds = 0.1 s: long enough to see PENDING on a busy machine.
    emulation = Route53Emulation(time_scale=SCALE, propagation_seconds=100)
    with ExitStack() as stack:
        emulation.install(stack)
        stack.enter_context(mock_aws())
        yield emulation


def route53() -> Any:
    return boto3.client("route53", region_name="us-east-1")


def zone() -> str:
    return str(route53().create_hosted_zone(Name="example.com", CallerReference="z")["HostedZone"]["Id"])


def weighted(set_id: str, weight: int) -> dict[str, Any]:
    return {
        "Action": "UPSERT",
        "ResourceRecordSet": {
            "Name": "www.example.com",
            "Type": "CNAME",
            "SetIdentifier": set_id,
            "Weight": weight,
            "TTL": 60,
            "ResourceRecords": [{"Value": f"{set_id}.example.com"}],
        },
    }


def weights(zone_id: str) -> dict[str, int]:
    sets = route53().list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return {s["SetIdentifier"]: s["Weight"] for s in sets if "SetIdentifier" in s}


def health_check() -> str:
    config = {"Type": "HTTPS", "FullyQualifiedDomainName": "eu.example.com", "Port": 443, "ResourcePath": "/"}
    return str(
        route53().create_health_check(CallerReference="h", HealthCheckConfig=config)["HealthCheck"]["Id"]
    )


def test_a_change_is_pending_until_it_has_propagated_then_insync(emulation: Route53Emulation) -> None:
    zone_id = zone()
    first = route53().change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Changes": [weighted("us", 100), weighted("eu", 0)]}
    )["ChangeInfo"]
    second = route53().change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Changes": [weighted("eu", 10)]}
    )["ChangeInfo"]

    assert first["Status"] == "PENDING"
    assert first["Id"].startswith("/change/")
    assert first["Id"] != second["Id"]
    assert route53().get_change(Id=first["Id"])["ChangeInfo"]["Status"] == "PENDING"
    time.sleep(100 * SCALE + 0.05)
    # GetChange takes the id with or without its /change/ prefix.
    assert route53().get_change(Id=first["Id"].rsplit("/", 1)[-1])["ChangeInfo"]["Status"] == "INSYNC"
    assert weights(zone_id) == {"us": 100, "eu": 10}


def test_an_unknown_change_id_is_no_such_change(emulation: Route53Emulation) -> None:
    with pytest.raises(ClientError) as raised:
        route53().get_change(Id="C0000000000000000NOPE")
    assert raised.value.response["Error"]["Code"] == "NoSuchChange"


def test_held_changes_stay_pending_until_released(emulation: Route53Emulation) -> None:
    zone_id = zone()
    emulation.hold_changes()
    change = route53().change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Changes": [weighted("us", 100)]}
    )["ChangeInfo"]["Id"]
    time.sleep(200 * SCALE)
    assert route53().get_change(Id=change)["ChangeInfo"]["Status"] == "PENDING"

    emulation.release_changes()
    time.sleep(100 * SCALE + 0.05)
    assert route53().get_change(Id=change)["ChangeInfo"]["Status"] == "INSYNC"


@pytest.mark.parametrize("weight", [256, 1000])  # botocore itself refuses a negative one
def test_a_weight_outside_0_to_255_refuses_the_whole_batch(emulation: Route53Emulation, weight: int) -> None:
    zone_id = zone()
    with pytest.raises(ClientError) as raised:
        route53().change_resource_record_sets(
            HostedZoneId=zone_id, ChangeBatch={"Changes": [weighted("us", 100), weighted("eu", weight)]}
        )

    assert raised.value.response["Error"]["Code"] == "InvalidInput"
    assert weights(zone_id) == {}


def test_health_check_status_has_an_observation_per_checker_region(emulation: Route53Emulation) -> None:
    check = health_check()
    observations = route53().get_health_check_status(HealthCheckId=check)["HealthCheckObservations"]

    assert sorted(o["Region"] for o in observations) == sorted(CHECKER_REGIONS)
    assert all(o["StatusReport"]["Status"].startswith("Success: HTTP Status Code 200") for o in observations)


def test_failing_checkers_report_failure_until_healthy_again(emulation: Route53Emulation) -> None:
    check = health_check()
    emulation.set_unhealthy(check, failing=7)

    reports = [
        o["StatusReport"]["Status"]
        for o in route53().get_health_check_status(HealthCheckId=check)["HealthCheckObservations"]
    ]
    assert sum(r.startswith("Failure:") for r in reports) == 7
    assert sum(r.startswith("Success:") for r in reports) == 1

    emulation.set_healthy(check)
    reports = [
        o["StatusReport"]["Status"]
        for o in route53().get_health_check_status(HealthCheckId=check)["HealthCheckObservations"]
    ]
    assert all(r.startswith("Success:") for r in reports)


def test_an_unknown_health_check_is_no_such_health_check(emulation: Route53Emulation) -> None:
    with pytest.raises(ClientError) as raised:
        route53().get_health_check_status(HealthCheckId="00000000-0000-0000-0000-000000000000")
    assert raised.value.response["Error"]["Code"] == "NoSuchHealthCheck"
