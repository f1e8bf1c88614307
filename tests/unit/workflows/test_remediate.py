"""The remediate workflow's pre-flight and steps on fakes: what it refuses to touch, whether a resource still
needs it, and how a reboot or a stop-and-start is watched until it helped or its time ran out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opsflow.aws.ec2 import Instance, InstanceStatus
from opsflow.aws.ecs import Deployment, ServiceDetail
from opsflow.aws.ssm import Automation, Document
from opsflow.aws.target import Target
from opsflow.errors import Busy, NotOptedIn, Refused
from opsflow.remediation.rules import RemediationRule
from opsflow.runs.config import OptIn
from opsflow.store.locks import InMemoryLockStore
from opsflow.workflows.remediate import preflight, steps
from opsflow.workflows.remediate.request import RemediateRequest

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
TAGS = {"opsflow:managed": "true", "opsflow:environment": "prod", "aws:autoscaling:groupName": "web"}


@dataclass
class FakeEc2:
    tags: dict[str, str] = field(default_factory=lambda: dict(TAGS))
    status: InstanceStatus = field(default_factory=lambda: InstanceStatus("running", "ok", "impaired"))
    instance_store: bool = False
    calls: list[str] = field(default_factory=list)

    def describe_instance(self, instance_id: str) -> Instance:
        return Instance(instance_id, self.status.state, self.tags, "/dev/xvda", ["/dev/xvda"], "m7g.large")

    def has_instance_store(self, instance_type: str) -> bool:
        return self.instance_store

    def instance_status(self, instance_id: str) -> InstanceStatus:
        return self.status

    def reboot_instances(self, ids: list[str]) -> None:
        self.calls.append(f"reboot {ids[0]}")

    def stop_instances(self, ids: list[str]) -> None:
        self.calls.append(f"stop {ids[0]}")

    def start_instances(self, ids: list[str]) -> None:
        self.calls.append(f"start {ids[0]}")


@dataclass
class FakeCloudWatch:
    states: dict[str, str] = field(default_factory=lambda: {"web-status": "ALARM"})

    def alarm_states(self, names: list[str]) -> dict[str, str]:
        return {n: self.states[n] for n in names if n in self.states}


def service(rollout: str, running: int = 2, deployments: int = 1, failed: int = 0) -> ServiceDetail:
    primary = Deployment("ecs-svc/2", "PRIMARY", rollout, "web:7", 2, running, failed)
    older = [Deployment("ecs-svc/1", "ACTIVE", "COMPLETED", "web:7", 2, 0)] * (deployments - 1)
    return ServiceDetail(
        cluster_arn="arn:aws:ecs:us-east-1:111111111111:cluster/prod",
        service_arn="arn:aws:ecs:us-east-1:111111111111:service/prod/web",
        name="web",
        status="ACTIVE",
        task_definition="web:7",
        desired_count=2,
        running_count=running,
        pending_count=0,
        deployments=[primary, *older],
        load_balancers=[],
        tags={"opsflow:managed": "true", "opsflow:environment": "prod"},
        launch_type="FARGATE",
        capacity_provider_strategy=[],
        network_configuration=None,
        health_check_grace_period_seconds=None,
        events=("(service web) has started 1 tasks",),
    )


@dataclass
class FakeEcs:
    detail: ServiceDetail = field(default_factory=lambda: service("IN_PROGRESS", running=1, failed=3))
    calls: list[str] = field(default_factory=list)

    def describe_service(self, cluster: str, name: str) -> ServiceDetail:
        return self.detail

    def force_new_deployment(self, cluster: str, name: str) -> None:
        self.calls.append(f"redeploy {cluster}/{name}")
        self.detail = service("IN_PROGRESS", running=1, deployments=2)


@dataclass
class FakeSsm:
    status: str = "InProgress"
    failure: str = ""
    started: list[dict[str, Any]] = field(default_factory=list)

    def document(self, name: str, version: str | None = None) -> Document:
        return Document(name, "Automation", {"InstanceId": False, "AutomationAssumeRole": True})

    def start_automation(
        self, document: str, version: str | None, parameters: dict[str, list[str]], token: str
    ) -> str:
        self.started.append({"document": document, "parameters": parameters, "token": token})
        return "exec-1"

    def automation(self, execution_id: str) -> Automation:
        return Automation(execution_id, self.status, self.failure)


@dataclass
class FakeAws:
    ec2: FakeEc2 = field(default_factory=FakeEc2)
    cloudwatch: FakeCloudWatch = field(default_factory=FakeCloudWatch)
    ecs: FakeEcs = field(default_factory=FakeEcs)
    ssm: FakeSsm = field(default_factory=FakeSsm)
    events: Any = None


def request(**changes: Any) -> RemediateRequest:
    body = {
        "workflow": "remediate",
        "rule": "web-reboot",
        "resource_kind": "instance",
        "resource": "i-1",
        "group": "web",
        "alarm_name": "web-status",
        "cause": "alarm web-status went to ALARM",
        "action": "reboot",
        "outcome_timeout_minutes": 15,
        **changes,
    }
    return RemediateRequest.model_validate(body)


def rule(**changes: Any) -> RemediationRule:
    return RemediationRule.model_validate(
        {"trigger": {"kind": "status_check"}, "action": {"kind": "reboot"}, "cooldown_minutes": 30, **changes}
    )


def plan(
    aws: FakeAws, the_rule: RemediationRule | None = None, locks: InMemoryLockStore | None = None, **req: Any
) -> dict[str, Any]:
    return preflight.check(
        request(**req),
        the_rule or rule(),
        aws,
        OptIn(),
        "opsflow:environment",
        locks or InMemoryLockStore(),
    )


def state(the_request: RemediateRequest, **results: Any) -> steps.RemediateState:
    return steps.RemediateState.model_validate(
        {
            "run_id": "remediate-1",
            "workflow": "remediate",
            "target": "instance:i-1",
            "request": the_request.model_dump(mode="json"),
            **results,
        }
    )


def test_the_plan_names_the_rule_action_and_what_says_it_helped() -> None:
    found = plan(FakeAws())
    assert found["action"] == "reboot"
    assert (found["group"], found["environment"]) == ("web", "prod")
    assert found["waits_for"] == "instance i-1 running with both status checks ok"


def test_an_instance_without_the_opt_in_tag_is_left_alone() -> None:
    aws = FakeAws(ec2=FakeEc2(tags={"opsflow:environment": "prod"}))
    with pytest.raises(NotOptedIn, match="not tagged opsflow:managed=true"):
        plan(aws)


def test_an_instance_outside_the_rules_scope_is_refused() -> None:
    with pytest.raises(Refused, match="in environment prod, not staging"):
        plan(FakeAws(), rule(scope={"environment": "staging"}))
    with pytest.raises(Refused, match="in group web, not jobs"):
        plan(FakeAws(), rule(scope={"asg_name": "jobs"}))
    with pytest.raises(Refused, match="lacks tier=front"):
        plan(FakeAws(), rule(scope={"tags": {"tier": "front"}}))


def test_an_instance_whose_group_or_environment_another_run_holds_is_left_alone() -> None:
    locks = InMemoryLockStore()
    locks.acquire("asg:web", "asg-refresh-7", 3600)
    with pytest.raises(Busy, match="asg web, which instance i-1 belongs to, is held by run asg-refresh-7"):
        plan(FakeAws(), locks=locks)
    locks = InMemoryLockStore()
    locks.acquire("env:prod", "env-power-3", 3600)
    with pytest.raises(Busy, match="held by run env-power-3"):
        plan(FakeAws(), locks=locks)


def test_a_stop_is_refused_for_an_instance_with_instance_store_volumes() -> None:
    aws = FakeAws(ec2=FakeEc2(instance_store=True))
    with pytest.raises(Refused, match="instance store volumes, whose data a stop loses"):
        plan(aws, rule(action={"kind": "stop_start"}))
    assert plan(aws)["action"] == "reboot"  # a reboot keeps them


def test_a_resource_that_recovered_by_itself_is_not_acted_on() -> None:
    aws = FakeAws(cloudwatch=FakeCloudWatch({"web-status": "OK"}))
    checked = steps.check(state(request()), aws)
    assert not checked.needed
    assert checked.found == "alarm web-status is OK"

    gone = FakeAws(ec2=FakeEc2(status=InstanceStatus("terminated", "not-applicable", "not-applicable")))
    assert not steps.check(state(request()), gone).needed


def test_a_reboot_helped_once_the_instance_passes_both_checks() -> None:
    aws = FakeAws()
    acted = steps.act(state(request()), aws, T0)
    assert aws.ec2.calls == ["reboot i-1"]
    after = state(request(), act=acted.model_dump())

    still = steps.watch(after, aws, T0 + timedelta(minutes=2))
    assert (still.verdict, still.waiting) == ("watching", True)

    aws.ec2.status = InstanceStatus("running", "ok", "ok")
    helped = steps.watch(after, aws, T0 + timedelta(minutes=4))
    assert helped.verdict == "helped"
    assert steps.outcome_of(state(request(), act=acted.model_dump(), watch=helped.model_dump())) == "helped"


def test_a_reboot_that_did_not_help_in_time_says_so() -> None:
    """Its time is counted in the waits' own lengths: three reconcile intervals of 300 s are 15 min."""
    aws = FakeAws()
    the_request = request()
    acted = steps.act(state(the_request), aws, T0).model_dump()
    watched = steps.watch(state(the_request, act=acted), aws, T0)
    assert (watched.verdict, watched.waited_seconds, watched.wait_seconds) == ("watching", 0, 300)

    timed_out = {"Error": "States.Timeout", "Cause": ""}
    for looks in range(1, 4):
        watched = steps.watch(
            state(the_request, act=acted, watch=watched.model_dump(), wake=timed_out), aws, T0
        )
        assert watched.waited_seconds == looks * 300
    assert watched.verdict == "did not help"
    error = steps.run_error(state(the_request, act=acted, watch=watched.model_dump()))
    assert error["error"] == "DidNotHelp"
    assert (
        "did not help within 15 min: running, system status ok, instance status impaired" in error["message"]
    )


def test_an_event_counts_the_time_until_it_came_and_the_last_wait_is_the_time_left() -> None:
    aws = FakeAws()
    the_request = request(outcome_timeout_minutes=8)
    acted = steps.act(state(the_request), aws, T0).model_dump()
    first = steps.watch(state(the_request, act=acted), aws, T0)
    woken = {"woken_by": "alarm web-status is OK again"}
    second = steps.watch(
        state(the_request, act=acted, watch=first.model_dump(), wake=woken), aws, T0 + timedelta(seconds=200)
    )
    assert (second.waited_seconds, second.wait_seconds) == (200, 280)


def test_a_stop_and_start_starts_the_instance_once_it_is_stopped() -> None:
    aws = FakeAws()
    the_request = request(action="stop_start")
    acted = steps.act(state(the_request), aws, T0)
    assert aws.ec2.calls == ["stop i-1"]

    aws.ec2.status = InstanceStatus("stopping", "not-applicable", "not-applicable")
    stopping = steps.watch(state(the_request, act=acted.model_dump()), aws, T0)
    assert (stopping.phase, stopping.verdict) == ("stopping", "watching")

    aws.ec2.status = InstanceStatus("stopped", "not-applicable", "not-applicable")
    started = steps.watch(state(the_request, act=acted.model_dump(), watch=stopping.model_dump()), aws, T0)
    assert (started.phase, aws.ec2.calls) == ("starting", ["stop i-1", "start i-1"])

    aws.ec2.status = InstanceStatus("running", "ok", "ok")
    helped = steps.watch(state(the_request, act=acted.model_dump(), watch=started.model_dump()), aws, T0)
    assert helped.verdict == "helped"


def test_an_alarm_rule_waits_for_its_alarm_to_be_ok_too() -> None:
    aws = FakeAws()
    aws.ec2.status = InstanceStatus("running", "ok", "ok")
    the_request = request(helped_when="alarm_ok")
    acted = steps.act(state(the_request), aws, T0)
    after = state(the_request, act=acted.model_dump())
    assert steps.watch(after, aws, T0).verdict == "watching"
    aws.cloudwatch.states["web-status"] = "OK"
    assert steps.watch(after, aws, T0).verdict == "helped"


def test_a_service_redeploy_helped_once_its_new_deployment_completed_and_every_task_runs() -> None:
    aws = FakeAws()
    the_request = request(resource_kind="ecs", resource="prod/web", action="ecs_redeploy", alarm_name=None)
    assert steps.check(state(the_request), aws).needed  # 1 of 2 tasks running, 3 failed to start
    acted = steps.act(state(the_request), aws, T0)
    assert (aws.ecs.calls, acted.deployment_id) == (["redeploy prod/web"], "ecs-svc/2")

    watching = steps.watch(state(the_request, act=acted.model_dump()), aws, T0)
    assert (watching.verdict, watching.awaits) == ("watching", "change")
    assert steps.changing(state(the_request, act=acted.model_dump()), Target("ecs", "prod/web")) == [
        Target("service", "prod/web")
    ]
    aws.ecs.detail = service("COMPLETED")
    helped = steps.watch(state(the_request, act=acted.model_dump(), watch=watching.model_dump()), aws, T0)
    assert (helped.verdict, helped.found) == ("helped", "2 of 2 tasks running, deployment COMPLETED")


def test_a_failed_redeploy_did_not_help_at_once() -> None:
    aws = FakeAws()
    the_request = request(resource_kind="ecs", resource="prod/web", action="ecs_redeploy", alarm_name=None)
    acted = steps.act(state(the_request), aws, T0)
    aws.ecs.detail = service("FAILED", running=0)
    failed = steps.watch(state(the_request, act=acted.model_dump()), aws, T0)
    assert failed.verdict == "did not help"
    assert failed.found == "deployment ecs-svc/2 failed: (service web) has started 1 tasks"


def test_a_runbook_runs_as_the_runbook_role_once_per_run_and_its_failure_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUNBOOK_ROLE_ARN", "arn:aws:iam::111111111111:role/opsflow/runbook/RunbookRole")
    aws = FakeAws()
    runbook = {"document": "AWS-RestartEC2Instance", "parameters": {"InstanceId": ["i-1"]}}
    the_request = request(action="runbook", runbook=runbook)
    acted = steps.act(state(the_request), aws, T0)
    again = steps.act(state(the_request), aws, T0)
    [first, second] = aws.ssm.started
    assert first["parameters"] == {
        "InstanceId": ["i-1"],
        "AutomationAssumeRole": ["arn:aws:iam::111111111111:role/opsflow/runbook/RunbookRole"],
    }
    assert first["token"] == second["token"]
    assert again.execution_id == acted.execution_id == "exec-1"

    watching = steps.watch(state(the_request, act=acted.model_dump()), aws, T0)
    assert (watching.verdict, watching.awaits) == ("watching", "change")
    aws.ssm.status, aws.ssm.failure = "Failed", "Step stopInstances failed: not authorized"
    failed = steps.watch(state(the_request, act=acted.model_dump()), aws, T0)
    assert failed.verdict == "did not help"
    assert (
        failed.found
        == "runbook AWS-RestartEC2Instance ended Failed: Step stopInstances failed: not authorized"
    )


def test_a_runbook_that_succeeded_helped_once_the_resource_is_healthy() -> None:
    aws = FakeAws()
    runbook = {"document": "AWS-RestartEC2Instance", "parameters": {"InstanceId": ["i-1"]}}
    the_request = request(action="runbook", runbook=runbook, alarm_name=None)
    acted = steps.act(state(the_request), aws, T0)
    aws.ssm.status = "Success"
    still = steps.watch(state(the_request, act=acted.model_dump()), aws, T0)
    assert (still.verdict, still.awaits) == ("watching", "outcome")  # the instance check still fails
    aws.ec2.status = InstanceStatus("running", "ok", "ok")
    assert steps.watch(state(the_request, act=acted.model_dump()), aws, T0).verdict == "helped"


def test_a_stopped_instance_is_started_without_a_stop() -> None:
    aws = FakeAws()
    aws.ec2.status = InstanceStatus("stopped", "not-applicable", "not-applicable")
    the_request = request(action="stop_start", alarm_name=None)
    assert steps.check(state(the_request), aws).needed
    acted = steps.act(state(the_request), aws, T0)
    assert (acted.phase, aws.ec2.calls) == ("starting", ["start i-1"])
