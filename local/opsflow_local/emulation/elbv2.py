"""Elastic Load Balancing v2 behaviours that moto 5.2.5 lacks or bends, emulated as the ELB API Reference
(DescribeTargetHealth, TargetHealth, RegisterTargets, DeregisterTargets, CreateListener, ModifyListener,
CreateRule, ModifyRule, Action, ForwardActionConfig, TargetGroupTuple) and the Application Load Balancers
User Guide ("Health checks for your target groups", "Deregistration delay", "Quotas for your Application
Load Balancers") document them.

What moto already does as AWS does, as probed: listeners and rules keep a forward action's
`ForwardConfig.TargetGroups` with their weights and `TargetGroupStickinessConfig`, and DescribeListeners and
DescribeRules return them as set (the listener's default rule follows ModifyListener); CreateListener,
CreateRule and ModifyRule refuse a target group that does not exist; DeleteTargetGroup refuses a group in
use by a listener or rule; a target that never was registered, or whose deregistration is over, is `unused`
with `Target.NotRegistered`; a stopped instance is `unused` with `Target.InvalidState`.

What is emulated:
- Health (TargetHealth): a registered target is `initial` (`Elb.InitialHealthChecking`) until it passed
  HealthyThresholdCount checks, HealthCheckIntervalSeconds apart, then `healthy`. Checks only run while a
  listener or rule of a load balancer forwards to the group: until then its targets are `unused` with
  `Target.NotInUse`, and they start over from `initial` when it does. With health checks disabled a target
  is `unavailable` (`Target.HealthCheckDisabled`). moto: `healthy` at once, whether the group is used or not.
- DeregisterTargets (User Guide, "Deregistration delay"): the target is `draining`
  (`Target.DeregistrationInProgress`) for the group's `deregistration_delay.timeout_seconds` (default 300),
  and listed by DescribeTargetHealth meanwhile; then it is gone. moto: gone at once.
- `set_unhealthy` (a test hook) makes targets fail their checks: after UnhealthyThresholdCount failed
  checks they are `unhealthy` with the reason code given (`Target.FailedHealthChecks`,
  `Target.ResponseCodeMismatch`, `Target.Timeout`, `Elb.InternalError`); `set_healthy` lets them pass
  again, and they are `healthy` after HealthyThresholdCount checks.
- Forward actions of CreateListener, ModifyListener, CreateRule and ModifyRule are validated:
  - TargetGroupTuple weights must be within 0..999 (ValidationError). moto takes any integer.
  - every target group must exist (TargetGroupNotFound). moto's ModifyListener takes any ARN.
  - "Load balancers per target group: 1" (quota, not adjustable): a group that a listener or rule of
    another load balancer forwards to is refused with TargetGroupAssociationLimit. moto lets two load
    balancers share a group, so traffic shifted on one could land on the other's targets.
  - the group's protocol must suit the listener (IncompatibleProtocols): HTTP or HTTPS groups (or Lambda
    ones) behind an Application Load Balancer, TCP, TLS, UDP or TCP_UDP ones behind a Network Load
    Balancer. moto forwards an HTTP listener to a TCP group.
  - with both TargetGroupArn and ForwardConfig, ForwardConfig may hold only that same group
    (InvalidLoadBalancerAction).
- DescribeTargetGroups `LoadBalancerArns` lists the load balancers that forward to the group now. moto
  only ever adds to it, and not on ModifyListener or ModifyRule.

Not emulated: targets are still keyed by id alone (moto), so one IP address registered on two ports is one
target; IP targets are not checked against the VPC; the limit of 5 target groups per forward action; a
missing Weight is stored as 1 (moto). moto describes a simple forward (`TargetGroupArn` alone) without a
`ForwardConfig`: a reader of weights should accept both shapes.
Durations are AWS seconds multiplied by `time_scale`.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from moto.elbv2.exceptions import ELBClientError, TargetGroupNotFoundError
from moto.elbv2.models import ELBv2Backend, FakeHealthStatus, FakeTargetGroup, elbv2_backends

MAX_WEIGHT = 999
_APPLICATION_PROTOCOLS = frozenset({"HTTP", "HTTPS"})
_NETWORK_PROTOCOLS = frozenset({"TCP", "TLS", "UDP", "TCP_UDP"})
# The description AWS gives with each reason code a test may choose.
UNHEALTHY_DESCRIPTIONS = {
    "Target.FailedHealthChecks": "Health checks failed",
    "Target.ResponseCodeMismatch": "Health checks failed with these codes: [502]",
    "Target.Timeout": "Request timed out",
    "Elb.InternalError": "Health checks failed due to an internal error",
}
_INITIAL = ("initial", "Elb.InitialHealthChecking", "Initial health checks in progress")
_HEALTHY: tuple[str, str | None, str | None] = ("healthy", None, None)


def target_groups_of(action: dict[str, Any]) -> list[str]:
    """The target group ARNs a forward action sends to."""
    arns = [tg["TargetGroupArn"] for tg in (action.get("ForwardConfig") or {}).get("TargetGroups") or []]
    if action.get("TargetGroupArn") and action["TargetGroupArn"] not in arns:
        arns.insert(0, action["TargetGroupArn"])
    return arns


def load_balancers_forwarding_to(backend: ELBv2Backend, target_group_arn: str) -> set[str]:
    """ARNs of the load balancers with a listener or rule that forwards to the target group."""
    return {
        balancer_arn
        for balancer_arn, balancer in backend.load_balancers.items()
        for listener in balancer.listeners.values()
        for rule in listener.rules.values()
        for action in rule.actions
        if target_group_arn in target_groups_of(action.data)
    }


def _groups_in_use(backend: ELBv2Backend) -> dict[str, set[str]]:
    used: dict[str, set[str]] = {}
    for balancer_arn, balancer in backend.load_balancers.items():
        for listener in balancer.listeners.values():
            for rule in listener.rules.values():
                for action in rule.actions:
                    for arn in target_groups_of(action.data):
                        used.setdefault(arn, set()).add(balancer_arn)
    return used


@dataclass
class _Target:
    """A registered target's health, and the state its health checks will bring it to, and when."""

    state: tuple[str, str | None, str | None] = _INITIAL
    next_state: tuple[str, str | None, str | None] | None = None
    next_at: float | None = None
    failing: tuple[str, str] | None = None

    def settle(self, now: float) -> None:
        if self.next_state is not None and self.next_at is not None and now >= self.next_at:
            self.state, self.next_state, self.next_at = self.next_state, None, None


@dataclass
class Elbv2Emulation:
    """Controls for tests and the demo. Durations are AWS seconds, scaled like Wait states."""

    time_scale: float = 1.0
    _targets: dict[str, dict[str, _Target]] = field(default_factory=dict)
    _draining: dict[str, dict[str, tuple[float, dict[str, Any]]]] = field(default_factory=dict)
    _failing_groups: dict[str, tuple[str, str]] = field(default_factory=dict)
    _mutex: threading.RLock = field(default_factory=threading.RLock)

    # Test hooks -------------------------------------------------------------------------------------

    def set_unhealthy(
        self,
        target_group_arn: str,
        target_id: str | None = None,
        reason: str = "Target.FailedHealthChecks",
        description: str | None = None,
    ) -> None:
        """From now on the target (or, without target_id, every target of the group, also those registered
        later) fails its health checks: it turns `unhealthy` with this reason code after
        UnhealthyThresholdCount checks."""
        failing = (reason, description or UNHEALTHY_DESCRIPTIONS.get(reason, "Health checks failed"))
        with self._mutex:
            now = time.monotonic()
            if target_id is None:
                self._failing_groups[target_group_arn] = failing
                records: Iterable[_Target] = self._targets.get(target_group_arn, {}).values()
            else:
                records = [self._targets.setdefault(target_group_arn, {}).setdefault(target_id, _Target())]
            group = _find_group(target_group_arn)
            for record in records:
                record.settle(now)
                record.failing = failing
                if group is not None and _in_use(group):
                    self._schedule(group, record, now)

    def set_healthy(self, target_group_arn: str, target_id: str | None = None) -> None:
        """Undo `set_unhealthy`: the targets pass their checks again."""
        with self._mutex:
            now = time.monotonic()
            records = self._targets.get(target_group_arn, {})
            if target_id is None:
                self._failing_groups.pop(target_group_arn, None)
                chosen: Iterable[_Target] = records.values()
            else:
                chosen = [records[target_id]] if target_id in records else []
            group = _find_group(target_group_arn)
            for record in chosen:
                record.settle(now)
                record.failing = None
                if group is not None and _in_use(group):
                    self._schedule(group, record, now)

    # Health -----------------------------------------------------------------------------------------

    def _delay(self, group: FakeTargetGroup, threshold: Any) -> float:
        return float(group.health_check_interval_seconds) * int(threshold) * self.time_scale

    def _schedule(self, group: FakeTargetGroup, record: _Target, now: float) -> None:
        failing = record.failing or self._failing_groups.get(group.arn)
        if failing:
            goal: tuple[str, str | None, str | None] = ("unhealthy", *failing)
            delay = self._delay(group, group.unhealthy_threshold_count)
        else:
            goal, delay = _HEALTHY, self._delay(group, group.healthy_threshold_count)
        if record.state == goal:
            record.next_state = record.next_at = None
        else:
            record.next_state, record.next_at = goal, now + delay

    def _registered(self, group: FakeTargetGroup, target_ids: list[str]) -> None:
        with self._mutex:
            now = time.monotonic()
            used = _in_use(group)
            for target_id in target_ids:
                self._draining.get(group.arn, {}).pop(target_id, None)
                record = self._targets.setdefault(group.arn, {}).setdefault(target_id, _Target())
                record.state, record.next_state, record.next_at = _INITIAL, None, None
                if used:
                    self._schedule(group, record, now)

    def _deregistered(self, group: FakeTargetGroup, targets: list[dict[str, Any]]) -> None:
        with self._mutex:
            delay = (
                float(str(group.attributes.get("deregistration_delay.timeout_seconds", 300)))
                * self.time_scale
            )
            until = time.monotonic() + delay
            for target in targets:
                record = self._targets.get(group.arn, {}).pop(target["Id"], None)
                if record is not None and record.failing:
                    # A mark set for this target stays for its next registration.
                    self._targets[group.arn][target["Id"]] = _Target(failing=record.failing)
                self._draining.setdefault(group.arn, {})[target["Id"]] = (
                    until,
                    {"Id": target["Id"], "Port": target.get("Port", group.port)},
                )

    def _draining_targets(self, group: FakeTargetGroup) -> list[dict[str, Any]]:
        now = time.monotonic()
        draining = self._draining.get(group.arn, {})
        for target_id in [i for i, (until, _) in draining.items() if until <= now]:
            del draining[target_id]
        return [target for _, target in draining.values()]

    def _health(
        self, group: FakeTargetGroup, target: dict[str, Any], base: FakeHealthStatus
    ) -> FakeHealthStatus:
        with self._mutex:
            now = time.monotonic()
            target_id = target["Id"]

            def status(state: tuple[str, str | None, str | None], port: Any) -> FakeHealthStatus:
                return FakeHealthStatus(target_id, port, group.health_check_port, *state)

            registered = group.targets.get(target_id)
            if registered is None:
                draining = self._draining.get(group.arn, {}).get(target_id)
                if draining is not None and draining[0] > now:
                    return status(
                        (
                            "draining",
                            "Target.DeregistrationInProgress",
                            "Target deregistration is in progress",
                        ),
                        draining[1]["Port"],
                    )
                return base
            if base.status != "healthy":  # e.g. a stopped instance: moto's answer is AWS's
                return base
            port = registered["Port"]
            if not group.health_check_enabled:
                return status(
                    ("unavailable", "Target.HealthCheckDisabled", "Health checks are disabled"), port
                )
            record = self._targets.setdefault(group.arn, {}).setdefault(target_id, _Target())
            if not _in_use(group):
                record.state, record.next_state, record.next_at = _INITIAL, None, None
                return status(
                    (
                        "unused",
                        "Target.NotInUse",
                        "Target group is not configured to receive traffic from the load balancer",
                    ),
                    port,
                )
            if record.next_state is None and record.state == _INITIAL:
                # The group came into use in a way no patched call saw (e.g. CloudFormation).
                self._schedule(group, record, now)
            record.settle(now)
            return status(record.state, port)

    def _usage_changed(self, backend: ELBv2Backend, before: dict[str, set[str]]) -> None:
        """After a listener or rule changed: groups that came into use start their checks over, and every
        group's LoadBalancerArns follows the listeners."""
        after = _groups_in_use(backend)
        with self._mutex:
            now = time.monotonic()
            for arn, group in backend.target_groups.items():
                group.load_balancer_arns = sorted(after.get(arn, set()))
                if arn in after and arn not in before:
                    for record in self._targets.get(arn, {}).values():
                        record.state = _INITIAL
                        self._schedule(group, record, now)

    # Installation -----------------------------------------------------------------------------------

    def install(self, stack: ExitStack) -> None:
        emulation = self
        original_register = FakeTargetGroup.register
        original_deregister = FakeTargetGroup.deregister
        original_health_for = FakeTargetGroup.health_for

        def register(group: FakeTargetGroup, targets: list[dict[str, Any]]) -> None:
            already = set(group.targets)
            original_register(group, targets)
            emulation._registered(group, [t["Id"] for t in targets if t["Id"] not in already])

        def deregister(group: FakeTargetGroup, targets: list[dict[str, Any]]) -> None:
            original_deregister(group, targets)
            emulation._deregistered(group, targets)

        def health_for(group: FakeTargetGroup, target: dict[str, Any], ec2_backend: Any) -> FakeHealthStatus:
            return emulation._health(group, target, original_health_for(group, target, ec2_backend))

        def describe_target_health(
            backend: ELBv2Backend, target_group_arn: str, targets: list[dict[str, Any]]
        ) -> list[FakeHealthStatus]:
            group = backend.target_groups.get(target_group_arn)
            if group is None:
                raise TargetGroupNotFoundError()
            if not targets:
                with emulation._mutex:
                    targets = list(group.targets.values()) + emulation._draining_targets(group)
            return [group.health_for(t, backend.ec2_backend) for t in targets]

        stack.enter_context(mock.patch.object(FakeTargetGroup, "register", register))
        stack.enter_context(mock.patch.object(FakeTargetGroup, "deregister", deregister))
        stack.enter_context(mock.patch.object(FakeTargetGroup, "health_for", health_for))
        stack.enter_context(mock.patch.object(ELBv2Backend, "describe_target_health", describe_target_health))
        for name, check in {
            "create_listener": _check_create_listener,
            "modify_listener": _check_modify_listener,
            "create_rule": _check_create_rule,
            "modify_rule": _check_modify_rule,
            "delete_listener": None,
            "delete_rule": None,
            "delete_load_balancer": None,
        }.items():
            stack.enter_context(
                mock.patch.object(ELBv2Backend, name, self._tracking(getattr(ELBv2Backend, name), check))
            )

    def _tracking(
        self, original: Callable[..., Any], check: Callable[[ELBv2Backend, dict[str, Any]], None] | None
    ) -> Callable[..., Any]:
        emulation = self
        signature = inspect.signature(original)

        def tracked(backend: ELBv2Backend, *args: Any, **kwargs: Any) -> Any:
            if check is not None:
                bound = signature.bind(backend, *args, **kwargs)
                bound.apply_defaults()
                check(backend, bound.arguments)
            before = _groups_in_use(backend)
            result = original(backend, *args, **kwargs)
            emulation._usage_changed(backend, before)
            return result

        return tracked


def _find_group(target_group_arn: str) -> FakeTargetGroup | None:
    # arn:aws:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<id>
    _, _, _, region, account, _ = target_group_arn.split(":", 5)
    group: FakeTargetGroup | None = elbv2_backends[account][region].target_groups.get(target_group_arn)
    return group


def _in_use(group: FakeTargetGroup) -> bool:
    return bool(load_balancers_forwarding_to(elbv2_backends[group.account_id][group.region_name], group.arn))


# Forward action validation --------------------------------------------------------------------------


def _check_create_listener(backend: ELBv2Backend, args: dict[str, Any]) -> None:
    if args["load_balancer_arn"] in backend.load_balancers:
        _check_actions(
            backend, args["load_balancer_arn"], args["protocol"], args["actions"], "defaultActions"
        )


def _check_modify_listener(backend: ELBv2Backend, args: dict[str, Any]) -> None:
    listener = backend.describe_listeners(None, [args["arn"]])[0]
    protocol = args["protocol"] or listener.protocol
    _check_actions(backend, listener.load_balancer_arn, protocol, args["actions"] or [], "defaultActions")


def _check_create_rule(backend: ELBv2Backend, args: dict[str, Any]) -> None:
    listeners = backend.describe_listeners(None, [args["listener_arn"]])
    if listeners:
        listener = listeners[0]
        _check_actions(backend, listener.load_balancer_arn, listener.protocol, args["actions"], "actions")


def _check_modify_rule(backend: ELBv2Backend, args: dict[str, Any]) -> None:
    for balancer in backend.load_balancers.values():
        for listener in balancer.listeners.values():
            if args["rule_arn"] in {rule.arn for rule in listener.rules.values()}:
                _check_actions(
                    backend, listener.load_balancer_arn, listener.protocol, args["actions"] or [], "actions"
                )
                return


def _check_actions(
    backend: ELBv2Backend, balancer_arn: str, protocol: str, actions: list[dict[str, Any]], member: str
) -> None:
    balancer = backend.load_balancers[balancer_arn]
    for index, action in enumerate(actions, start=1):
        if action.get("Type") != "forward":
            continue
        tuples = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
        for position, weighted in enumerate(tuples, start=1):
            weight = weighted.get("Weight")
            if weight is not None and not 0 <= int(weight) <= MAX_WEIGHT:
                bound = (
                    "greater than or equal to 0" if int(weight) < 0 else f"less than or equal to {MAX_WEIGHT}"
                )
                raise ELBClientError(
                    "ValidationError",
                    f"1 validation error detected: Value '{weight}' at '{member}.{index}.member.forwardConfig."
                    f"targetGroups.{position}.member.weight' failed to satisfy constraint: Member must have "
                    f"value {bound}",
                )
        single = action.get("TargetGroupArn")
        if single and tuples and [t["TargetGroupArn"] for t in tuples] != [single]:
            raise ELBClientError(
                "InvalidLoadBalancerAction",
                "With both TargetGroupArn and ForwardConfig, ForwardConfig can hold only the target group "
                "given in TargetGroupArn.",
            )
        for arn in target_groups_of(action):
            group = backend.target_groups.get(arn)
            if group is None:
                raise TargetGroupNotFoundError()
            others = load_balancers_forwarding_to(backend, arn) - {balancer_arn}
            if others:
                raise ELBClientError(
                    "TargetGroupAssociationLimit",
                    f"The following target groups cannot be associated with more than one load balancer: {arn}",
                )
            if not _suits(balancer.type, group):
                raise ELBClientError(
                    "IncompatibleProtocols",
                    f"Listener protocol '{protocol}' is not supported with a target group with the protocol "
                    f"'{group.protocol}'",
                )


def _suits(balancer_type: str, group: FakeTargetGroup) -> bool:
    if balancer_type == "application":
        return group.target_type == "lambda" or group.protocol in _APPLICATION_PROTOCOLS
    if balancer_type == "network":
        return group.protocol in _NETWORK_PROTOCOLS
    return bool(group.protocol == "GENEVE")
