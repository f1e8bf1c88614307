"""The SSM Automation emulation against the Systems Manager API Reference (StartAutomationExecution,
GetAutomationExecution, StopAutomationExecution, DescribeAutomationExecutions), the Automation actions reference
(aws:changeInstanceState, aws:sleep) and the EventBridge event examples for Systems Manager."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, TypeVar

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from opsflow_local.emulation.aws_events import AwsEvents, ServiceEvent
from opsflow_local.emulation.ec2 import Ec2Emulation
from opsflow_local.emulation.ssm import AUTOMATION_EVENT, AUTOMATION_STEP_EVENT, SsmEmulation

# Seconds per AWS second: Pending 2 ms, a poll every 5 ms, an instance stops in 30 ms and starts in 15 ms.
SCALE = 0.001
REGION, ACCOUNT = "us-east-1", "123456789012"
ENDED = ("Success", "Failed", "TimedOut", "Cancelled")
EVENT_TIME = re.compile(r"[A-Z][a-z]{2} \d{1,2}, \d{4} \d{1,2}:\d{2}:\d{2} [AP]M")
T = TypeVar("T")


@dataclass(frozen=True)
class Aws:
    ssm: SsmEmulation
    events: AwsEvents


@pytest.fixture
def aws() -> Iterator[Aws]:
    """moto with the EC2 and SSM emulations and the clock that completes their transitions on time."""
    ssm_emulation = SsmEmulation(time_scale=SCALE)
    events = AwsEvents()
    with ExitStack() as stack:
        Ec2Emulation(time_scale=SCALE).install(stack)
        ssm_emulation.install(stack)
        stack.enter_context(mock_aws())
        events.install(stack)
        yield Aws(ssm_emulation, events)


def ssm() -> Any:
    return boto3.client("ssm", region_name=REGION)


def ec2() -> Any:
    return boto3.client("ec2", region_name=REGION)


def instance() -> str:
    launched = ec2().run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)
    return str(launched["Instances"][0]["InstanceId"])


def state_of(instance_id: str) -> str:
    found = ec2().describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return str(found["State"]["Name"])


def eventually(found: Callable[[], T | None], what: str, timeout: float = 10) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.005)
    raise AssertionError(f"never: {what}")


def ended(execution_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        found: dict[str, Any] = ssm().get_automation_execution(AutomationExecutionId=execution_id)[
            "AutomationExecution"
        ]
        return found if found["AutomationExecutionStatus"] in ENDED else None

    return eventually(done, f"execution {execution_id} ended")


def start(document: str, **parameters: list[str]) -> str:
    return str(
        ssm().start_automation_execution(DocumentName=document, Parameters=parameters)[
            "AutomationExecutionId"
        ]
    )


def sent(aws: Aws, detail_type: str, execution_id: str, count: int) -> list[ServiceEvent]:
    def enough() -> list[ServiceEvent] | None:
        found = [
            e
            for e in aws.events.sent
            if e.detail_type == detail_type and e.detail.get("ExecutionId") == execution_id
        ]
        return found if len(found) >= count else None

    return eventually(enough, f"{count} {detail_type} of {execution_id}")


def runbook(name: str, steps: list[dict[str, Any]], parameters: dict[str, Any] | None = None) -> None:
    content = {
        "schemaVersion": "0.3",
        "parameters": {"InstanceIds": {"type": "StringList"}} if parameters is None else parameters,
        "mainSteps": steps,
    }
    ssm().create_document(
        Name=name, Content=json.dumps(content), DocumentType="Automation", DocumentFormat="JSON"
    )


def error_of(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]["Code"], raised.value.response["Error"]["Message"]


def test_the_restart_runbook_stops_then_starts_the_instance_and_succeeds_with_events(aws: Aws) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="automation-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events = boto3.client("events", region_name=REGION)
    events.put_rule(
        Name="automation", EventPattern=json.dumps({"source": ["aws.ssm"], "detail-type": [AUTOMATION_EVENT]})
    )
    events.put_targets(Rule="automation", Targets=[{"Id": "queue", "Arn": queue_arn}])
    node = instance()

    execution_id = start("AWS-RestartEC2Instance", InstanceId=[node])
    execution = ended(execution_id)

    assert execution["AutomationExecutionStatus"] == "Success"
    assert (execution["DocumentName"], execution["DocumentVersion"]) == ("AWS-RestartEC2Instance", "1")
    assert execution["Parameters"] == {"InstanceId": [node], "AutomationAssumeRole": [""]}
    assert execution["ExecutionEndTime"] >= execution["ExecutionStartTime"]
    stop, start_again = execution["StepExecutions"]
    assert [(s["StepName"], s["Action"], s["StepStatus"]) for s in (stop, start_again)] == [
        ("stopInstances", "aws:changeInstanceState", "Success"),
        ("startInstances", "aws:changeInstanceState", "Success"),
    ]
    assert json.loads(stop["Inputs"]["InstanceIds"]) == [node]
    assert json.loads(stop["Inputs"]["DesiredState"]) == "stopped"
    assert stop["ExecutionEndTime"] <= start_again["ExecutionStartTime"]
    assert state_of(node) == "running"
    # The instance went through EC2's own transitions, and was stopped before it was started again.
    states = [
        e.detail["state"]
        for e in aws.events.sent
        if e.detail_type == "EC2 Instance State-change Notification" and e.detail["instance-id"] == node
    ]
    assert states == ["stopping", "stopped", "pending", "running"]

    (event,) = sent(aws, AUTOMATION_EVENT, execution_id, 1)
    assert (event.source, event.account, event.region) == ("aws.ssm", ACCOUNT, REGION)
    assert event.resources == (
        f"arn:aws:ssm:{REGION}:{ACCOUNT}:automation-execution/{execution_id}",
        f"arn:aws:ssm:{REGION}::automation-definition/AWS-RestartEC2Instance:1",
    )
    assert {k: event.detail[k] for k in ("ExecutionId", "Definition", "DefinitionVersion", "Status")} == {
        "ExecutionId": execution_id,
        "Definition": "AWS-RestartEC2Instance",
        "DefinitionVersion": 1.0,
        "Status": "Success",
    }
    assert EVENT_TIME.fullmatch(event.detail["StartTime"])
    assert EVENT_TIME.fullmatch(event.detail["EndTime"])
    assert event.detail["Time"] >= 0
    steps = sent(aws, AUTOMATION_STEP_EVENT, execution_id, 2)
    assert [(e.detail["StepName"], e.detail["Action"], e.detail["Status"]) for e in steps] == [
        ("stopInstances", "aws:changeInstanceState", "Success"),
        ("startInstances", "aws:changeInstanceState", "Success"),
    ]

    def delivered() -> list[dict[str, Any]]:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    (on_bus,) = eventually(delivered, "the execution's event on the default bus")
    assert (on_bus["detail-type"], on_bus["detail"]["Status"]) == (AUTOMATION_EVENT, "Success")


def test_an_unknown_document_a_command_document_or_an_unknown_version_is_refused(aws: Aws) -> None:
    assert error_of(lambda: start("Team-NoSuchRunbook"))[0] == "AutomationDefinitionNotFoundException"
    ssm().create_document(
        Name="Team-Diagnose",
        Content=json.dumps(
            {
                "schemaVersion": "2.2",
                "mainSteps": [
                    {"action": "aws:runShellScript", "name": "run", "inputs": {"runCommand": ["uptime"]}}
                ],
            }
        ),
        DocumentType="Command",
        DocumentFormat="JSON",
    )
    assert error_of(lambda: start("Team-Diagnose"))[0] == "AutomationDefinitionNotFoundException"
    runbook("Team-Nap", [{"name": "nap", "action": "aws:sleep", "inputs": {"Duration": "PT1S"}}], {})
    code, _ = error_of(lambda: ssm().start_automation_execution(DocumentName="Team-Nap", DocumentVersion="7"))
    assert code == "AutomationDefinitionVersionNotFoundException"
    assert aws.ssm.automations() == []


def test_a_missing_or_an_unknown_parameter_is_refused_naming_it(aws: Aws) -> None:
    node = instance()

    code, message = error_of(lambda: start("AWS-RestartEC2Instance"))
    assert code == "InvalidAutomationExecutionParametersException"
    assert "InstanceId" in message
    code, message = error_of(lambda: start("AWS-RestartEC2Instance", InstanceId=[node], Force=["true"]))
    assert code == "InvalidAutomationExecutionParametersException"
    assert "Force" in message
    assert "InstanceId" not in message
    assert state_of(node) == "running"


def test_a_teams_runbook_changes_instance_state_and_sleeps_with_its_parameters(aws: Aws) -> None:
    node = instance()
    runbook(
        "Team-StopForAWhile",
        [
            {
                "name": "stop",
                "action": "aws:changeInstanceState",
                "inputs": {"InstanceIds": ["{{ InstanceIds }}"], "DesiredState": "stopped"},
            },
            {"name": "rest", "action": "aws:sleep", "inputs": {"Duration": "{{ Rest }}"}},
            {
                "name": "checkStopped",
                "action": "aws:changeInstanceState",
                "inputs": {
                    "InstanceIds": "{{ InstanceIds }}",
                    "DesiredState": "stopped",
                    "CheckStateOnly": True,
                },
            },
        ],
        {"InstanceIds": {"type": "StringList"}, "Rest": {"type": "String", "default": "PT10S"}},
    )

    execution = ended(start("Team-StopForAWhile", InstanceIds=[node]))

    assert execution["AutomationExecutionStatus"] == "Success"
    assert execution["Parameters"] == {"InstanceIds": [node], "Rest": ["PT10S"]}
    steps = execution["StepExecutions"]
    assert [(s["StepName"], s["StepStatus"]) for s in steps] == [
        ("stop", "Success"),
        ("rest", "Success"),
        ("checkStopped", "Success"),
    ]
    assert json.loads(steps[0]["Inputs"]["InstanceIds"]) == [node]
    assert json.loads(steps[1]["Inputs"]["Duration"]) == "PT10S"
    assert state_of(node) == "stopped"


def test_an_action_the_embedded_runtime_does_not_run_fails_the_execution_saying_so(aws: Aws) -> None:
    node = instance()
    runbook(
        "Team-Patch",
        [
            {"name": "settle", "action": "aws:sleep", "inputs": {"Duration": "PT1S"}},
            {
                "name": "patch",
                "action": "aws:executeScript",
                "onFailure": "Continue",
                "inputs": {"Runtime": "python3.11", "Handler": "main", "Script": "def main(e, c): pass"},
            },
            {
                "name": "stop",
                "action": "aws:changeInstanceState",
                "inputs": {"InstanceIds": "{{ InstanceIds }}", "DesiredState": "stopped"},
            },
        ],
    )

    execution = ended(start("Team-Patch", InstanceIds=[node]))

    # Whatever its onFailure: the embedded runtime cannot know what the script would have done.
    assert execution["AutomationExecutionStatus"] == "Failed"
    assert "does not run aws:executeScript" in execution["FailureMessage"]
    assert [(s["StepName"], s["StepStatus"]) for s in execution["StepExecutions"]] == [
        ("settle", "Success"),
        ("patch", "Failed"),
        ("stop", "Pending"),
    ]
    assert state_of(node) == "running"
    (event,) = sent(aws, AUTOMATION_EVENT, execution["AutomationExecutionId"], 1)
    assert event.detail["Status"] == "Failed"


def test_an_instance_that_does_not_exist_fails_the_execution_with_ec2s_message(aws: Aws) -> None:
    execution = ended(start("AWS-StopEC2Instance", InstanceId=["i-0123456789abcdef0"]))

    assert execution["AutomationExecutionStatus"] == "Failed"
    assert "The instance ID 'i-0123456789abcdef0' does not exist" in execution["FailureMessage"]
    assert "InvalidInstanceID.NotFound" in execution["FailureMessage"]
    (step,) = execution["StepExecutions"]
    assert (step["StepName"], step["StepStatus"]) == ("stopInstances", "Failed")


def test_getting_or_stopping_an_unknown_execution_is_not_found(aws: Aws) -> None:
    unknown = "4105a4fc-f944-11e6-9d32-0a1b2c3d495e"
    code, _ = error_of(lambda: ssm().get_automation_execution(AutomationExecutionId=unknown))
    assert code == "AutomationExecutionNotFoundException"
    code, _ = error_of(lambda: ssm().stop_automation_execution(AutomationExecutionId=unknown))
    assert code == "AutomationExecutionNotFoundException"


def test_a_client_token_starts_one_execution(aws: Aws) -> None:
    node = instance()
    token = "5e2b8a4c-7b0e-4a63-9c53-3e8d4e1f0a11"

    def started(**parameters: list[str]) -> str:
        return str(
            ssm().start_automation_execution(
                DocumentName="AWS-StartEC2Instance", Parameters=parameters, ClientToken=token
            )["AutomationExecutionId"]
        )

    first = started(InstanceId=[node])
    assert started(InstanceId=[node]) == first
    assert error_of(lambda: started(InstanceId=["i-0123456789abcdef0"]))[0] == "IdempotentParameterMismatch"
    listed = ssm().describe_automation_executions(
        Filters=[{"Key": "DocumentNamePrefix", "Values": ["AWS-StartEC2"]}]
    )["AutomationExecutionMetadataList"]
    assert [e["AutomationExecutionId"] for e in listed] == [first]


def test_the_next_execution_of_a_document_can_be_made_to_fail(aws: Aws) -> None:
    node = instance()
    aws.ssm.fail_next_automation("AWS-RestartEC2Instance", "Step fails when it is Executing: throttled.")

    failed = ended(start("AWS-RestartEC2Instance", InstanceId=[node]))

    assert (failed["AutomationExecutionStatus"], failed["FailureMessage"]) == (
        "Failed",
        "Step fails when it is Executing: throttled.",
    )
    assert state_of(node) == "running"
    assert ended(start("AWS-RestartEC2Instance", InstanceId=[node]))["AutomationExecutionStatus"] == "Success"


def test_a_stopped_execution_is_cancelled(aws: Aws) -> None:
    runbook("Team-LongNap", [{"name": "nap", "action": "aws:sleep", "inputs": {"Duration": "PT10H"}}], {})
    execution_id = start("Team-LongNap")

    def napping() -> bool:
        found = ssm().get_automation_execution(AutomationExecutionId=execution_id)["AutomationExecution"]
        return bool(found["StepExecutions"][0]["StepStatus"] == "InProgress")

    eventually(napping, "the nap began")
    ssm().stop_automation_execution(AutomationExecutionId=execution_id)
    execution = ended(execution_id)

    assert execution["AutomationExecutionStatus"] == "Cancelled"
    assert execution["StepExecutions"][0]["StepStatus"] == "Cancelled"
    code, _ = error_of(lambda: ssm().stop_automation_execution(AutomationExecutionId=execution_id))
    assert code == "InvalidAutomationStatusUpdateException"
    (event,) = sent(aws, AUTOMATION_EVENT, execution_id, 1)
    assert event.detail["Status"] == "Cancelled"


def test_a_step_running_past_its_timeout_times_the_execution_out(aws: Aws) -> None:
    runbook(
        "Team-Impatient",
        [{"name": "nap", "action": "aws:sleep", "timeoutSeconds": 5, "inputs": {"Duration": "PT10H"}}],
        {},
    )

    execution = ended(start("Team-Impatient"))

    assert execution["AutomationExecutionStatus"] == "TimedOut"
    assert execution["StepExecutions"][0]["StepStatus"] == "TimedOut"
    assert execution["StepExecutions"][0]["TimeoutSeconds"] == 5
