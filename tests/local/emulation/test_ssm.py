"""The SSM Run Command emulation against the Systems Manager API Reference (SendCommand, GetCommandInvocation,
ListCommandInvocations, DescribeInstanceInformation) and the User Guide (command statuses and timeouts;
EventBridge events)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from opsflow_local.emulation.ssm import INVOCATION_EVENT, STDERR_LIMIT, STDOUT_LIMIT, SsmEmulation

SCALE = 0.001  # seconds per AWS second: registration 30 ms, delivery 2 ms, a default command 10 ms


@pytest.fixture
def emulation() -> Iterator[SsmEmulation]:
    emulation = SsmEmulation(time_scale=SCALE)
    with ExitStack() as stack:
        emulation.install(stack)
        stack.enter_context(mock_aws())
        boto3.client("iam", region_name="us-east-1").create_instance_profile(InstanceProfileName="builder")
        yield emulation


def ssm() -> Any:
    return boto3.client("ssm", region_name="us-east-1")


def ec2() -> Any:
    return boto3.client("ec2", region_name="us-east-1")


def instance(profile: bool = True) -> str:
    extra = {"IamInstanceProfile": {"Name": "builder"}} if profile else {}
    return str(
        ec2().run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, **extra)["Instances"][0][
            "InstanceId"
        ]
    )


def registered(instance_id: str, timeout: float = 2) -> None:
    """Wait until the instance is an online managed node (its agent registers 30 AWS seconds after it runs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        nodes = ssm().describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [instance_id]}])
        if [n["PingStatus"] for n in nodes["InstanceInformationList"]] == ["Online"]:
            return
        time.sleep(0.005)
    raise AssertionError(f"{instance_id} never registered")


def shell(instance_id: str, *commands: str, **parameters: list[str]) -> str:
    sent = ssm().send_command(
        InstanceIds=[instance_id],
        DocumentName="AWS-RunShellScript",
        Parameters={"commands": list(commands), **parameters},
    )["Command"]
    assert sent["Status"] == "Pending"
    return str(sent["CommandId"])


def wait_until_ended(command_id: str, instance_id: str, timeout: float = 5) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found: dict[str, Any] = ssm().get_command_invocation(CommandId=command_id, InstanceId=instance_id)
        except ClientError as error:
            if error.response["Error"]["Code"] != "InvocationDoesNotExist":
                raise
        else:
            if found["Status"] not in ("Pending", "InProgress", "Delayed"):
                return found
        time.sleep(0.005)
    raise AssertionError("the invocation never ended")


def test_an_instance_with_a_profile_registers_as_an_online_managed_node(emulation: SsmEmulation) -> None:
    managed, unmanaged = instance(), instance(profile=False)
    assert ssm().describe_instance_information()["InstanceInformationList"] == []
    time.sleep(30 * SCALE + 0.01)

    nodes = ssm().describe_instance_information()["InstanceInformationList"]
    assert [(n["InstanceId"], n["PingStatus"]) for n in nodes] == [(managed, "Online")]
    assert unmanaged not in {n["InstanceId"] for n in nodes}

    ec2().stop_instances(InstanceIds=[managed])
    filtered = ssm().describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [managed]}])
    assert filtered["InstanceInformationList"][0]["PingStatus"] == "ConnectionLost"
    ec2().terminate_instances(InstanceIds=[managed])
    assert ssm().describe_instance_information()["InstanceInformationList"] == []


def test_a_command_to_an_instance_that_is_not_an_online_managed_node_is_refused(
    emulation: SsmEmulation,
) -> None:
    emulation.registration_seconds = 10_000  # 10 s here: "not yet" must outlast a stalled thread
    for target in (instance(profile=False), instance(), "i-0123456789abcdef0"):  # no profile, not yet, none
        with pytest.raises(ClientError) as raised:
            shell(target, "echo hi")
        assert raised.value.response["Error"]["Code"] == "InvalidInstanceId"


def test_a_shell_script_without_commands_is_refused(emulation: SsmEmulation) -> None:
    node = instance()
    registered(node)
    with pytest.raises(ClientError) as raised:
        ssm().send_command(InstanceIds=[node], DocumentName="AWS-RunShellScript", Parameters={})
    assert raised.value.response["Error"]["Code"] == "InvalidParameters"


def test_a_command_is_pending_then_in_progress_then_succeeds_with_its_output(emulation: SsmEmulation) -> None:
    node = instance()
    registered(node)
    emulation.delivery_seconds = 100  # 0.1 s: long enough to see on a busy machine
    emulation.respond(node, stdout="installed web 2.0\n", run_seconds=200)
    command_id = shell(node, "install-web 2.0")

    with pytest.raises(ClientError) as raised:
        ssm().get_command_invocation(CommandId=command_id, InstanceId=node)
    assert raised.value.response["Error"]["Code"] == "InvocationDoesNotExist"
    time.sleep(100 * SCALE + 0.01)
    running = ssm().get_command_invocation(CommandId=command_id, InstanceId=node)
    assert (running["Status"], running["ResponseCode"], running["StandardOutputContent"]) == (
        "InProgress",
        -1,
        "",
    )

    ended = wait_until_ended(command_id, node)
    assert (ended["Status"], ended["StatusDetails"], ended["ResponseCode"]) == ("Success", "Success", 0)
    assert ended["StandardOutputContent"] == "installed web 2.0\n"
    listed = ssm().list_command_invocations(CommandId=command_id)["CommandInvocations"]
    assert [(i["InstanceId"], i["Status"]) for i in listed] == [(node, "Success")]


def test_a_failing_command_reports_its_exit_code_and_the_first_characters_of_its_output(
    emulation: SsmEmulation,
) -> None:
    node = instance()
    registered(node)
    emulation.respond(node, exit_code=2, stdout="x" * 30_000, stderr="npm ERR! " + "e" * 9_000)

    ended = wait_until_ended(shell(node, "npm ci"), node)

    assert (ended["Status"], ended["StatusDetails"], ended["ResponseCode"]) == ("Failed", "Failed", 2)
    assert len(ended["StandardOutputContent"]) == STDOUT_LIMIT
    assert len(ended["StandardErrorContent"]) == STDERR_LIMIT
    assert ended["StandardErrorContent"].startswith("npm ERR! ")


def test_a_command_running_past_its_execution_timeout_times_out(emulation: SsmEmulation) -> None:
    node = instance()
    registered(node)
    emulation.respond(node, run_seconds=7200)

    ended = wait_until_ended(shell(node, "sleep 7200", executionTimeout=["60"]), node)

    assert (ended["Status"], ended["StatusDetails"], ended["ResponseCode"]) == (
        "TimedOut",
        "ExecutionTimedOut",
        -1,
    )


def test_terminating_the_instance_ends_its_running_command(emulation: SsmEmulation) -> None:
    node = instance()
    registered(node)
    emulation.respond(node, run_seconds=3600)
    command_id = shell(node, "make")
    time.sleep(2 * SCALE + 0.01)
    ec2().terminate_instances(InstanceIds=[node])

    ended = wait_until_ended(command_id, node)
    assert (ended["Status"], ended["StatusDetails"]) == ("Failed", "Terminated")


def test_every_change_of_status_is_an_event(emulation: SsmEmulation) -> None:
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.create_queue(QueueName="ssm-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events = boto3.client("events", region_name="us-east-1")
    events.put_rule(
        Name="ssm", EventPattern=json.dumps({"source": ["aws.ssm"], "detail-type": [INVOCATION_EVENT]})
    )
    events.put_targets(Rule="ssm", Targets=[{"Id": "queue", "Arn": queue_arn}])
    node = instance()
    registered(node)
    command_id = shell(node, "true")
    wait_until_ended(command_id, node)

    sent: list[dict[str, Any]] = []
    deadline = time.monotonic() + 5
    while len(sent) < 2 and time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        sent += [json.loads(m["Body"]) for m in messages]
    # A queue keeps no order: the two changes, each once.
    by_status = {e["detail"]["status"]: e for e in sent}
    assert sorted(e["detail"]["status"] for e in sent) == ["InProgress", "Success"]
    ended = by_status["Success"]
    assert ended["detail"]["command-id"] == command_id
    assert ended["detail"]["instance-id"] == node
    assert ended["resources"] == [f"arn:aws:ec2:us-east-1:123456789012:instance/{node}"]


def test_aws_owned_runbooks_are_described_with_their_documented_parameters(emulation: SsmEmulation) -> None:
    """Automation Runbook Reference, AWS-RestartEC2Instance: type Automation, owner Amazon, `InstanceId`
    (StringList, required) and `AutomationAssumeRole` (String, optional)."""
    document = ssm().describe_document(Name="AWS-RestartEC2Instance")["Document"]
    assert (document["DocumentType"], document["Owner"]) == ("Automation", "Amazon")
    parameters = {p["Name"]: p for p in document["Parameters"]}
    assert parameters["InstanceId"]["Type"] == "StringList"
    assert "DefaultValue" not in parameters["InstanceId"]
    assert parameters["AutomationAssumeRole"]["Type"] == "String"
    assert parameters["AutomationAssumeRole"]["DefaultValue"] == ""
    assert ssm().get_document(Name="AWS-StopEC2Instance")["DocumentType"] == "Automation"


def test_a_document_nobody_created_is_still_invalid(emulation: SsmEmulation) -> None:
    with pytest.raises(ClientError) as refused:
        ssm().describe_document(Name="AWS-NoSuchRunbook")
    assert refused.value.response["Error"]["Code"] == "InvalidDocument"
