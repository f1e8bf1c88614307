"""Elastic Load Balancing v2 adapter: a listener's weighted forward action, and its target groups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opsflow.aws.errors import aws_call
from opsflow.errors import NotFound, Refused

if TYPE_CHECKING:
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_elbv2.type_defs import ActionTypeDef, ForwardActionConfigTypeDef

# A forward action to one target group (`TargetGroupArn` alone) sends it all the traffic.
WHOLE = 100


def display_name(arn: str) -> str:
    """A target group's or listener's name as the console shows it."""
    parts = arn.split(":")[-1].split("/")
    if parts[0] == "targetgroup" and len(parts) > 1:
        return parts[1]
    if parts[0] == "listener" and len(parts) > 4:
        return f"{parts[2]}/{parts[-1][:8]}"
    return arn


@dataclass(frozen=True)
class Listener:
    arn: str
    load_balancer_arn: str
    protocol: str
    port: int
    weights: dict[str, int]  # target group ARN -> weight, from the default forward action
    forwards_only: bool = True  # the default action is one forward, nothing else


@dataclass(frozen=True)
class TargetGroup:
    arn: str
    name: str
    protocol: str
    load_balancer_arns: list[str]


def _forward_weights(action: Any) -> dict[str, int]:
    groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
    if groups:
        # A tuple described without a Weight is one AWS stores with its default weight, 1.
        return {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in groups}
    if action.get("TargetGroupArn"):
        return {action["TargetGroupArn"]: WHOLE}
    return {}


def _listener(raw: Any) -> Listener:
    weights: dict[str, int] = {}
    actions = raw.get("DefaultActions", [])
    for action in actions:
        if action.get("Type") == "forward":
            weights.update(_forward_weights(action))
    return Listener(
        arn=raw["ListenerArn"],
        load_balancer_arn=raw.get("LoadBalancerArn", ""),
        protocol=raw.get("Protocol", ""),
        port=int(raw.get("Port", 0)),
        weights=weights,
        forwards_only=len(actions) == 1 and actions[0].get("Type") == "forward",
    )


class Elbv2:
    def __init__(self, client: ElasticLoadBalancingv2Client) -> None:
        self._elbv2 = client

    def _raw_listener(self, listener_arn: str) -> Any:
        with aws_call("DescribeListeners", not_found=f"listener {listener_arn} does not exist"):
            found = self._elbv2.describe_listeners(ListenerArns=[listener_arn])["Listeners"]
        if not found:
            raise NotFound(f"listener {listener_arn} does not exist")
        return found[0]

    def listener(self, listener_arn: str) -> Listener:
        return _listener(self._raw_listener(listener_arn))

    def set_weights(self, listener_arn: str, weights: dict[str, int]) -> None:
        """Make the listener's default action one forward to these target groups with these weights,
        keeping the stickiness it had. Only a listener whose default action is a lone forward is changed:
        replacing an authenticate or redirect action would silently open or break the application."""
        if not weights:
            raise ValueError("set_weights needs at least one target group")
        actions = self._raw_listener(listener_arn).get("DefaultActions", [])
        if len(actions) != 1 or actions[0].get("Type") != "forward":
            kinds = ", ".join(a.get("Type", "?") for a in actions) or "none"
            raise Refused(
                f"listener {listener_arn} has default actions ({kinds}), not a single forward: "
                "Opsflow only shifts traffic on a listener that just forwards"
            )
        forward_config: ForwardActionConfigTypeDef = {
            "TargetGroups": [{"TargetGroupArn": arn, "Weight": weight} for arn, weight in weights.items()]
        }
        stickiness = (actions[0].get("ForwardConfig") or {}).get("TargetGroupStickinessConfig")
        if stickiness:
            forward_config["TargetGroupStickinessConfig"] = stickiness
        action: ActionTypeDef = {"Type": "forward", "ForwardConfig": forward_config}
        with aws_call("ModifyListener", not_found=f"listener {listener_arn} does not exist"):
            self._elbv2.modify_listener(ListenerArn=listener_arn, DefaultActions=[action])

    def rules_forwarding(self, listener_arn: str) -> dict[str, list[str]]:
        """Priority -> target groups, for each rule of the listener other than its default that forwards."""
        found: dict[str, list[str]] = {}
        with aws_call("DescribeRules", not_found=f"listener {listener_arn} does not exist"):
            for page in self._elbv2.get_paginator("describe_rules").paginate(ListenerArn=listener_arn):
                for rule in page["Rules"]:
                    if rule.get("IsDefault"):
                        continue
                    groups = [
                        arn
                        for action in rule.get("Actions", [])
                        if action.get("Type") == "forward"
                        for arn in _forward_weights(action)
                    ]
                    if groups:
                        found[str(rule.get("Priority"))] = groups
        return found

    def target_health(self, target_group_arn: str) -> dict[str, str]:
        """Target id -> state (initial, healthy, unhealthy, unused, draining, unavailable)."""
        with aws_call("DescribeTargetHealth", not_found=f"target group {target_group_arn} does not exist"):
            found = self._elbv2.describe_target_health(TargetGroupArn=target_group_arn)
        return {
            d["Target"]["Id"]: d.get("TargetHealth", {}).get("State", "unknown")
            for d in found["TargetHealthDescriptions"]
        }

    def target_group(self, target_group_arn: str) -> TargetGroup:
        with aws_call("DescribeTargetGroups", not_found=f"target group {target_group_arn} does not exist"):
            found = self._elbv2.describe_target_groups(TargetGroupArns=[target_group_arn])["TargetGroups"]
        if not found:
            raise NotFound(f"target group {target_group_arn} does not exist")
        raw = found[0]
        return TargetGroup(
            arn=raw["TargetGroupArn"],
            name=raw.get("TargetGroupName", ""),
            protocol=raw.get("Protocol", ""),
            load_balancer_arns=list(raw.get("LoadBalancerArns", [])),
        )
