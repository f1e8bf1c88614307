"""Systems Manager adapter: which instances are online managed nodes, Run Command on one of them, and
Automation runbooks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opsflow.aws.errors import aws_call
from opsflow.errors import NotFound

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

SHELL_DOCUMENT = "AWS-RunShellScript"
# Statuses an invocation does not leave (Systems Manager User Guide, "Understanding command statuses").
ENDED = frozenset({"Success", "Failed", "TimedOut", "Cancelled"})
# Statuses an Automation execution does not leave (API Reference, AutomationExecution).
AUTOMATION_ENDED = frozenset(
    {
        "Success",
        "Failed",
        "TimedOut",
        "Cancelled",
        "CompletedWithSuccess",
        "CompletedWithFailure",
        "Rejected",
        "Exited",
    }
)


@dataclass(frozen=True)
class Document:
    name: str
    document_type: str
    # Each parameter's name, and whether it has a default (one without is required).
    parameters: dict[str, bool]

    @property
    def required(self) -> list[str]:
        return [name for name, has_default in self.parameters.items() if not has_default]


@dataclass(frozen=True)
class Invocation:
    status: str
    details: str
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ended(self) -> bool:
        return self.status in ENDED


@dataclass(frozen=True)
class Automation:
    execution_id: str
    status: str
    failure: str = ""

    @property
    def ended(self) -> bool:
        return self.status in AUTOMATION_ENDED

    @property
    def succeeded(self) -> bool:
        return self.status in ("Success", "CompletedWithSuccess")


class Ssm:
    def __init__(self, client: SSMClient) -> None:
        self._ssm = client

    def ping_status(self, instance_id: str) -> str | None:
        """`Online` once the instance's SSM Agent has registered and answers; None while it is no managed node."""
        with aws_call("DescribeInstanceInformation"):
            found = self._ssm.describe_instance_information(
                Filters=[{"Key": "InstanceIds", "Values": [instance_id]}]
            )["InstanceInformationList"]
        return str(found[0].get("PingStatus")) if found else None

    def send(
        self,
        instance_id: str,
        document: str,
        parameters: dict[str, list[str]],
        comment: str,
        delivery_timeout_seconds: int = 600,
    ) -> str:
        with aws_call("SendCommand"):
            sent = self._ssm.send_command(
                InstanceIds=[instance_id],
                DocumentName=document,
                Parameters=parameters,
                Comment=comment[:100],
                TimeoutSeconds=delivery_timeout_seconds,
            )
        return str(sent["Command"]["CommandId"])

    def document(self, name: str, version: str | None = None) -> Document | None:
        """The document's type and parameters, or None if there is no such document (or version)."""
        kwargs = {"Name": name, **({"DocumentVersion": version} if version else {})}
        with aws_call("DescribeDocument"):
            try:
                found = self._ssm.describe_document(**kwargs)["Document"]
            except self._ssm.exceptions.InvalidDocument:
                return None
            except self._ssm.exceptions.InvalidDocumentVersion:
                return None
        return Document(
            name=str(found["Name"]),
            document_type=str(found.get("DocumentType", "")),
            parameters={str(p["Name"]): "DefaultValue" in p for p in found.get("Parameters", [])},
        )

    def invocation(self, command_id: str, instance_id: str) -> Invocation:
        """The command's run on the instance; NotFound just after SendCommand, before it is delivered."""
        with aws_call("GetCommandInvocation", not_found=f"command {command_id} has no invocation yet"):
            try:
                found = self._ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
            except self._ssm.exceptions.InvocationDoesNotExist as error:
                raise NotFound(f"command {command_id} has no invocation on {instance_id} yet") from error
        return Invocation(
            status=str(found.get("Status", "")),
            details=str(found.get("StatusDetails", "")),
            exit_code=int(found.get("ResponseCode", -1)),
            stdout=str(found.get("StandardOutputContent", "")),
            stderr=str(found.get("StandardErrorContent", "")),
        )

    def start_automation(
        self, document: str, version: str | None, parameters: dict[str, list[str]], client_token: str
    ) -> str:
        """Start the runbook; the same client token starts it once however often it is asked."""
        kwargs: dict[str, Any] = {"DocumentVersion": version} if version else {}
        with aws_call("StartAutomationExecution"):
            started = self._ssm.start_automation_execution(
                DocumentName=document, Parameters=parameters, ClientToken=client_token, **kwargs
            )
        return str(started["AutomationExecutionId"])

    def automation(self, execution_id: str) -> Automation:
        with aws_call("GetAutomationExecution", not_found=f"no Automation execution {execution_id}"):
            found = self._ssm.get_automation_execution(AutomationExecutionId=execution_id)[
                "AutomationExecution"
            ]
        return Automation(
            execution_id=execution_id,
            status=str(found.get("AutomationExecutionStatus", "")),
            failure=str(found.get("FailureMessage", "")),
        )
