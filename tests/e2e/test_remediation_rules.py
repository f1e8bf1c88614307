"""Remediation rules through the API on the embedded runtime, with the API's role held to IAM: a rule is
stored and shown with its guard, a bad one is a 400 naming the field and stores nothing, a runbook is
checked against Systems Manager where the rule acts, and the breaker is closed through the API."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3

from opsflow.remediation import guard
from opsflow.remediation.guard import Asked
from opsflow.store.remediations import DynamoRemediationStore
from opsflow_local import EmbeddedAws

REBOOT: dict[str, Any] = {
    "description": "Reboot a web instance whose instance status check fails",
    "trigger": {"kind": "status_check", "check": "instance"},
    "action": {"kind": "reboot"},
    "scope": {"environment": "prod", "asg_name": "web"},
    "cooldown_minutes": 30,
    "breaker": {"max_actions": 3, "within_minutes": 60},
    "concurrency": {"max_resources": 2, "max_percent": 25},
}


def refused_field(aws: EmbeddedAws, rule: dict[str, Any], name: str = "web-reboot") -> tuple[str, str]:
    response = aws.api.put(f"/remediations/{name}", json=rule)
    assert response.status_code == 400, response.text
    [problem] = response.json()["problems"]
    assert aws.api.get(f"/remediations/{name}").status_code == 404
    return problem["field"], problem["problem"]


def test_a_rule_is_stored_listed_shown_with_its_guard_and_deleted(aws: EmbeddedAws) -> None:
    put = aws.api.put("/remediations/web-reboot", json=REBOOT)
    assert put.status_code == 200, put.text
    shown = put.json()
    assert shown["name"] == "web-reboot"
    assert shown["rule"]["action"] == {"kind": "reboot"}
    assert shown["rule"]["concurrency"] == {"max_resources": 2, "max_percent": 25}
    assert shown["updated_by"].startswith("arn:aws:iam::")
    assert shown["breaker"] == {"state": "closed"}
    assert (shown["under_way"], shown["cooling_down"], shown["decisions"]) == ([], [], [])

    assert [r["name"] for r in aws.api.get("/remediations").json()["remediations"]] == ["web-reboot"]
    assert aws.api.get("/remediations/web-reboot").json()["rule"] == shown["rule"]

    assert aws.api.delete("/remediations/web-reboot").json() == {"deleted": "web-reboot"}
    assert aws.api.get("/remediations/web-reboot").status_code == 404
    assert aws.api.delete("/remediations/web-reboot").status_code == 404


def test_bad_rules_are_400s_naming_the_field_and_store_nothing(aws: EmbeddedAws) -> None:
    field, problem = refused_field(aws, {**REBOOT, "action": {"kind": "terminate"}})
    assert field == "action.kind"
    assert "reboot" in problem
    assert "runbook" in problem

    assert refused_field(aws, {**REBOOT, "cooldown_minutes": 0}) == (
        "cooldown_minutes",
        "input should be greater than or equal to 1",
    )
    field, _ = refused_field(aws, {**REBOOT, "breaker": {"max_actions": 0}})
    assert field == "breaker.max_actions"
    assert aws.api.get("/remediations").json()["count"] == 0


def test_a_runbook_that_does_not_exist_is_a_400_naming_the_document(aws: EmbeddedAws) -> None:
    field, problem = refused_field(
        aws, {**REBOOT, "action": {"kind": "runbook", "document": "Team-RestartWeb", "parameters": {}}}
    )
    assert field == "action.document"
    assert problem.startswith(f"no Systems Manager document Team-RestartWeb in {aws.account_id}/us-east-1")


def test_a_runbook_is_checked_for_its_type_and_parameters(aws: EmbeddedAws) -> None:
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.create_document(
        Name="Team-Diagnose",
        DocumentType="Command",
        DocumentFormat="JSON",
        Content=json.dumps(
            {
                "schemaVersion": "2.2",
                "description": "diagnose",
                "mainSteps": [
                    {"action": "aws:runShellScript", "name": "run", "inputs": {"runCommand": ["uptime"]}}
                ],
            }
        ),
    )
    field, problem = refused_field(
        aws, {**REBOOT, "action": {"kind": "runbook", "document": "Team-Diagnose"}}
    )
    assert (field, problem) == (
        "action.document",
        "Team-Diagnose is a Command document; a runbook is an Automation document",
    )

    field, problem = refused_field(
        aws, {**REBOOT, "action": {"kind": "runbook", "document": "AWS-RestartEC2Instance"}}
    )
    assert field == "action.parameters"
    assert problem.startswith("AWS-RestartEC2Instance requires InstanceId")

    field, problem = refused_field(
        aws,
        {
            **REBOOT,
            "action": {
                "kind": "runbook",
                "document": "AWS-RestartEC2Instance",
                "parameters": {"InstanceId": ["{{resource}}"], "Force": ["true"]},
            },
        },
    )
    assert field == "action.parameters.Force"
    assert (
        problem == "is not a parameter of AWS-RestartEC2Instance; it takes AutomationAssumeRole, InstanceId"
    )

    good = aws.api.put(
        "/remediations/web-restart",
        json={
            **REBOOT,
            "action": {
                "kind": "runbook",
                "document": "AWS-RestartEC2Instance",
                "parameters": {"InstanceId": ["{{resource}}"]},
            },
        },
    )
    assert good.status_code == 200, good.text


def test_a_rule_for_an_unregistered_account_is_refused(aws: EmbeddedAws) -> None:
    response = aws.api.put("/remediations/web-reboot", json={**REBOOT, "account": "210987654321"})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "AccountNotRegistered"
    assert aws.api.get("/remediations/web-reboot").status_code == 404


def test_an_open_breaker_is_shown_and_closed_through_the_api(aws: EmbeddedAws) -> None:
    assert aws.api.put("/remediations/web-reboot", json={**REBOOT, "cooldown_minutes": 1}).status_code == 200
    # Four failure events decided as the remediation workflow will decide them: three acted on, one refused.
    store = DynamoRemediationStore(aws.client("dynamodb"), aws.resource_name("RemediationsTable"))
    now = datetime.now(UTC)
    for n in range(4):

        def decide(rule: Any, record: Any, n: int = n) -> Any:
            outcome = guard.decide(rule, record, Asked(f"i-{n}", f"run-{n}"), now)
            return guard.finish(outcome.guard, f"run-{n}", "did not help"), outcome

        store.change_guard("web-reboot", decide)

    shown = aws.api.get("/remediations/web-reboot").json()
    assert shown["breaker"]["state"] == "open"
    assert shown["breaker"]["reason"].startswith("3 actions within 60 min (the limit is 3)")
    assert [d["verdict"] for d in shown["decisions"]] == ["skip", "act", "act", "act"]
    assert {c["resource"] for c in shown["cooling_down"]} == {"i-0", "i-1", "i-2"}

    closed = aws.api.delete("/remediations/web-reboot/breaker")
    assert closed.status_code == 200, closed.text
    assert closed.json()["breaker"] == {"state": "closed"}
    assert aws.api.delete("/remediations/nothing-here/breaker").status_code == 404
