"""SSM Run Command behaviours that moto 5.2.5 lacks or bends, emulated as the Systems Manager API Reference
(SendCommand, GetCommandInvocation, ListCommandInvocations, DescribeInstanceInformation) and the User Guide
("Understanding command statuses", "Understanding command timeout values", "Monitoring Systems Manager
events with Amazon EventBridge") document them.

What is emulated:
- Managed nodes (DescribeInstanceInformation; moto has no such call): an EC2 instance with an instance
  profile is a managed node once its SSM Agent has registered, `registration_seconds` after the emulation
  first saw it running (moto keeps launch times to the second only); its `PingStatus` is `Online` while it runs and `ConnectionLost` once it stops. An instance
  without an instance profile never registers, and a terminated one is not listed. `Filters` with the key
  `InstanceIds` or `PingStatus` are applied.
- SendCommand refuses an instance that is not an online managed node with `InvalidInstanceId` (moto takes
  any id, existing or not), and `AWS-RunShellScript` without its required `commands` parameter with
  `InvalidParameters`. The command answers `Pending`.
- Invocations (GetCommandInvocation, ListCommandInvocations): `Pending` until delivered
  (`delivery_seconds`), `InProgress` while the commands run, then `Success` (exit code 0), `Failed` (the
  exit code in `ResponseCode`), or `TimedOut` with StatusDetails `ExecutionTimedOut` when they run past the
  document's `executionTimeout` (default 3600 s). `ResponseCode` is -1 until they end;
  `StandardOutputContent` holds the first 24,000 characters of stdout, `StandardErrorContent` the first
  8,000 of stderr. GetCommandInvocation raises `InvocationDoesNotExist` until the invocation is delivered,
  as it may on AWS right after SendCommand. An instance that stops or terminates while its command runs
  ends it `Failed` (StatusDetails `Terminated` when it was terminated).
  moto: every invocation `Success` at once with empty output.
- Each change of an invocation's status sends an `EC2 Command Invocation Status-change Notification`
  (source `aws.ssm`, detail `command-id`, `document-name`, `instance-id`, `requested-date-time`, `status`,
  the instance's ARN in `resources`), on a best effort basis; `aws_events.wake_at` makes each change on
  time even when nobody reads the invocation.
- `respond(instance_id, exit_code, stdout, stderr, run_seconds)` (a test hook) says how the next command on
  an instance runs, or, without an instance, how every command does from then on; by default a command
  succeeds in 10 s with no output.

- AWS-owned Automation runbooks (Automation Runbook Reference): DescribeDocument and GetDocument answer
  `AWS-RestartEC2Instance`, `AWS-StopEC2Instance` and `AWS-StartEC2Instance` in every account and region,
  owner `Amazon`, type `Automation`, with their documented parameters (`InstanceId`, a required StringList,
  and the optional `AutomationAssumeRole`). moto knows only the documents an account created.

Not emulated: S3 and CloudWatch Logs output, MaxConcurrency and MaxErrors, command-level status across
several instances (`ListCommands` stays moto's), documents other than AWS-RunShellScript are run as given
without checking their parameters, cancellation. Durations are AWS seconds multiplied by `time_scale`.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.ec2.models import ec2_backends
from moto.ssm.models import Document, Documents, SimpleSystemManagerBackend
from moto.ssm.responses import SimpleSystemManagerResponse

from opsflow_local.emulation import aws_events

STDOUT_LIMIT = 24_000
STDERR_LIMIT = 8_000
DEFAULT_EXECUTION_TIMEOUT = 3600
INVOCATION_EVENT = "EC2 Command Invocation Status-change Notification"
# What each AWS-owned runbook does, by the Automation Runbook Reference; all take the same parameters.
AWS_OWNED_RUNBOOKS = {
    "AWS-RestartEC2Instance": "Restart one or more Amazon EC2 instances.",
    "AWS-StopEC2Instance": "Stop one or more Amazon EC2 instances.",
    "AWS-StartEC2Instance": "Start one or more Amazon EC2 instances.",
}


class SsmError(JsonRESTError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)


@dataclass(frozen=True)
class Script:
    """How a command runs on an instance."""

    exit_code: int = 0
    stdout: str = ""
    stderr: str = ""
    run_seconds: float = 10.0


@dataclass
class Invocation:
    account: str
    region: str
    command_id: str
    instance_id: str
    document_name: str
    comment: str
    requested: datetime
    delivered_at: float  # time.monotonic()
    ends_at: float
    script: Script
    timed_out: bool
    status: str = "Pending"
    details: str = "Pending"
    started: datetime | None = None
    ended: datetime | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "CommandId": self.command_id,
            "InstanceId": self.instance_id,
            "DocumentName": self.document_name,
            "Comment": self.comment,
            "RequestedDateTime": self.requested,
            "Status": self.status,
            "StatusDetails": self.details,
        }

    def detail(self) -> dict[str, Any]:
        ended = self.status not in ("Pending", "InProgress", "Delayed")
        return {
            **{k: v for k, v in self.summary().items() if k != "RequestedDateTime"},
            "PluginName": "aws:runShellScript",
            "ResponseCode": self.script.exit_code if ended and not self.timed_out else -1,
            "ExecutionStartDateTime": _iso(self.started) if self.started else "",
            "ExecutionEndDateTime": _iso(self.ended) if self.ended else "",
            "StandardOutputContent": self.script.stdout[:STDOUT_LIMIT] if ended else "",
            "StandardErrorContent": self.script.stderr[:STDERR_LIMIT] if ended else "",
            "StandardOutputUrl": "",
            "StandardErrorUrl": "",
        }


def _aws_owned_runbook(name: str) -> Document:
    content = {
        "schemaVersion": "0.3",
        "description": AWS_OWNED_RUNBOOKS[name],
        "assumeRole": "{{ AutomationAssumeRole }}",
        "parameters": {
            "InstanceId": {"type": "StringList", "description": "(Required) The IDs of the EC2 instances."},
            "AutomationAssumeRole": {
                "type": "String",
                "description": "(Optional) The role Automation acts as.",
                "default": "",
            },
        },
        "mainSteps": [],
    }
    return Document(
        account_id="Amazon",
        name=name,
        version_name=None,  # type: ignore[arg-type]
        content=json.dumps(content),
        document_type="Automation",
        document_format="JSON",
        requires=[],
        attachments=[],
        target_type="/AWS::EC2::Instance",
    )


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class SsmEmulation:
    time_scale: float = 1.0
    registration_seconds: float = 30.0
    delivery_seconds: float = 2.0
    _scripts: dict[str, list[Script]] = field(default_factory=dict)
    _default: Script = field(default_factory=Script)
    _invocations: dict[tuple[str, str, str], Invocation] = field(default_factory=dict)
    _mutex: threading.RLock = field(default_factory=threading.RLock)
    _first_running: dict[str, float] = field(default_factory=dict)

    # Test hooks ------------------------------------------------------------------------------------

    def respond(
        self,
        instance_id: str | None = None,
        *,
        exit_code: int = 0,
        stdout: str = "",
        stderr: str = "",
        run_seconds: float = 10.0,
    ) -> None:
        """The next command on `instance_id` runs like this (None: every command from now on)."""
        script = Script(exit_code, stdout, stderr, run_seconds)
        with self._mutex:
            if instance_id is None:
                self._default = script
            else:
                self._scripts.setdefault(instance_id, []).append(script)

    def invocations(self) -> list[Invocation]:
        with self._mutex:
            return list(self._invocations.values())

    # Installation ----------------------------------------------------------------------------------

    def install(self, stack: ExitStack) -> None:
        emulation = self

        def send_command(response: SimpleSystemManagerResponse) -> ActionResult:
            return ActionResult(
                {"Command": emulation.send_command(response.current_account, response.region, response)}
            )

        def get_command_invocation(response: SimpleSystemManagerResponse) -> ActionResult:
            found = emulation.invocation(
                response.current_account,
                response.region,
                response._get_param("CommandId"),
                response._get_param("InstanceId"),
            )
            return ActionResult(found.detail())

        def list_command_invocations(response: SimpleSystemManagerResponse) -> ActionResult:
            command_id = response._get_param("CommandId")
            instance_id = response._get_param("InstanceId")
            emulation.advance()
            with emulation._mutex:
                found = [
                    invocation.summary()
                    for (account, region, _), invocation in emulation._invocations.items()
                    if account == response.current_account
                    and region == response.region
                    and (command_id is None or invocation.command_id == command_id)
                    and (instance_id is None or invocation.instance_id == instance_id)
                ]
            return ActionResult({"CommandInvocations": found})

        def describe_instance_information(response: SimpleSystemManagerResponse) -> ActionResult:
            filters = {f["Key"]: set(f["Values"]) for f in response._get_param("Filters") or []}
            nodes = emulation.managed_nodes(response.current_account, response.region)
            listed = [
                node
                for node in nodes
                if ("InstanceIds" not in filters or node["InstanceId"] in filters["InstanceIds"])
                and ("PingStatus" not in filters or node["PingStatus"] in filters["PingStatus"])
            ]
            return ActionResult({"InstanceInformationList": listed})

        original_documents = SimpleSystemManagerBackend._get_documents

        def get_documents(backend: SimpleSystemManagerBackend, name: str) -> Documents:
            if name in AWS_OWNED_RUNBOOKS and name not in backend._documents:
                return Documents(_aws_owned_runbook(name))
            return original_documents(backend, name)

        stack.enter_context(mock.patch.object(SimpleSystemManagerBackend, "_get_documents", get_documents))
        for name, method in {
            "send_command": send_command,
            "get_command_invocation": get_command_invocation,
            "list_command_invocations": list_command_invocations,
            "describe_instance_information": describe_instance_information,
        }.items():
            stack.enter_context(mock.patch.object(SimpleSystemManagerResponse, name, method, create=True))

    # Managed nodes ---------------------------------------------------------------------------------

    def managed_nodes(self, account: str, region: str) -> list[dict[str, Any]]:
        backend = ec2_backends[account][region]
        now = datetime.now(UTC)
        moment = time.monotonic()
        registering = self.registration_seconds * self.time_scale
        nodes = []
        for reservation in backend.reservations.values():
            for instance in reservation.instances:
                if not instance.iam_instance_profile or instance.state in ("terminated", "shutting-down"):
                    continue
                with self._mutex:
                    if instance.state == "running":
                        self._first_running.setdefault(instance.id, moment)
                    seen = self._first_running.get(instance.id)
                if seen is None or moment - seen < registering:
                    continue
                registered_at = now - timedelta(seconds=moment - seen - registering)
                nodes.append(
                    {
                        "InstanceId": instance.id,
                        "PingStatus": "Online" if instance.state == "running" else "ConnectionLost",
                        "ResourceType": "EC2Instance",
                        "PlatformType": "Linux",
                        "AgentVersion": "3.3.1142.0",
                        "IsLatestVersion": False,
                        "LastPingDateTime": now,
                        "RegistrationDate": registered_at,
                    }
                )
        return nodes

    # Commands --------------------------------------------------------------------------------------

    def send_command(
        self, account: str, region: str, response: SimpleSystemManagerResponse
    ) -> dict[str, Any]:
        document = response._get_param("DocumentName")
        parameters: dict[str, list[str]] = response._get_param("Parameters") or {}
        instance_ids: list[str] = response._get_param("InstanceIds") or []
        comment = response._get_param("Comment") or ""
        if document == "AWS-RunShellScript" and not parameters.get("commands"):
            raise SsmError("InvalidParameters", 'Parameter "commands" is required.')
        online = {n["InstanceId"] for n in self.managed_nodes(account, region) if n["PingStatus"] == "Online"}
        offline = [i for i in instance_ids if i not in online]
        if offline or not instance_ids:
            raise SsmError(
                "InvalidInstanceId",
                "Instances [" + ", ".join(offline) + "] not in a valid state for account " + account,
            )
        timeout = int((parameters.get("executionTimeout") or [DEFAULT_EXECUTION_TIMEOUT])[0])
        command_id = str(uuid.uuid4())
        requested = datetime.now(UTC)
        now = time.monotonic()
        with self._mutex:
            for instance_id in instance_ids:
                script = self._next_script(instance_id)
                delivered = now + self.delivery_seconds * self.time_scale
                runs = min(script.run_seconds, timeout)
                invocation = Invocation(
                    account=account,
                    region=region,
                    command_id=command_id,
                    instance_id=instance_id,
                    document_name=document,
                    comment=comment,
                    requested=requested,
                    delivered_at=delivered,
                    ends_at=delivered + runs * self.time_scale,
                    script=script,
                    timed_out=script.run_seconds > timeout,
                )
                self._invocations[(account, region, f"{command_id}/{instance_id}")] = invocation
                aws_events.wake_at(invocation.delivered_at, self.advance)
                aws_events.wake_at(invocation.ends_at, self.advance)
        return {
            "CommandId": command_id,
            "DocumentName": document,
            "Comment": comment,
            "Parameters": parameters,
            "InstanceIds": instance_ids,
            "RequestedDateTime": requested,
            "Status": "Pending",
            "StatusDetails": "Pending",
            "TargetCount": len(instance_ids),
            "CompletedCount": 0,
            "ErrorCount": 0,
        }

    def _next_script(self, instance_id: str) -> Script:
        queued = self._scripts.get(instance_id)
        return queued.pop(0) if queued else self._default

    def invocation(self, account: str, region: str, command_id: str, instance_id: str) -> Invocation:
        self.advance()
        with self._mutex:
            found = self._invocations.get((account, region, f"{command_id}/{instance_id}"))
            if found is None or time.monotonic() < found.delivered_at:
                raise SsmError(
                    "InvocationDoesNotExist",
                    "The command ID and managed node ID you specified didn't match any invocations.",
                )
            return found

    def advance(self) -> None:
        """Bring every invocation up to now, sending an event for each change of status."""
        now = time.monotonic()
        changed: list[Invocation] = []
        with self._mutex:
            for invocation in self._invocations.values():
                if invocation.status == "Pending" and now >= invocation.delivered_at:
                    invocation.status = invocation.details = "InProgress"
                    invocation.started = datetime.now(UTC)
                    changed.append(invocation)
                if invocation.status == "InProgress":
                    stopped = self._instance_state(invocation)
                    if stopped in ("stopped", "stopping", "terminated", "shutting-down"):
                        invocation.status = "Failed"
                        invocation.details = (
                            "Terminated" if stopped in ("terminated", "shutting-down") else "Failed"
                        )
                        invocation.ended = datetime.now(UTC)
                        changed.append(invocation)
                    elif now >= invocation.ends_at:
                        if invocation.timed_out:
                            invocation.status, invocation.details = "TimedOut", "ExecutionTimedOut"
                        elif invocation.script.exit_code == 0:
                            invocation.status = invocation.details = "Success"
                        else:
                            invocation.status = invocation.details = "Failed"
                        invocation.ended = datetime.now(UTC)
                        changed.append(invocation)
        for invocation in changed:
            self._send(invocation)

    @staticmethod
    def _instance_state(invocation: Invocation) -> str | None:
        backend = ec2_backends[invocation.account][invocation.region]
        for reservation in backend.reservations.values():
            for instance in reservation.instances:
                if instance.id == invocation.instance_id:
                    return str(instance.state)
        return None

    @staticmethod
    def _send(invocation: Invocation) -> None:
        aws_events.send(
            invocation.account,
            invocation.region,
            "aws.ssm",
            INVOCATION_EVENT,
            [f"arn:aws:ec2:{invocation.region}:{invocation.account}:instance/{invocation.instance_id}"],
            {
                "command-id": invocation.command_id,
                "document-name": invocation.document_name,
                "instance-id": invocation.instance_id,
                "requested-date-time": _iso(invocation.requested),
                "status": invocation.status,
            },
        )
