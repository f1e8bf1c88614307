"""CodeBuild, CodeDeploy and ECR messages say what failed: the build's phase and its message, the deployment
group and any rollback, a scan's critical findings. Each starts from the documented example in events/."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from opsflow.notify import slack, teams
from opsflow.notify.build import build_message
from opsflow.notify.message import Message, Severity, Status

from .conftest import assert_valid_card, assert_valid_slack

EVENTS = Path(__file__).resolve().parents[3] / "events"
NPM_TEST_FAILED = "COMMAND_EXECUTION_ERROR: Error while executing command: npm test. Reason: exit status 1"


def event(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


def built(source: dict[str, Any]) -> Message:
    message = build_message(source)
    assert message is not None
    return message


def rendered(message: Message, schema: dict[str, Any]) -> str:
    slack_payload, teams_payload = slack.payload(message), teams.payload(message)
    assert_valid_slack(slack_payload)
    assert_valid_card(teams_payload, schema)
    return json.dumps(slack_payload) + json.dumps(teams_payload)


def failed_build(status: str = "FAILED") -> dict[str, Any]:
    """The documented build, failed in BUILD as a failed command leaves it."""
    failed = event("codebuild/build_succeeded.json")
    detail = failed["detail"]
    detail["build-status"] = status
    info = detail["additional-information"]
    info["build-number"] = 56.0
    info["source-version"] = "refs/heads/main^{4f1c2b9}"
    info["initiator"] = "codepipeline/web-release"
    build = next(phase for phase in info["phases"] if phase["phase-type"] == "BUILD")
    build["phase-status"] = status
    build["phase-context"] = [NPM_TEST_FAILED]
    return failed


# CodeBuild ----------------------------------------------------------------------------------------


def test_a_failed_build_names_its_failed_phase_and_the_commands_message(
    adaptive_card_schema: dict[str, Any],
) -> None:
    message = built(failed_build())
    assert message.title == "Build my-sample-project #56 in us-west-2: failed at BUILD"
    assert message.status is Status.FAILED
    assert message.severity is Severity.CRITICAL
    assert message.facts[0] == ("Failed phase", "BUILD (FAILED)")
    assert ("Build", "#56") in message.facts
    assert ("Started by", "codepipeline/web-release") in message.facts
    assert ("Source version", "refs/heads/main^{4f1c2b9}") in message.facts
    assert message.cause == NPM_TEST_FAILED
    assert message.project == "my-sample-project"
    logs = next(link for link in message.links if link.label == "Open logs")
    assert logs.url.startswith("https://console.aws.amazon.com/cloudwatch/home?region=us-west-2#logEvent:")
    build = next(link for link in message.links if link.label == "Open build")
    assert build.url.startswith("https://us-west-2.console.aws.amazon.com/codesuite/codebuild/projects/")
    text = rendered(message, adaptive_card_schema)
    assert "npm test" in text
    assert "BUILD (FAILED)" in text


@pytest.mark.parametrize(
    ("status", "verb", "shown", "severity"),
    [
        ("FAULT", "faulted", Status.FAILED, Severity.CRITICAL),
        ("TIMED_OUT", "timed out", Status.FAILED, Severity.WARNING),
        ("STOPPED", "stopped", Status.WARNING, Severity.WARNING),
    ],
)
def test_a_build_that_did_not_finish_names_where_it_stopped(
    status: str, verb: str, shown: Status, severity: Severity
) -> None:
    message = built(failed_build(status))
    assert message.title == f"Build my-sample-project #56 in us-west-2: {verb} at BUILD"
    assert (message.status, message.severity) == (shown, severity)
    assert message.facts[0] == ("Failed phase", f"BUILD ({status})")


def test_a_failed_build_whose_phases_say_nothing_still_says_where_to_look() -> None:
    failed = failed_build()
    for phase in failed["detail"]["additional-information"]["phases"]:
        phase["phase-context"] = [": "]
    message = built(failed)
    assert message.cause == "CodeBuild gave no reason; the build's log says which command failed."


def test_the_apis_shape_of_a_phase_context_is_read_too() -> None:
    failed = failed_build()
    build = next(
        phase
        for phase in failed["detail"]["additional-information"]["phases"]
        if phase["phase-type"] == "BUILD"
    )
    build["phase-context"] = [{"statusCode": "COMMAND_EXECUTION_ERROR", "message": "exit status 2"}]
    assert built(failed).cause == "COMMAND_EXECUTION_ERROR: exit status 2"


@pytest.mark.parametrize(
    ("status", "shown", "verb"),
    [("IN_PROGRESS", Status.IN_PROGRESS, "started"), ("SUCCEEDED", Status.SUCCEEDED, "succeeded")],
)
def test_a_build_starting_reads_as_progress_and_finishing_as_success(
    status: str, shown: Status, verb: str
) -> None:
    started = event("codebuild/build_succeeded.json")
    started["detail"]["build-status"] = status
    message = built(started)
    assert message.status is shown
    assert message.severity is Severity.INFO
    assert message.title == f"Build my-sample-project 8745a7a9 in us-west-2: {verb}"
    assert message.cause is None
    assert not any(label == "Failed phase" for label, _ in message.facts)


# CodeDeploy ---------------------------------------------------------------------------------------


def failed_deployment(**detail: Any) -> dict[str, Any]:
    failed = event("codedeploy/deployment_succeeded.json")
    failed["detail"].update(state="FAILURE", **detail)
    return failed


def test_a_failed_deployment_names_its_group_and_the_rollback(adaptive_card_schema: dict[str, Any]) -> None:
    message = built(
        failed_deployment(
            rollbackInfo={
                "rollbackDeploymentId": "d-ROLLBACK1",
                "rollbackMessage": "Automatic rollback d-ROLLBACK1 restores the last successful revision.",
            }
        )
    )
    assert message.title == "Deployment of myApplication to myDeploymentGroup: failed"
    assert (message.status, message.severity) == (Status.FAILED, Severity.CRITICAL)
    assert ("Deployment group", "myDeploymentGroup") in message.facts
    assert ("Deployment", "d-123456789") in message.facts
    assert ("Rolled back by", "d-ROLLBACK1") in message.facts
    assert message.next_step == "Automatic rollback d-ROLLBACK1 restores the last successful revision."
    assert message.application == "myApplication"
    assert message.links[0].url == (
        "https://us-east-1.console.aws.amazon.com/codesuite/codedeploy/deployments/d-123456789?region=us-east-1"
    )
    text = rendered(message, adaptive_card_schema)
    assert "myDeploymentGroup" in text
    assert "d-ROLLBACK1" in text


def test_a_rollback_deployment_says_what_it_rolls_back() -> None:
    rollback = failed_deployment(rollbackInfo={"rollbackTriggeringDeploymentId": "d-BROKEN1"})
    rollback["detail"]["state"] = "SUCCESS"
    message = built(rollback)
    assert message.title == "Rollback of myApplication to myDeploymentGroup: succeeded"
    assert ("Rolls back", "d-BROKEN1") in message.facts


def test_a_failed_deployment_without_rollback_says_where_to_look() -> None:
    message = built(failed_deployment())
    assert not any(label.startswith("Roll") for label, _ in message.facts)
    assert message.next_step is not None
    assert "lifecycle event" in message.next_step


@pytest.mark.parametrize(
    ("state", "shown", "verb"),
    [
        ("START", Status.IN_PROGRESS, "started"),
        ("SUCCESS", Status.SUCCEEDED, "succeeded"),
        ("STOP", Status.WARNING, "stopped"),
        ("READY", Status.IN_PROGRESS, "ready for traffic"),
    ],
)
def test_each_deployment_state_reads_as_it_is(state: str, shown: Status, verb: str) -> None:
    deployment = event("codedeploy/deployment_succeeded.json")
    deployment["detail"]["state"] = state
    message = built(deployment)
    assert message.status is shown
    assert message.title == f"Deployment of myApplication to myDeploymentGroup: {verb}"


# ECR ----------------------------------------------------------------------------------------------


def test_a_push_names_the_repository_tag_and_digest() -> None:
    message = built(event("ecr/image_push.json"))
    assert message.title == "Image pushed: my-repository-name:latest in us-west-2"
    assert message.status is Status.SUCCEEDED
    assert ("Digest", "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234") in message.facts
    assert message.repository == "my-repository-name"
    assert "/ecr/repositories/private/123456789012/my-repository-name/_/image/sha256:" in message.links[0].url


def test_a_deleted_image_is_nobodys_news() -> None:
    deleted = event("ecr/image_push.json")
    deleted["detail"]["action-type"] = "DELETE"
    assert build_message(deleted) is None


def test_a_scan_with_critical_findings_is_critical_and_counts_them(
    adaptive_card_schema: dict[str, Any],
) -> None:
    message = built(event("ecr/image_scan.json"))
    assert message.title == "Image scan of my-repository-name@7f5b2640fe6f: 10 critical, 9 medium"
    assert (message.status, message.severity) == (Status.FAILED, Severity.CRITICAL)
    assert ("Critical findings", "10") in message.facts
    assert ("Medium findings", "9") in message.facts
    assert not any(label == "High findings" for label, _ in message.facts)
    assert message.repository == "my-repository-name"
    assert "10 critical" in rendered(message, adaptive_card_schema)


@pytest.mark.parametrize(
    ("counts", "shown", "severity", "headline"),
    [
        ({"HIGH": 2, "LOW": 5}, Status.WARNING, Severity.WARNING, "2 high, 5 low"),
        ({"MEDIUM": 1, "INFORMATIONAL": 3}, Status.INFO, Severity.INFO, "1 medium, 3 informational"),
        ({}, Status.SUCCEEDED, Severity.INFO, "no findings"),
    ],
)
def test_a_scans_severity_follows_its_worst_finding(
    counts: dict[str, int], shown: Status, severity: Severity, headline: str
) -> None:
    scan = copy.deepcopy(event("ecr/image_scan.json"))
    scan["detail"]["finding-severity-counts"] = counts
    scan["detail"]["image-tags"] = ["v1.4.2"]
    message = built(scan)
    assert (message.status, message.severity) == (shown, severity)
    assert message.title == f"Image scan of my-repository-name:v1.4.2: {headline}"


def test_a_scan_that_did_not_complete_is_a_warning() -> None:
    scan = event("ecr/image_scan.json")
    scan["detail"]["scan-status"] = "FAILED"
    message = built(scan)
    assert (message.status, message.severity) == (Status.WARNING, Severity.WARNING)
    assert message.title.endswith(": scan failed")
