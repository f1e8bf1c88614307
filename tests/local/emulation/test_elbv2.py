"""The ELBv2 emulation against the Elastic Load Balancing API Reference (DescribeTargetHealth and TargetHealth,
RegisterTargets, DeregisterTargets, ModifyListener, CreateRule, ModifyRule, Action, ForwardActionConfig,
TargetGroupTuple) and the Application Load Balancers User Guide (health checks, deregistration delay,
quotas)."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from opsflow_local.emulation.elbv2 import Elbv2Emulation

from .conftest import Alb

pytestmark = pytest.mark.usefixtures("elbv2_emulation")

SCALE = 0.001  # the fixture's time_scale: seconds per AWS second


def elbv2() -> Any:
    return boto3.client("elbv2", region_name="us-east-1")


def forward(*weighted: tuple[str, int]) -> list[dict[str, Any]]:
    return [
        {
            "Type": "forward",
            "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": arn, "Weight": w} for arn, w in weighted]},
        }
    ]


def health(target_group_arn: str, targets: list[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Target id -> TargetHealth, as DescribeTargetHealth lists them."""
    found = elbv2().describe_target_health(TargetGroupArn=target_group_arn, Targets=targets or [])
    return {d["Target"]["Id"]: d["TargetHealth"] for d in found["TargetHealthDescriptions"]}


def wait_for(target_group_arn: str, target_id: str, state: str | None, timeout: float = 5) -> float:
    """The monotonic time at which the target was seen in `state` (None: no longer listed)."""
    deadline = time.monotonic() + timeout
    while True:
        seen = health(target_group_arn).get(target_id)
        if (seen or {}).get("State") == state or (state is None and seen is None):
            return time.monotonic()
        assert time.monotonic() < deadline, seen
        time.sleep(0.002)


def weights(listener_arn: str) -> dict[str, int]:
    action = elbv2().describe_listeners(ListenerArns=[listener_arn])["Listeners"][0]["DefaultActions"][0]
    return {t["TargetGroupArn"]: t["Weight"] for t in action["ForwardConfig"]["TargetGroups"]}


def error_code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


# Target health ------------------------------------------------------------------------------------


def test_a_registered_target_is_initial_until_it_passes_the_healthy_threshold(alb: Alb) -> None:
    """TargetHealth: `initial` (Elb.InitialHealthChecking) while the load balancer sends the minimum number
    of health checks, then `healthy`: HealthyThresholdCount checks, HealthCheckIntervalSeconds apart."""
    elbv2().modify_target_group(
        TargetGroupArn=alb.blue_arn, HealthCheckIntervalSeconds=30, HealthyThresholdCount=10
    )
    registered = time.monotonic()
    elbv2().register_targets(TargetGroupArn=alb.blue_arn, Targets=[{"Id": "10.20.1.10", "Port": 8080}])
    first = health(alb.blue_arn)["10.20.1.10"]
    assert (first["State"], first["Reason"]) == ("initial", "Elb.InitialHealthChecking")
    assert wait_for(alb.blue_arn, "10.20.1.10", "healthy") - registered >= 30 * 10 * SCALE
    assert "Reason" not in health(alb.blue_arn)["10.20.1.10"]


def test_targets_are_unused_while_no_listener_forwards_to_their_group(alb: Alb) -> None:
    """Target.NotInUse: "the target group is not used by any load balancer". Health checks start when a
    listener forwards to the group, and DescribeTargetGroups' LoadBalancerArns follows the listener."""
    idle = elbv2().create_target_group(
        Name="web-idle",
        Protocol="HTTP",
        Port=8080,
        VpcId=alb.vpc_id,
        TargetType="ip",
        HealthyThresholdCount=10,
        # 10 checks 150 s apart: 1.5 s of compressed time in `initial`, room for a loaded machine.
        HealthCheckIntervalSeconds=150,
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2().register_targets(TargetGroupArn=idle, Targets=[{"Id": "10.20.1.11", "Port": 8080}])
    time.sleep(150 * 10 * SCALE)  # its checks would have passed by now, were the group in use
    unused = health(idle)["10.20.1.11"]
    assert (unused["State"], unused["Reason"]) == ("unused", "Target.NotInUse")

    used = time.monotonic()
    elbv2().modify_listener(
        ListenerArn=alb.listener_arn, DefaultActions=forward((alb.blue_arn, 100), (idle, 0))
    )
    assert health(idle)["10.20.1.11"]["State"] == "initial"
    assert wait_for(idle, "10.20.1.11", "healthy") - used >= 150 * 10 * SCALE
    groups = {
        g["TargetGroupArn"]: g["LoadBalancerArns"]
        for g in elbv2().describe_target_groups(TargetGroupArns=[idle, alb.green_arn])["TargetGroups"]
    }
    assert groups == {idle: [alb.load_balancer_arn], alb.green_arn: []}


def test_a_deregistered_target_drains_for_the_deregistration_delay(alb: Alb) -> None:
    """DeregisterTargets: the target is `draining` (Target.DeregistrationInProgress) for
    deregistration_delay.timeout_seconds, listed meanwhile; then it is no longer registered."""
    target = {"Id": "10.20.1.12", "Port": 8080}
    elbv2().register_targets(TargetGroupArn=alb.blue_arn, Targets=[target])
    wait_for(alb.blue_arn, "10.20.1.12", "healthy")
    elbv2().modify_target_group_attributes(
        TargetGroupArn=alb.blue_arn,
        Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "300"}],
    )
    deregistered = time.monotonic()
    elbv2().deregister_targets(TargetGroupArn=alb.blue_arn, Targets=[target])
    draining = health(alb.blue_arn)["10.20.1.12"]
    assert (draining["State"], draining["Reason"]) == ("draining", "Target.DeregistrationInProgress")
    assert wait_for(alb.blue_arn, "10.20.1.12", None) - deregistered >= 300 * SCALE
    gone = health(alb.blue_arn, [target])["10.20.1.12"]
    assert (gone["State"], gone["Reason"]) == ("unused", "Target.NotRegistered")


def test_a_target_failing_its_checks_turns_unhealthy_and_recovers(
    alb: Alb, elbv2_emulation: Elbv2Emulation
) -> None:
    """TargetHealth `unhealthy` with the reason code after UnhealthyThresholdCount failed checks; healthy
    again after HealthyThresholdCount passed ones. Other targets are not affected."""
    elbv2().register_targets(
        TargetGroupArn=alb.blue_arn,
        Targets=[{"Id": "10.20.1.13", "Port": 8080}, {"Id": "10.20.1.14", "Port": 8080}],
    )
    wait_for(alb.blue_arn, "10.20.1.13", "healthy")
    elbv2_emulation.set_unhealthy(alb.blue_arn, "10.20.1.13", reason="Target.ResponseCodeMismatch")
    wait_for(alb.blue_arn, "10.20.1.13", "unhealthy")
    seen = health(alb.blue_arn)
    assert seen["10.20.1.13"]["Reason"] == "Target.ResponseCodeMismatch"
    assert "502" in seen["10.20.1.13"]["Description"]
    assert seen["10.20.1.14"]["State"] == "healthy"
    elbv2().modify_target_group(TargetGroupArn=alb.blue_arn, HealthyThresholdCount=10)
    elbv2_emulation.set_healthy(alb.blue_arn, "10.20.1.13")
    assert health(alb.blue_arn)["10.20.1.13"]["State"] == "unhealthy"
    wait_for(alb.blue_arn, "10.20.1.13", "healthy")


def test_a_failing_group_makes_new_targets_unhealthy_without_passing_through_healthy(
    alb: Alb, elbv2_emulation: Elbv2Emulation
) -> None:
    """A target whose first checks fail goes from `initial` to `unhealthy` (Target.FailedHealthChecks) after
    UnhealthyThresholdCount checks."""
    elbv2().modify_target_group(
        TargetGroupArn=alb.green_arn, HealthCheckIntervalSeconds=30, UnhealthyThresholdCount=10
    )
    elbv2_emulation.set_unhealthy(alb.green_arn)
    registered = time.monotonic()
    elbv2().register_targets(TargetGroupArn=alb.green_arn, Targets=[{"Id": "10.20.2.10", "Port": 8080}])
    states, deadline = [], registered + 5
    while (state := health(alb.green_arn)["10.20.2.10"])["State"] != "unhealthy":
        states.append(state["State"])
        assert time.monotonic() < deadline, states
        time.sleep(0.002)
    assert time.monotonic() - registered >= 30 * 10 * SCALE
    assert set(states) == {"initial"}
    assert state["Reason"] == "Target.FailedHealthChecks"


# Weighted forward actions -------------------------------------------------------------------------


def test_weighted_target_groups_are_kept_and_described(alb: Alb) -> None:
    """ForwardActionConfig: ModifyListener shifts the weights; DescribeListeners and the listener's default
    rule return them with TargetGroupStickinessConfig. (moto already does this: the test guards it.)"""
    for blue, green in ((90, 10), (50, 50), (0, 100)):
        elbv2().modify_listener(
            ListenerArn=alb.listener_arn, DefaultActions=forward((alb.blue_arn, blue), (alb.green_arn, green))
        )
        assert weights(alb.listener_arn) == {alb.blue_arn: blue, alb.green_arn: green}
    rule = elbv2().describe_rules(ListenerArn=alb.listener_arn)["Rules"][0]
    assert rule["IsDefault"]
    assert rule["Actions"][0]["ForwardConfig"]["TargetGroups"] == [
        {"TargetGroupArn": alb.blue_arn, "Weight": 0},
        {"TargetGroupArn": alb.green_arn, "Weight": 100},
    ]
    assert rule["Actions"][0]["ForwardConfig"]["TargetGroupStickinessConfig"] == {"Enabled": False}


@pytest.mark.parametrize("weight", [1000, -1])
def test_weights_outside_0_to_999_are_refused(alb: Alb, weight: int) -> None:
    """TargetGroupTuple: "The range is 0 to 999"."""
    with pytest.raises(ClientError) as error:
        elbv2().modify_listener(
            ListenerArn=alb.listener_arn, DefaultActions=forward((alb.blue_arn, weight), (alb.green_arn, 0))
        )
    assert error_code(error) == "ValidationError"
    assert weights(alb.listener_arn) == {alb.blue_arn: 100, alb.green_arn: 0}


def test_rules_check_their_weights_too(alb: Alb) -> None:
    """CreateRule and ModifyRule take the same Action as ModifyListener."""
    conditions = [{"Field": "path-pattern", "Values": ["/api/*"]}]
    with pytest.raises(ClientError) as error:
        elbv2().create_rule(
            ListenerArn=alb.listener_arn,
            Priority=10,
            Conditions=conditions,
            Actions=forward((alb.blue_arn, 1000)),
        )
    assert error_code(error) == "ValidationError"
    rule_arn = elbv2().create_rule(
        ListenerArn=alb.listener_arn, Priority=10, Conditions=conditions, Actions=forward((alb.blue_arn, 1))
    )["Rules"][0]["RuleArn"]
    with pytest.raises(ClientError) as error:
        elbv2().modify_rule(RuleArn=rule_arn, Actions=forward((alb.blue_arn, 1), (alb.green_arn, 1000)))
    assert error_code(error) == "ValidationError"


def test_forwarding_to_a_missing_target_group_is_refused(alb: Alb) -> None:
    """ModifyListener: TargetGroupNotFound."""
    missing = alb.green_arn.replace("web-green", "web-gone")
    with pytest.raises(ClientError) as error:
        elbv2().modify_listener(
            ListenerArn=alb.listener_arn, DefaultActions=forward((alb.blue_arn, 50), (missing, 50))
        )
    assert error_code(error) == "TargetGroupNotFound"
    assert weights(alb.listener_arn) == {alb.blue_arn: 100, alb.green_arn: 0}


def test_a_target_group_serves_one_load_balancer_only(alb: Alb) -> None:
    """Quotas: load balancers per target group, 1. Forwarding another load balancer's listener or rule to a
    group already in use is refused with TargetGroupAssociationLimit."""
    other = elbv2().create_load_balancer(Name="other", Subnets=list(alb.subnet_ids))["LoadBalancers"][0][
        "LoadBalancerArn"
    ]
    with pytest.raises(ClientError) as error:
        elbv2().create_listener(
            LoadBalancerArn=other, Protocol="HTTP", Port=80, DefaultActions=forward((alb.green_arn, 1))
        )
    assert error_code(error) == "TargetGroupAssociationLimit"
    own = elbv2().create_target_group(
        Name="other", Protocol="HTTP", Port=8080, VpcId=alb.vpc_id, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    listener = elbv2().create_listener(
        LoadBalancerArn=other, Protocol="HTTP", Port=80, DefaultActions=forward((own, 1))
    )["Listeners"][0]["ListenerArn"]
    with pytest.raises(ClientError) as error:
        elbv2().modify_listener(ListenerArn=listener, DefaultActions=forward((own, 90), (alb.blue_arn, 10)))
    assert error_code(error) == "TargetGroupAssociationLimit"
    with pytest.raises(ClientError) as error:
        elbv2().create_rule(
            ListenerArn=listener,
            Priority=1,
            Conditions=[{"Field": "path-pattern", "Values": ["/green/*"]}],
            Actions=forward((alb.green_arn, 1)),
        )
    assert error_code(error) == "TargetGroupAssociationLimit"


def test_a_target_group_of_another_protocol_is_refused(alb: Alb) -> None:
    """IncompatibleProtocols: an Application Load Balancer's HTTP listener cannot forward to a TCP group."""
    tcp = elbv2().create_target_group(
        Name="web-tcp", Protocol="TCP", Port=8080, VpcId=alb.vpc_id, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    with pytest.raises(ClientError) as error:
        elbv2().modify_listener(
            ListenerArn=alb.listener_arn, DefaultActions=forward((alb.blue_arn, 50), (tcp, 50))
        )
    assert error_code(error) == "IncompatibleProtocols"
    assert weights(alb.listener_arn) == {alb.blue_arn: 100, alb.green_arn: 0}


def test_target_group_arn_and_forward_config_must_name_the_same_group(alb: Alb) -> None:
    """Action: "If you specify both ForwardConfig and TargetGroupArn, you can specify only one target group
    using ForwardConfig and it must be the same target group specified in TargetGroupArn." """
    with pytest.raises(ClientError) as error:
        elbv2().modify_listener(
            ListenerArn=alb.listener_arn,
            DefaultActions=[{**forward((alb.blue_arn, 1))[0], "TargetGroupArn": alb.green_arn}],
        )
    assert error_code(error) == "InvalidLoadBalancerAction"
    elbv2().modify_listener(
        ListenerArn=alb.listener_arn,
        DefaultActions=[{**forward((alb.blue_arn, 1))[0], "TargetGroupArn": alb.blue_arn}],
    )
    assert weights(alb.listener_arn) == {alb.blue_arn: 1}
