"""Systems Manager adapter: which instances are online managed nodes, and Run Command on one of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from opsflow.aws.errors import aws_call
from opsflow.errors import NotFound

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

SHELL_DOCUMENT = "AWS-RunShellScript"
# Statuses an invocation does not leave (Systems Manager User Guide, "Understanding command statuses").
ENDED = frozenset({"Success", "Failed", "TimedOut", "Cancelled"})


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
