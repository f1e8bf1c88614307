"""What a remediation rule accepts, and how each bad one is refused: the field named, the fix said."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from opsflow.remediation.rules import RemediationRule
from opsflow.runs.requests import describe_validation_errors

GOOD: dict[str, Any] = {
    "trigger": {"kind": "status_check", "check": "system"},
    "action": {"kind": "stop_start"},
    "cooldown_minutes": 30,
}


def problems(**changes: Any) -> list[dict[str, str]]:
    with pytest.raises(ValidationError) as refused:
        RemediationRule.model_validate({**GOOD, **changes})
    return describe_validation_errors(refused.value.errors())


def test_a_rule_takes_its_guards_defaults() -> None:
    rule = RemediationRule.model_validate(GOOD)
    assert (rule.breaker.max_actions, rule.breaker.within_minutes) == (3, 60)
    assert (rule.concurrency.max_resources, rule.concurrency.max_percent) == (1, None)
    assert rule.outcome_timeout_minutes == 15
    assert not rule.dry_run


def test_an_unknown_action_names_action_and_the_kinds() -> None:
    [problem] = problems(action={"kind": "terminate"})
    assert problem == {
        "field": "action.kind",
        "problem": "'terminate' is not one of: reboot, stop_start, recover, ecs_redeploy, runbook",
    }


def test_a_cooldown_of_zero_is_refused() -> None:
    [problem] = problems(cooldown_minutes=0)
    assert problem == {"field": "cooldown_minutes", "problem": "input should be greater than or equal to 1"}


def test_a_rule_without_a_cooldown_is_refused() -> None:
    body = {key: value for key, value in GOOD.items() if key != "cooldown_minutes"}
    with pytest.raises(ValidationError) as refused:
        RemediationRule.model_validate(body)
    assert describe_validation_errors(refused.value.errors()) == [
        {"field": "cooldown_minutes", "problem": "is required"}
    ]


def test_an_instance_action_for_an_ecs_trigger_is_refused_on_action() -> None:
    [problem] = problems(trigger={"kind": "ecs_tasks_stopping", "cluster": "prod"}, action={"kind": "reboot"})
    assert problem["field"] == "action"
    assert "ecs_redeploy or runbook" in problem["problem"]


def test_an_alarm_trigger_names_its_alarms_one_way() -> None:
    [problem] = problems(trigger={"kind": "alarm", "alarm_names": ["a"], "alarm_name_prefix": "web-"})
    assert problem["field"] == "trigger"
    assert "exactly one of alarm_names, alarm_name_prefix and alarm_tags" in problem["problem"]


def test_an_unknown_region_or_field_is_named() -> None:
    [region] = problems(region="eu-mars-1")
    assert region["field"] == "region"
    [extra] = problems(cooldown_seconds=5)
    assert extra["field"] == "cooldown_seconds"


def test_a_runbook_names_a_document_and_takes_parameters() -> None:
    rule = RemediationRule.model_validate(
        {
            **GOOD,
            "action": {
                "kind": "runbook",
                "document": "AWS-RestartEC2Instance",
                "parameters": {"InstanceId": ["{{resource}}"]},
            },
        }
    )
    assert rule.action.kind == "runbook"
    [problem] = problems(action={"kind": "runbook", "document": "no spaces allowed"})
    assert problem["field"] == "action.document"
