"""Whether a rule may act on the resource it was asked to: the rule still exists and is enabled, the
resource carries the opt-in tag and is in the rule's scope, and no other Opsflow run holds it, its group or
its environment (a refresh replacing it, a nightly stop that stopped it)."""

from __future__ import annotations

from typing import Any

from opsflow.aws import clients
from opsflow.aws.autoscaling import GROUP_TAG
from opsflow.aws.target import Target
from opsflow.errors import Busy, NotFound, NotOptedIn, Refused
from opsflow.remediation.rules import RemediationRule
from opsflow.runs.config import OptIn, StarterConfig
from opsflow.store.locks import DynamoLockStore, LockStore
from opsflow.workflows.remediate.aws import RemediateAws
from opsflow.workflows.remediate.request import RemediateRequest


def preflight_run(request: RemediateRequest, config: StarterConfig) -> dict[str, Any]:
    stored = config.remediation_store().get(request.rule)
    if stored is None:
        raise NotFound(f"remediation rule {request.rule} no longer exists")
    locks = DynamoLockStore(clients.client("dynamodb"), config.locks_table)
    aws = RemediateAws.at(request.target())
    return check(request, stored.rule, aws, config.opt_in, config.environment_tag_key, locks)


def check(
    request: RemediateRequest,
    rule: RemediationRule,
    aws: RemediateAws,
    opt_in: OptIn,
    environment_key: str,
    locks: LockStore,
) -> dict[str, Any]:
    if not rule.enabled:
        raise Refused(f"remediation rule {request.rule} is disabled")
    if request.resource_kind == "ecs":
        cluster, service = request.cluster_and_service
        tags = aws.ecs.describe_service(cluster, service).tags
        what, group = f"ECS service {request.resource}", None
    else:
        instance = aws.ec2.describe_instance(request.resource)
        tags, what, group = instance.tags, f"instance {request.resource}", instance.tags.get(GROUP_TAG)
    if not opt_in.allows(tags):
        raise NotOptedIn(f"{what} is not tagged {opt_in.describe()}: Opsflow leaves it alone")
    scope = rule.scope
    environment = tags.get(environment_key)
    if scope.environment and environment != scope.environment:
        raise Refused(
            f"{what} is in environment {environment or '(none)'}, not {scope.environment}: "
            f"outside rule {request.rule}'s scope"
        )
    if scope.asg_name and group != scope.asg_name:
        raise Refused(
            f"{what} is in group {group or '(none)'}, not {scope.asg_name}: outside rule {request.rule}'s scope"
        )
    missing = {k: v for k, v in scope.tags.items() if tags.get(k) != v}
    if missing:
        wanted = ", ".join(f"{k}={v}" for k, v in missing.items())
        raise Refused(f"{what} lacks {wanted}: outside rule {request.rule}'s scope")
    if (
        request.resource_kind == "instance"
        and rule.action.kind in ("recover", "stop_start")
        and (instance.root_device_type != "ebs" or aws.ec2.has_instance_store(instance.instance_type))
    ):
        raise Refused(
            f"instance {request.resource} ({instance.instance_type}) has instance store volumes, whose data "
            f"a stop loses: {rule.action.kind} acts only on instances whose volumes are all EBS"
        )
    here = request.target()
    for kind, name in (("asg", group), ("env", environment)):
        if not name:
            continue
        held = locks.holder(Target(kind, name, here.account, here.region).key)
        if held is not None:
            raise Busy(
                f"{kind} {name}, which {what} belongs to, is held by run {held.run_id}: "
                "Opsflow does not remediate what another of its runs is changing"
            )
    return {
        "rule": request.rule,
        "action": rule.action.kind,
        "resource": request.resource,
        "group": group,
        "environment": environment,
        "cause": request.cause,
        **({"runbook": request.runbook.model_dump(exclude_none=True)} if request.runbook else {}),
        "waits_for": _waits_for(request),
        "within_minutes": rule.outcome_timeout_minutes,
    }


def _waits_for(request: RemediateRequest) -> str:
    checks = (
        f"service {request.resource} steady (its deployment completed, every desired task running)"
        if request.resource_kind == "ecs"
        else f"instance {request.resource} running with both status checks ok"
    )
    return (
        f"alarm {request.alarm_name} back to OK and {checks}" if request.helped_when == "alarm_ok" else checks
    )
