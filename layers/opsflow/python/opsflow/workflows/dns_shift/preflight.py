"""The pre-flight: every check that the cutover can run safely, read without changing anything, and the spec
and plan it settles. The guard step runs it again at the start of the execution."""

from __future__ import annotations

from typing import Any

from opsflow.aws.cloudwatch import ensure_quiet
from opsflow.aws.route53 import WeightedSet, record_name, zone_id
from opsflow.errors import NotFound, NotOptedIn, Refused
from opsflow.runs.config import OptIn, StarterConfig
from opsflow.traffic.plan import TrafficStep
from opsflow.workflows.dns_shift.deps import CutoverAws
from opsflow.workflows.dns_shift.request import DnsShiftRequest
from opsflow.workflows.dns_shift.state import CutoverSpec

# An alias record's answers live as long as its target's TTL: 60 s for a load balancer or CloudFront.
ALIAS_TTL = 60
# GetHealthCheckStatus answers only for health checks that Route 53's checkers run themselves.
UNREADABLE_HEALTH_CHECKS = frozenset({"CALCULATED", "CLOUDWATCH_METRIC", "RECOVERY_CONTROL"})


def preflight(request: DnsShiftRequest, aws: CutoverAws, opt_in: OptIn) -> dict[str, Any]:
    spec = check_cutover(request, aws, opt_in)
    return {"spec": spec.model_dump(mode="json"), "actions": plan_actions(spec)}


def check_cutover(request: DnsShiftRequest, aws: CutoverAws, opt_in: OptIn) -> CutoverSpec:
    zone = zone_id(request.hosted_zone_id)
    try:
        zone_name = aws.route53.zone_name(zone)
    except NotFound as error:
        raise Refused(f"hosted zone {zone} does not exist: check hosted_zone_id") from error
    tags = aws.route53.zone_tags(zone)
    if not opt_in.allows(tags):
        raise NotOptedIn(
            f"hosted zone {zone} ({zone_name.rstrip('.')}) is not opted in: tag it {opt_in.describe()} to let "
            "Opsflow change its weighted records"
        )
    name = record_name(request.record_name)
    if name != zone_name and not name.endswith(f".{zone_name}"):
        raise Refused(f"record_name {name.rstrip('.')} is not in hosted zone {zone_name.rstrip('.')}")
    sets = weighted_sets(request, zone, name, zone_name, aws)
    green = next((s for s in sets if s.set_identifier == request.to), None)
    if green is None:
        known = ", ".join(s.set_identifier for s in sets)
        raise Refused(f"to: {name.rstrip('.')} has no weighted set {request.to!r}; its sets are {known}")
    start = {s.set_identifier: s.weight for s in sets}
    if sum(start.values()) > 0 and start[green.set_identifier] == sum(start.values()):
        raise Refused(f"{name.rstrip('.')} already sends all its traffic to {request.to}: nothing to shift")
    health_checks = check_health_checks(request, green, aws)
    ensure_quiet(request.alarms, aws.cloudwatch, "the cutover would roll back at once")
    ttl = max(s.ttl if s.ttl is not None else ALIAS_TTL for s in sets)
    return CutoverSpec(
        hosted_zone_id=zone,
        zone_name=zone_name,
        name=name,
        type=sets[0].type,
        green=green.set_identifier,
        start=start,
        ttl=ttl,
        # A share counts only once resolvers may have let go of the answers before it.
        traffic=[
            TrafficStep(percent=step.percent, hold_seconds=max(step.hold_seconds, ttl))
            for step in request.traffic_steps()
        ],
        bake_seconds=max(request.bake_seconds, ttl),
        health_checks=health_checks,
        alarms=list(request.alarms),
        smoke_url=request.smoke_test.url if request.smoke_test else None,
        smoke_timeout_seconds=request.smoke_test.timeout_seconds if request.smoke_test else 10,
    )


def weighted_sets(
    request: DnsShiftRequest, zone: str, name: str, zone_name: str, aws: CutoverAws
) -> list[WeightedSet]:
    found = aws.route53.record_sets(zone, name)
    if not found:
        raise Refused(
            f"record_name {name.rstrip('.')} has no weighted record sets in hosted zone {zone_name.rstrip('.')}: "
            "a cutover shifts weight between two or more sets of one name"
        )
    types = sorted({s.type for s in found})
    if request.record_type is None and len(types) > 1:
        raise Refused(
            f"record_type: {name.rstrip('.')} has weighted sets of types {', '.join(types)}; say which to shift"
        )
    wanted = request.record_type or types[0]
    sets = [s for s in found if s.type == wanted]
    if len(sets) < 2:
        raise Refused(
            f"record_name {name.rstrip('.')} has {len(sets)} weighted {wanted} set(s); a cutover needs two or more"
        )
    return sets


def check_health_checks(request: DnsShiftRequest, green: WeightedSet, aws: CutoverAws) -> list[str]:
    """The health checks to watch: those asked for, or the new set's own; each must exist, be one Route 53
    reports the status of, and be healthy now."""
    if request.health_checks is not None:
        wanted = list(request.health_checks)
    else:
        wanted = [green.health_check_id] if green.health_check_id else []
    for health_check_id in wanted:
        try:
            kind = aws.route53.health_check_type(health_check_id)
        except NotFound as error:
            raise Refused(f"health_checks: health check {health_check_id} does not exist") from error
        if kind in UNREADABLE_HEALTH_CHECKS:
            raise Refused(
                f"health_checks: health check {health_check_id} is {kind}; Route 53 reports no checker status "
                "for it: watch its CloudWatch alarm in alarms instead"
            )
        status = aws.route53.health_check_status(health_check_id)
        if not status.healthy:
            raise Refused(
                f"health check {health_check_id} is unhealthy already ({status.failure or 'no checker reports success'})"
                "; the cutover would roll back at once"
            )
    return wanted


def plan_actions(spec: CutoverSpec) -> list[str]:
    name = spec.name.rstrip(".")
    gates = [f"health check {h}" for h in spec.health_checks] + [f"alarm {a}" for a in spec.alarms]
    if spec.smoke_url:
        gates.append(f"GET {spec.smoke_url}")
    watched = (
        f", watching {', '.join(gates)}" if gates else " (no gate: name health_checks, alarms or smoke_test)"
    )
    return [
        f"Shift {name} {spec.type} from {', '.join(spec.blue)} to {spec.green} "
        f"(weights now: {spec.describe_start()}){watched}",
        *(
            f"Set {spec.green} to {step.percent}%, wait until Route 53 is INSYNC, hold {step.hold_seconds} s"
            for step in spec.traffic
        ),
        f"Hold all traffic on {spec.green} for {spec.bake_seconds} s (TTL {spec.ttl} s)",
        f"On any failed gate: put the weights back to {spec.describe_start()} within the step",
    ]


def preflight_run(request: DnsShiftRequest, config: StarterConfig) -> dict[str, Any]:
    """The pre-flight the starter runs, with the AWS it reads."""
    return preflight(request, CutoverAws.at(request.target()), config.opt_in)
