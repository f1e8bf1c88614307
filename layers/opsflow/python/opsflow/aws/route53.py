"""Route 53 adapter: a name's weighted record sets, their changes' propagation, health checks' status and a
hosted zone's tags. Route 53 is global: one endpoint serves every region."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from opsflow.aws.errors import aws_call

if TYPE_CHECKING:
    from mypy_boto3_route53 import Route53Client
    from mypy_boto3_route53.type_defs import ChangeTypeDef, ResourceRecordSetTypeDef

MAX_WEIGHT = 255
# Route 53 Developer Guide, "How Amazon Route 53 determines whether a health check is healthy": an endpoint
# is healthy when more than 18 % of its health checkers report it healthy.
HEALTHY_CHECKER_SHARE = 0.18


def record_name(name: str) -> str:
    """A name as Route 53 keeps it, for comparing: lower case, with its final dot, and a wildcard as `*`
    (ListResourceRecordSets answers it escaped, `\\052`)."""
    name = name.strip().lower().replace("\\052", "*")
    return name if name.endswith(".") else f"{name}."


def zone_id(hosted_zone_id: str) -> str:
    """`Z0123...` from `Z0123...` or `/hostedzone/Z0123...`."""
    return hosted_zone_id.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class WeightedSet:
    """One weighted record set of a name: its full definition is sent back with each change of weight."""

    name: str
    type: str
    set_identifier: str
    weight: int
    ttl: int | None  # None for an alias record, whose TTL is its target's
    health_check_id: str | None
    raw: dict[str, Any]

    def with_weight(self, weight: int) -> WeightedSet:
        return replace(self, weight=weight, raw={**self.raw, "Weight": weight})


@dataclass(frozen=True)
class HealthCheckStatus:
    health_check_id: str
    healthy: bool
    checkers: int
    healthy_checkers: int
    # What a failing checker said last, e.g. "Failure: HTTP Status Code 503, Service Unavailable".
    failure: str | None


class Route53:
    def __init__(self, client: Route53Client) -> None:
        self._route53 = client

    def zone_name(self, hosted_zone_id: str) -> str:
        with aws_call("GetHostedZone", not_found=f"hosted zone {hosted_zone_id} does not exist"):
            found = self._route53.get_hosted_zone(Id=zone_id(hosted_zone_id))
        return record_name(found["HostedZone"]["Name"])

    def zone_tags(self, hosted_zone_id: str) -> dict[str, str]:
        with aws_call("ListTagsForResource", not_found=f"hosted zone {hosted_zone_id} does not exist"):
            found = self._route53.list_tags_for_resource(
                ResourceType="hostedzone", ResourceId=zone_id(hosted_zone_id)
            )
        return {tag["Key"]: tag.get("Value", "") for tag in found["ResourceTagSet"].get("Tags", [])}

    def record_sets(self, hosted_zone_id: str, name: str) -> list[WeightedSet]:
        """Every weighted record set of `name`, of any type (records without a weight are left out)."""
        wanted = record_name(name)
        found: list[WeightedSet] = []
        more: dict[str, Any] = {}
        while True:
            with aws_call("ListResourceRecordSets", not_found=f"hosted zone {hosted_zone_id} does not exist"):
                page = self._route53.list_resource_record_sets(
                    HostedZoneId=zone_id(hosted_zone_id), StartRecordName=wanted, **more
                )
            for raw in page["ResourceRecordSets"]:
                # Listed in order from the name asked for: the first other name ends its sets.
                if record_name(raw["Name"]) != wanted:
                    return found
                if "Weight" in raw and "SetIdentifier" in raw:
                    found.append(_weighted(raw))
            if not page.get("IsTruncated") or "NextRecordName" not in page:
                return found
            # The next page starts where this one stopped: a name, a type and, among weighted sets, an id.
            more = {"StartRecordType": page["NextRecordType"]}
            if "NextRecordIdentifier" in page:
                more["StartRecordIdentifier"] = page["NextRecordIdentifier"]
            wanted_next = record_name(page["NextRecordName"])
            if wanted_next != wanted:
                return found

    def set_weights(self, hosted_zone_id: str, sets: list[WeightedSet]) -> str:
        """UPSERT each set with its weight, in one change batch (applied all or nothing); returns the change
        id to await with `change_in_sync`."""
        changes: list[ChangeTypeDef] = [
            {"Action": "UPSERT", "ResourceRecordSet": _definition(s)} for s in sets
        ]
        with aws_call("ChangeResourceRecordSets", not_found=f"hosted zone {hosted_zone_id} does not exist"):
            info = self._route53.change_resource_record_sets(
                HostedZoneId=zone_id(hosted_zone_id),
                ChangeBatch={"Comment": "Opsflow dns_shift", "Changes": changes},
            )["ChangeInfo"]
        return info["Id"].rsplit("/", 1)[-1]

    def change_in_sync(self, change_id: str) -> bool:
        """Whether every Route 53 authoritative server answers with the change (INSYNC), not only some."""
        with aws_call("GetChange", not_found=f"change {change_id} does not exist"):
            return self._route53.get_change(Id=change_id)["ChangeInfo"]["Status"] == "INSYNC"

    def health_check_type(self, health_check_id: str) -> str:
        with aws_call("GetHealthCheck", not_found=f"health check {health_check_id} does not exist"):
            found = self._route53.get_health_check(HealthCheckId=health_check_id)
        return str(found["HealthCheck"]["HealthCheckConfig"]["Type"])

    def health_check_status(self, health_check_id: str) -> HealthCheckStatus:
        with aws_call("GetHealthCheckStatus", not_found=f"health check {health_check_id} does not exist"):
            found = self._route53.get_health_check_status(HealthCheckId=health_check_id)
        reports = [o.get("StatusReport", {}).get("Status", "") for o in found["HealthCheckObservations"]]
        healthy = sum(1 for report in reports if report.startswith("Success"))
        failures = [report for report in reports if not report.startswith("Success")]
        return HealthCheckStatus(
            health_check_id=health_check_id,
            healthy=bool(reports) and healthy / len(reports) > HEALTHY_CHECKER_SHARE,
            checkers=len(reports),
            healthy_checkers=healthy,
            failure=failures[0] if failures else None,
        )


def _weighted(raw: Any) -> WeightedSet:
    return WeightedSet(
        name=record_name(raw["Name"]),
        type=raw["Type"],
        set_identifier=raw["SetIdentifier"],
        weight=int(raw["Weight"]),
        ttl=int(raw["TTL"]) if "TTL" in raw else None,
        health_check_id=raw.get("HealthCheckId"),
        raw=dict(raw),
    )


def _definition(weighted: WeightedSet) -> ResourceRecordSetTypeDef:
    definition: Any = {**weighted.raw, "Weight": weighted.weight}
    return definition  # type: ignore[no-any-return]
