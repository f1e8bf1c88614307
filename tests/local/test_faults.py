"""Failures on purpose come from where AWS would raise them: an API call answered with the service's
error, or a Lambda invocation failing before or after its handler ran."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import boto3
import pytest
from botocore.exceptions import ClientError

from opsflow_local.faults import Faults, InjectedFailure


@pytest.fixture
def faults(mocked_aws: None) -> Iterator[Faults]:
    with ExitStack() as stack:
        injected = Faults()
        injected.install(stack)
        yield injected


def groups() -> list[str]:
    return [
        g["AutoScalingGroupName"]
        for g in boto3.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    ]


def test_a_call_fails_with_the_error_asked_for_as_often_as_asked(faults: Faults) -> None:
    faults.fail_call("autoscaling", "DescribeAutoScalingGroups", "Throttling", "Rate exceeded", times=2)
    for _ in range(2):
        with pytest.raises(ClientError) as failed:
            groups()
        assert failed.value.response["Error"] == {"Code": "Throttling", "Message": "Rate exceeded"}
    assert groups() == []


def test_only_the_named_callers_calls_with_matching_parameters_fail(faults: Faults) -> None:
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name="/a", Value="1", Type="String")
    ssm.put_parameter(Name="/b", Value="2", Type="String")
    faults.fail_call(
        "ssm",
        "GetParameter",
        "AccessDeniedException",
        caller="steps",
        when=lambda p: p["Name"] == "/a",
        times=None,
    )
    assert ssm.get_parameter(Name="/a")["Parameter"]["Value"] == "1"  # not the caller
    assert faults.invoke("other", {}, lambda: ssm.get_parameter(Name="/a"))["Parameter"]["Value"] == "1"

    def as_steps(name: str) -> str:
        return faults.invoke("steps", {}, lambda: ssm.get_parameter(Name=name))["Parameter"]["Value"]

    assert as_steps("/b") == "2"  # not the parameter
    for _ in range(2):
        with pytest.raises(ClientError, match="AccessDeniedException"):
            as_steps("/a")


def test_an_invocation_fails_on_its_nth_match_before_or_after_the_handler_ran(faults: Faults) -> None:
    ran: list[str] = []
    faults.fail_invocation(
        "steps", "lost answer", when=lambda e: e["step"] == "shift", nth=2, after_running=True
    )
    faults.fail_invocation("steps", "never ran", when=lambda e: e["step"] == "watch")

    def invoke(step: str) -> str:
        return faults.invoke("steps", {"step": step}, lambda: ran.append(step) or step)

    assert invoke("shift") == "shift"
    with pytest.raises(InjectedFailure, match="lost answer"):
        invoke("shift")
    with pytest.raises(InjectedFailure, match="never ran"):
        invoke("watch")
    assert invoke("shift") == "shift"
    assert invoke("watch") == "watch"
    assert ran == ["shift", "shift", "shift", "watch"]


def test_faults_end_with_their_block(faults: Faults) -> None:
    with faults.only_here():
        faults.fail_call("autoscaling", "DescribeAutoScalingGroups", "Throttling", times=None)
        with pytest.raises(ClientError):
            groups()
    assert groups() == []
