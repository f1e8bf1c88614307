"""SSM Run Command and Automation behaviours that moto 5.2.5 lacks or bends, emulated as the Systems Manager
API Reference (SendCommand, GetCommandInvocation, ListCommandInvocations, DescribeInstanceInformation,
StartAutomationExecution, GetAutomationExecution, StopAutomationExecution, DescribeAutomationExecutions), the
User Guide ("Understanding command statuses", "Understanding command timeout values", "Monitoring Systems
Manager events with Amazon EventBridge", "Amazon EventBridge event examples for Systems Manager", "Reference:
Amazon EventBridge event patterns and types for Systems Manager") and the Automation actions reference
document them.

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
  and the optional `AutomationAssumeRole`). moto knows only the documents an account created. Their
  mainSteps are `aws:changeInstanceState` steps: `stopInstances` (DesiredState `stopped`) then
  `startInstances` (`running`) for the restart, one of them for the stop and the start.

- Automation executions (moto has none of these calls):
  - StartAutomationExecution runs an Automation document of the account's (CreateDocument, schema 0.3) or
    one of the AWS-owned runbooks above, by name or ARN, at `DocumentVersion` (a number, `$DEFAULT` or
    `$LATEST`; default `$DEFAULT`). No such document, or one that is not of type Automation:
    `AutomationDefinitionNotFoundException`; no such version: `AutomationDefinitionVersionNotFoundException`.
    A required parameter (one without a `default`) not given, a parameter the document does not declare,
    or a value outside its `allowedValues`: `InvalidAutomationExecutionParametersException` naming them.
    The same `ClientToken` returns the first execution's id; with other parameters it is
    `IdempotentParameterMismatch`.
  - GetAutomationExecution and DescribeAutomationExecutions (filters `ExecutionId`, `DocumentNamePrefix`,
    `ExecutionStatus`; newest first, in one page): the execution is `Pending` for `automation_pending_seconds`, then
    `InProgress` while its mainSteps run in order, then `Success`, or `Failed` with a `FailureMessage`
    naming the step and its error, or `TimedOut` when a step ran past its `timeoutSeconds`. Each step
    execution (all listed from the start, `Pending` until reached) has its status, times, resolved
    `Inputs` (JSON-encoded, as AWS reports them), and its `FailureMessage`. `Parameters` are the given ones
    and the defaults; `{{ Parameter }}`, `{{ global:ACCOUNT_ID }}`, `{{ global:REGION }}`,
    `{{ global:AWS_PARTITION }}` and `{{ automation:EXECUTION_ID }}` in step inputs are resolved.
    `onFailure` (`Abort`, `Continue`, `step:<name>`), `isCritical`, `nextStep` and `isEnd` are followed.
    An unknown id is `AutomationExecutionNotFoundException`.
  - Steps run: `aws:changeInstanceState` (`InstanceIds`, `DesiredState` running, stopped or terminated,
    `CheckStateOnly`) calls StopInstances, StartInstances or TerminateInstances on the EC2 backend of the
    execution's account and region (so the EC2 emulation's transitions, their timings and their state-change
    events apply) and waits, polling every `automation_poll_seconds`, until every instance is in that state;
    EC2's refusal (an instance that does not exist, one that cannot be started) fails the step with EC2's
    message, and so does an instance terminated while the step waits for it to run or stop.
    `aws:sleep` waits its ISO 8601 `Duration` (or until its `Timestamp`). Any other action is not run: the
    execution fails when it reaches that step, whatever its onFailure, with a FailureMessage saying the
    embedded runtime does not run that action.
  - StopAutomationExecution (Type `Cancel`) makes a running execution `Cancelling`, then `Cancelled` after
    `automation_cancel_seconds` (its running step `Cancelled`); an execution that has ended is
    `InvalidAutomationStatusUpdateException`. An EC2 transition already asked for goes on.
  - Events, on the default bus of the execution's account and region, through the same path as the Run
    Command ones (best effort): `EC2 Automation Execution Status-change Notification` when the execution
    ends (`Success`, `Failed`, `TimedOut`, `Cancelled`: of the statuses the event reference lists for it,
    those the emulation reaches; it lists no `Pending` or `InProgress`, so none is sent for them; it spells
    `Canceled`, the API `Cancelled`, which the emulation sends) and `EC2 Automation Step Status-change
    Notification` when a step ends. Source `aws.ssm`, `resources` the execution's ARN and the definition's
    (`arn:aws:ssm:<region>:<account>:automation-definition/<name>:<version>`, no account for an AWS-owned
    runbook), detail as the documented examples show it: `ExecutionId`, `Definition`, `DefinitionVersion`
    (a number, 1.0), `Status`, `StartTime` and `EndTime` (`Nov 29, 2016 7:43:20 PM`, UTC), `Time` (elapsed
    milliseconds, real ones), and `ExecutedBy` (the execution's) or, for a step, `StepName` and `Action`.
  - `fail_next_automation(document, message)` (a test hook): the next execution of that document fails
    at its first step with this FailureMessage, touching no instance.

Not emulated: S3 and CloudWatch Logs output, MaxConcurrency and MaxErrors, command-level status across
several instances (`ListCommands` stays moto's), documents other than AWS-RunShellScript are run as given
without checking their parameters, cancelling commands. Automation: any action but the two above, step
outputs and the document's `outputs` (`Outputs` stays empty; `{{ step.Output }}` is left unresolved),
`maxAttempts` retries, Force stops, parameter types (values are taken as given), Interactive mode, rate
control and multiple accounts or Regions (`Targets`, `TargetMaps`, `TargetLocations` are refused),
approvals, StopAutomationExecution Type `Complete`, DescribeAutomationStepExecutions, and the steps' calls
are not held to the `AutomationAssumeRole`'s policies (the execution acts as AWS would with a role allowed
everything it does); `ExecutedBy` is whoever moto takes the caller for. Durations are AWS seconds multiplied
by `time_scale`.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

from moto.core.exceptions import JsonRESTError, ServiceException
from moto.core.responses import ActionResult
from moto.ec2.models import ec2_backends
from moto.ssm.exceptions import InvalidDocument
from moto.ssm.models import Document, Documents, SimpleSystemManagerBackend
from moto.ssm.responses import SimpleSystemManagerResponse
from moto.sts.models import sts_backends
from moto.utilities.utils import get_partition
from werkzeug.exceptions import HTTPException

from opsflow_local.emulation import aws_events

STDOUT_LIMIT = 24_000
STDERR_LIMIT = 8_000
DEFAULT_EXECUTION_TIMEOUT = 3600
INVOCATION_EVENT = "EC2 Command Invocation Status-change Notification"
AUTOMATION_EVENT = "EC2 Automation Execution Status-change Notification"
AUTOMATION_STEP_EVENT = "EC2 Automation Step Status-change Notification"
# Statuses an Automation execution (or step) of the emulation does not leave.
AUTOMATION_ENDED = frozenset({"Success", "Failed", "TimedOut", "Cancelled"})
# The actions the embedded runtime runs (Automation actions reference).
RUN_ACTIONS = ("aws:changeInstanceState", "aws:sleep")
# What each AWS-owned runbook does, by the Automation Runbook Reference; all take the same parameters.
AWS_OWNED_RUNBOOKS = {
    "AWS-RestartEC2Instance": "Restart one or more Amazon EC2 instances.",
    "AWS-StopEC2Instance": "Stop one or more Amazon EC2 instances.",
    "AWS-StartEC2Instance": "Start one or more Amazon EC2 instances.",
}
# Their steps: each changes the instances' state and waits until they are in it.
_RUNBOOK_STATES = {
    "AWS-RestartEC2Instance": [("stopInstances", "stopped"), ("startInstances", "running")],
    "AWS-StopEC2Instance": [("stopInstances", "stopped")],
    "AWS-StartEC2Instance": [("startInstances", "running")],
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
        "mainSteps": [
            {
                "name": step,
                "action": "aws:changeInstanceState",
                "inputs": {"InstanceIds": "{{ InstanceId }}", "DesiredState": state},
            }
            for step, state in _RUNBOOK_STATES[name]
        ],
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


# Automation -----------------------------------------------------------------------------------------

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# `{{ InstanceId }}`, `{{ global:REGION }}`, `{{ automation:EXECUTION_ID }}` in a step's inputs.
_REFERENCE = re.compile(r"\{\{\s*([\w:.-]+)\s*\}\}")
_DURATION = re.compile(
    r"P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)
_STATES = ("running", "stopped", "terminated")


def _event_time(moment: datetime) -> str:
    """A time as the Automation events' detail writes it: `Nov 29, 2016 7:43:20 PM` (UTC)."""
    hour = moment.hour % 12 or 12
    half = "AM" if moment.hour < 12 else "PM"
    return f"{_MONTHS[moment.month - 1]} {moment.day}, {moment.year} {hour}:{moment:%M:%S} {half}"


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def _resolve(value: Any, values: dict[str, Any]) -> Any:
    """A step input with its `{{ ... }}` references replaced; a reference that is the whole value takes the
    parameter's own value (a StringList stays a list), one inside a text its text."""
    if isinstance(value, str):
        whole = _REFERENCE.fullmatch(value.strip())
        if whole and whole.group(1) in values:
            return values[whole.group(1)]
        return _REFERENCE.sub(
            lambda m: _text(values[m.group(1)]) if m.group(1) in values else m.group(0), value
        )
    if isinstance(value, list):
        resolved: list[Any] = []
        for item in value:
            found = _resolve(item, values)
            if isinstance(item, str) and isinstance(found, list):
                resolved.extend(found)
            else:
                resolved.append(found)
        return resolved
    if isinstance(value, dict):
        return {key: _resolve(item, values) for key, item in value.items()}
    return value


def _duration_seconds(text: str) -> float | None:
    match = _DURATION.fullmatch(text.strip())
    if match is None or not any(match.groupdict().values()):
        return None
    parts = {key: float(found) for key, found in match.groupdict().items() if found}
    return (
        parts.get("days", 0) * 86400
        + parts.get("hours", 0) * 3600
        + parts.get("minutes", 0) * 60
        + parts.get("seconds", 0)
    )


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _sleep_seconds(inputs: dict[str, Any]) -> float | None:
    """How long an aws:sleep step sleeps: its Duration, or until its Timestamp; None if neither is valid."""
    if "Timestamp" not in inputs:
        return _duration_seconds(str(inputs.get("Duration", "")))
    try:
        at = datetime.fromisoformat(str(inputs["Timestamp"]).replace("Z", "+00:00"))
    except ValueError:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return max(0.0, (at - datetime.now(UTC)).total_seconds())


def _ec2_failure(error: Exception) -> str:
    code = getattr(error, "error_type", None) or getattr(error, "code", "")
    message = getattr(error, "message", None) or str(error)
    return f"{message} (Service: AmazonEC2; Error Code: {code})"


def _caller_arn(response: SimpleSystemManagerResponse) -> str:
    """Who moto takes the caller for (GetCallerIdentity's Arn)."""
    try:
        backend = sts_backends[response.current_account][response.partition]
        return str(backend.get_caller_identity(response.get_access_key(), response.region)[1])
    except (KeyError, LookupError, ServiceException):
        return ""


def _checked_parameters(
    document: str, declared: dict[str, Any], given: dict[str, list[str]]
) -> dict[str, list[str]]:
    """The execution's parameters, the given ones and the defaults, once they match what the document
    declares; else InvalidAutomationExecutionParametersException naming what is wrong."""
    missing = sorted(name for name, spec in declared.items() if not given.get(name) and "default" not in spec)
    unknown = sorted(set(given) - set(declared))
    problems = []
    if missing:
        problems.append(f"Parameters required by {document} were not given: {', '.join(missing)}")
    if unknown:
        problems.append(f"Parameters not declared by {document}: {', '.join(unknown)}")
    for name, values in given.items():
        allowed = [_text(v) for v in (declared.get(name) or {}).get("allowedValues") or []]
        wrong = [v for v in values if allowed and v not in allowed]
        if wrong:
            problems.append(f"Parameter {name} takes {', '.join(allowed)}, not {', '.join(wrong)}")
    if problems:
        raise SsmError("InvalidAutomationExecutionParametersException", ". ".join(problems) + ".")
    parameters: dict[str, list[str]] = {}
    for name, spec in declared.items():
        if name in given:
            parameters[name] = [str(v) for v in given[name]]
        else:
            default = spec["default"]
            parameters[name] = [_text(v) for v in default] if isinstance(default, list) else [_text(default)]
    return parameters


@dataclass
class AutomationStep:
    """One of an execution's mainSteps as it runs."""

    spec: dict[str, Any]
    step_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str = "Pending"
    inputs: dict[str, Any] | None = None  # resolved when the step starts
    started: datetime | None = None
    ended: datetime | None = None
    failure: str = ""
    wait_until: float | None = None  # aws:sleep: when it is over (time.monotonic())
    timeout_at: float | None = None

    @property
    def name(self) -> str:
        return str(self.spec.get("name", ""))

    @property
    def action(self) -> str:
        return str(self.spec.get("action", ""))

    @property
    def critical(self) -> bool:
        return _flag(self.spec.get("isCritical", True))

    def view(self) -> dict[str, Any]:
        """The step as StepExecution (API Reference) describes it."""
        found: dict[str, Any] = {
            "StepName": self.name,
            "Action": self.action,
            "StepExecutionId": self.step_id,
            "StepStatus": self.status,
            "OnFailure": str(self.spec.get("onFailure", "Abort")),
            "MaxAttempts": int(_number(self.spec.get("maxAttempts")) or 1),
            "IsEnd": _flag(self.spec.get("isEnd", False)),
            "IsCritical": self.critical,
        }
        if _number(self.spec.get("timeoutSeconds")) is not None:
            found["TimeoutSeconds"] = int(_number(self.spec["timeoutSeconds"]) or 0)
        if "nextStep" in self.spec:
            found["NextStep"] = str(self.spec["nextStep"])
        if self.inputs is not None:
            found["Inputs"] = {key: json.dumps(value) for key, value in self.inputs.items()}
        if self.started:
            found["ExecutionStartTime"] = self.started
        if self.ended:
            found["ExecutionEndTime"] = self.ended
        if self.failure:
            found["FailureMessage"] = self.failure
        return found


@dataclass
class AutomationRun:
    """An Automation execution."""

    account: str
    region: str
    execution_id: str
    document_name: str
    document_version: str
    aws_owned: bool
    parameters: dict[str, list[str]]  # the given ones and the defaults
    values: dict[str, Any]  # what each `{{ reference }}` in a step's inputs stands for
    steps: list[AutomationStep]
    executed_by: str
    pending_until: float  # time.monotonic()
    planned_failure: str | None = None
    status: str = "Pending"
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended: datetime | None = None
    failure: str = ""
    current: int = 0  # the step running, or the next to run
    critical_failure: str = ""  # a critical step failed and its onFailure went on
    cancel_at: float | None = None

    @property
    def partition(self) -> str:
        return get_partition(self.region)

    @property
    def arn(self) -> str:
        return (
            f"arn:{self.partition}:ssm:{self.region}:{self.account}:automation-execution/{self.execution_id}"
        )

    @property
    def definition_arn(self) -> str:
        owner = "" if self.aws_owned else self.account
        return (
            f"arn:{self.partition}:ssm:{self.region}:{owner}:automation-definition/"
            f"{self.document_name}:{self.document_version}"
        )

    def _running_step(self) -> AutomationStep | None:
        running = [step for step in self.steps if step.status == "InProgress"]
        return running[0] if running else None

    def metadata(self) -> dict[str, Any]:
        """The execution as AutomationExecutionMetadata (DescribeAutomationExecutions) describes it."""
        found: dict[str, Any] = {
            "AutomationExecutionId": self.execution_id,
            "DocumentName": self.document_name,
            "DocumentVersion": self.document_version,
            "AutomationExecutionStatus": self.status,
            "ExecutionStartTime": self.started,
            "Mode": "Auto",
            "AutomationType": "Local",
        }
        if self.executed_by:
            found["ExecutedBy"] = self.executed_by
        if self.ended:
            found["ExecutionEndTime"] = self.ended
        if self.failure:
            found["FailureMessage"] = self.failure
        running = self._running_step()
        if running is not None and self.status not in AUTOMATION_ENDED:
            found["CurrentStepName"] = running.name
            found["CurrentAction"] = running.action
        return found

    def view(self) -> dict[str, Any]:
        """The execution as AutomationExecution (GetAutomationExecution) describes it."""
        found = {k: v for k, v in self.metadata().items() if k != "AutomationType"}
        found["StepExecutions"] = [step.view() for step in self.steps]
        found["StepExecutionsTruncated"] = False
        if self.parameters:
            found["Parameters"] = {name: list(values) for name, values in self.parameters.items()}
        return found


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
    # Automation: how long an execution is Pending, how often a step looks at the instances it waits for,
    # how long a cancelled execution is Cancelling (AWS seconds).
    automation_pending_seconds: float = 2.0
    automation_poll_seconds: float = 5.0
    automation_cancel_seconds: float = 2.0
    _automations: dict[tuple[str, str, str], AutomationRun] = field(default_factory=dict)
    _automation_tokens: dict[tuple[str, str, str], tuple[str, str]] = field(default_factory=dict)
    _automation_failures: dict[str, list[str]] = field(default_factory=dict)
    _advancing: bool = False  # a thread is advancing the executions
    _advance_again: bool = False  # someone asked meanwhile: advance once more

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

    def fail_next_automation(
        self, document: str, message: str = "Step fails when it is Executing: an internal error occurred."
    ) -> None:
        """The next execution of `document` fails at its first step with this FailureMessage, touching no
        instance."""
        with self._mutex:
            self._automation_failures.setdefault(document, []).append(message)

    def automations(self) -> list[AutomationRun]:
        with self._mutex:
            return list(self._automations.values())

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

        def start_automation_execution(response: SimpleSystemManagerResponse) -> ActionResult:
            execution_id = emulation.start_automation(response)
            return ActionResult({"AutomationExecutionId": execution_id})

        def get_automation_execution(response: SimpleSystemManagerResponse) -> ActionResult:
            found = emulation.automation(
                response.current_account, response.region, str(response._get_param("AutomationExecutionId"))
            )
            return ActionResult({"AutomationExecution": found})

        def stop_automation_execution(response: SimpleSystemManagerResponse) -> ActionResult:
            emulation.stop_automation(
                response.current_account,
                response.region,
                str(response._get_param("AutomationExecutionId")),
                response._get_param("Type") or "Cancel",
            )
            return ActionResult({})

        def describe_automation_executions(response: SimpleSystemManagerResponse) -> ActionResult:
            filters = {f["Key"]: list(f["Values"]) for f in response._get_param("Filters") or []}
            found = emulation.describe_automations(response.current_account, response.region, filters)
            return ActionResult({"AutomationExecutionMetadataList": found})

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
            "start_automation_execution": start_automation_execution,
            "get_automation_execution": get_automation_execution,
            "stop_automation_execution": stop_automation_execution,
            "describe_automation_executions": describe_automation_executions,
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
        changed: list[tuple[Invocation, str]] = []  # with the status it changed to
        with self._mutex:
            for invocation in self._invocations.values():
                if invocation.status == "Pending" and now >= invocation.delivered_at:
                    invocation.status = invocation.details = "InProgress"
                    invocation.started = datetime.now(UTC)
                    changed.append((invocation, invocation.status))
                if invocation.status == "InProgress":
                    stopped = self._instance_state(invocation)
                    if stopped in ("stopped", "stopping", "terminated", "shutting-down"):
                        invocation.status = "Failed"
                        invocation.details = (
                            "Terminated" if stopped in ("terminated", "shutting-down") else "Failed"
                        )
                        invocation.ended = datetime.now(UTC)
                        changed.append((invocation, invocation.status))
                    elif now >= invocation.ends_at:
                        if invocation.timed_out:
                            invocation.status, invocation.details = "TimedOut", "ExecutionTimedOut"
                        elif invocation.script.exit_code == 0:
                            invocation.status = invocation.details = "Success"
                        else:
                            invocation.status = invocation.details = "Failed"
                        invocation.ended = datetime.now(UTC)
                        changed.append((invocation, invocation.status))
        # An invocation that started and ended since the last advance changed twice: one event each, with
        # the status of each change, not the one it has now.
        for invocation, status in changed:
            self._send(invocation, status)

    # Automation ------------------------------------------------------------------------------------

    def start_automation(self, response: SimpleSystemManagerResponse) -> str:
        """StartAutomationExecution: the new execution's id (or, for a client token used before, the first
        one's)."""
        account, region = response.current_account, response.region
        for unsupported in ("Targets", "TargetMaps", "TargetLocations", "TargetLocationsURL"):
            if response._get_param(unsupported):
                raise SsmError(
                    "ValidationException",
                    f"The embedded runtime does not run Automation with {unsupported} (rate control, several "
                    "accounts or Regions): start one execution per resource.",
                )
        if (response._get_param("Mode") or "Auto") != "Auto":
            raise SsmError("ValidationException", "The embedded runtime runs Automation in Auto mode only.")
        given_name = str(response._get_param("DocumentName"))
        name = given_name.rsplit("document/", 1)[-1] if given_name.startswith("arn:") else given_name
        version = response._get_param("DocumentVersion")
        given: dict[str, list[str]] = response._get_param("Parameters") or {}
        token = response._get_param("ClientToken")
        document = self._automation_document(response.ssm_backend, name, version)
        declared = {
            key: dict(spec or {}) for key, spec in (document.content_json.get("parameters") or {}).items()
        }
        parameters = _checked_parameters(name, declared, given)
        request = json.dumps([name, version, given], sort_keys=True)
        execution_id = str(uuid.uuid4())
        values: dict[str, Any] = {
            key: list(parameters[key])
            if declared[key].get("type") in ("StringList", "MapList")
            else (parameters[key][0] if parameters[key] else "")
            for key in declared
        }
        values.update(
            {
                "global:ACCOUNT_ID": account,
                "global:REGION": region,
                "global:AWS_PARTITION": get_partition(region),
                "automation:EXECUTION_ID": execution_id,
            }
        )
        with self._mutex:
            if token:
                key = (account, region, str(token).lower())
                if key in self._automation_tokens:
                    first, first_request = self._automation_tokens[key]
                    if first_request != request:
                        raise SsmError(
                            "IdempotentParameterMismatch",
                            "The client token was used before for an execution with other parameters.",
                        )
                    return first
                self._automation_tokens[key] = (execution_id, request)
            failures = self._automation_failures.get(name) or []
            run = AutomationRun(
                account=account,
                region=region,
                execution_id=execution_id,
                document_name=name,
                document_version=str(document.document_version),
                aws_owned=document.owner == "Amazon",
                parameters=parameters,
                values=values,
                steps=[AutomationStep(dict(spec)) for spec in document.content_json.get("mainSteps") or []],
                executed_by=_caller_arn(response),
                pending_until=time.monotonic() + self.automation_pending_seconds * self.time_scale,
                planned_failure=failures.pop(0) if failures else None,
            )
            self._automations[(account, region, execution_id)] = run
        self._wake(run.pending_until)
        return execution_id

    @staticmethod
    def _automation_document(backend: SimpleSystemManagerBackend, name: str, version: str | None) -> Document:
        try:
            documents = backend._get_documents(name)
        except InvalidDocument:
            documents = None
        if documents is None or documents.get_default_version().document_type != "Automation":
            raise SsmError(
                "AutomationDefinitionNotFoundException",
                f"An Automation runbook named {name} couldn't be found in this account and Region.",
            )
        try:
            return documents.find(None if version in (None, "", "$DEFAULT") else version)
        except InvalidDocument:
            raise SsmError(
                "AutomationDefinitionVersionNotFoundException",
                f"Version {version} of the Automation runbook {name} couldn't be found.",
            ) from None

    def automation(self, account: str, region: str, execution_id: str) -> dict[str, Any]:
        """GetAutomationExecution's AutomationExecution."""
        self.advance_automations()
        with self._mutex:
            return self._run(account, region, execution_id).view()

    def _run(self, account: str, region: str, execution_id: str) -> AutomationRun:
        found = self._automations.get((account, region, execution_id))
        if found is None:
            raise SsmError(
                "AutomationExecutionNotFoundException",
                f"Automation execution {execution_id} couldn't be found in this account and Region.",
            )
        return found

    def describe_automations(
        self, account: str, region: str, filters: dict[str, list[str]]
    ) -> list[dict[str, Any]]:
        """DescribeAutomationExecutions' list, newest first."""
        unsupported = sorted(set(filters) - {"ExecutionId", "DocumentNamePrefix", "ExecutionStatus"})
        if unsupported:
            raise SsmError(
                "InvalidFilterKey",
                "The embedded runtime filters Automation executions by ExecutionId, DocumentNamePrefix and "
                f"ExecutionStatus only, not {', '.join(unsupported)}.",
            )
        self.advance_automations()
        statuses = {s.lower() for s in filters.get("ExecutionStatus", [])}
        with self._mutex:
            runs = sorted(
                (r for r in self._automations.values() if (r.account, r.region) == (account, region)),
                key=lambda r: r.started,
                reverse=True,
            )
            return [
                run.metadata()
                for run in runs
                if ("ExecutionId" not in filters or run.execution_id in filters["ExecutionId"])
                and (
                    "DocumentNamePrefix" not in filters
                    or any(run.document_name.startswith(p) for p in filters["DocumentNamePrefix"])
                )
                and (not statuses or run.status.lower() in statuses)
            ]

    def stop_automation(self, account: str, region: str, execution_id: str, stop_type: str) -> None:
        """StopAutomationExecution: Cancelling now, Cancelled once `automation_cancel_seconds` have passed."""
        if stop_type != "Cancel":
            raise SsmError(
                "ValidationException",
                "The embedded runtime stops an Automation execution by cancelling it only.",
            )
        self.advance_automations()
        with self._mutex:
            run = self._run(account, region, execution_id)
            if run.status in AUTOMATION_ENDED:
                raise SsmError(
                    "InvalidAutomationStatusUpdateException",
                    f"Automation execution {execution_id} has ended ({run.status}): it cannot be stopped.",
                )
            if run.status == "Cancelling":
                return
            run.status = "Cancelling"
            run.cancel_at = time.monotonic() + self.automation_cancel_seconds * self.time_scale
            due = run.cancel_at
        self._wake(due)

    def _wake(self, due: float) -> None:
        aws_events.wake_at(due, self.advance_automations)

    def advance_automations(self) -> None:
        """Bring every execution up to now. One thread at a time does it, outside the lock (a step calls EC2,
        whose events may reach code that reads the execution): a call while another thread (or the same one,
        from within) advances asks that one to go over the executions once more, and returns."""
        with self._mutex:
            self._advance_again = True
            if self._advancing:
                return
            self._advancing = True
        try:
            while True:
                with self._mutex:
                    if not self._advance_again:
                        self._advancing = False
                        return
                    self._advance_again = False
                    running = [r for r in self._automations.values() if r.status not in AUTOMATION_ENDED]
                for run in running:
                    self._progress(run)
        except BaseException:
            with self._mutex:
                self._advancing = False
            raise

    def _progress(self, run: AutomationRun) -> None:
        while True:
            now = time.monotonic()
            with self._mutex:
                status = run.status
            if status in AUTOMATION_ENDED:
                return
            if status == "Cancelling":
                if run.cancel_at is None or now >= run.cancel_at:
                    self._end(run, "Cancelled", "")
                return
            if status == "Pending":
                if now < run.pending_until:
                    self._wake(run.pending_until)
                    return
                with self._mutex:
                    if run.status == "Pending":
                        run.status = "InProgress"
                continue
            if run.current >= len(run.steps):
                if run.planned_failure is not None:
                    self._end(run, "Failed", run.planned_failure)
                else:
                    self._end(run, "Failed" if run.critical_failure else "Success", run.critical_failure)
                return
            step = run.steps[run.current]
            outcome = self._begin(run, step) if step.status == "Pending" else self._check(run, step, now)
            if outcome is None:
                return
            self._step_ended(run, step, *outcome)

    def _begin(self, run: AutomationRun, step: AutomationStep) -> tuple[str, str, bool] | None:
        """Start a step; its outcome (status, failure, whether it ends the execution whatever its onFailure)
        if it ended at once, else None."""
        with self._mutex:
            if run.status != "InProgress":
                return None
            planned, run.planned_failure = run.planned_failure, None
            step.status = "InProgress"
            step.started = datetime.now(UTC)
            step.inputs = _resolve(dict(step.spec.get("inputs") or {}), run.values)
            timeout = _number(step.spec.get("timeoutSeconds"))
            if timeout is not None:
                step.timeout_at = time.monotonic() + timeout * self.time_scale
            inputs = dict(step.inputs or {})
        if planned is not None:
            return "Failed", planned, True
        if step.action == "aws:sleep":
            seconds = _sleep_seconds(inputs)
            if seconds is None:
                return "Failed", "The step's Duration or Timestamp is no ISO 8601 duration or time.", False
            step.wait_until = time.monotonic() + seconds * self.time_scale
        elif step.action == "aws:changeInstanceState":
            desired = str(inputs.get("DesiredState", ""))
            instance_ids = inputs.get("InstanceIds")
            if desired not in _STATES:
                return "Failed", f"DesiredState must be one of {', '.join(_STATES)}, not {desired!r}.", False
            if not instance_ids:
                return "Failed", "InstanceIds names no instance.", False
            if not _flag(inputs.get("CheckStateOnly", False)):
                ids = [str(i) for i in (instance_ids if isinstance(instance_ids, list) else [instance_ids])]
                backend = ec2_backends[run.account][run.region]
                change = {
                    "stopped": backend.stop_instances,
                    "running": backend.start_instances,
                    "terminated": backend.terminate_instances,
                }[desired]
                try:
                    change(ids)
                except (ServiceException, HTTPException) as error:
                    return "Failed", _ec2_failure(error), False
        else:
            return (
                "Failed",
                f"The embedded runtime does not run {step.action} steps (only {' and '.join(RUN_ACTIONS)}): "
                f"step {step.name} would run on AWS, so the execution stops here rather than pretend it ran.",
                True,
            )
        return self._check(run, step, time.monotonic())

    def _check(self, run: AutomationRun, step: AutomationStep, now: float) -> tuple[str, str, bool] | None:
        """A running step's outcome, or None (and a wake when to look again) while it goes on."""
        if step.timeout_at is not None and now >= step.timeout_at:
            return "TimedOut", f"Step timed out after {step.spec['timeoutSeconds']} seconds.", False
        inputs = step.inputs or {}
        if step.action == "aws:sleep":
            if step.wait_until is None or now >= step.wait_until:
                return "Success", "", False
            self._wake(min(step.wait_until, step.timeout_at or step.wait_until))
            return None
        desired = str(inputs["DesiredState"])
        instance_ids = inputs["InstanceIds"]
        backend = ec2_backends[run.account][run.region]
        waiting = False
        for instance_id in instance_ids if isinstance(instance_ids, list) else [instance_ids]:
            try:
                state = str(backend.get_instance(str(instance_id)).state)
            except (ServiceException, HTTPException) as error:
                return "Failed", _ec2_failure(error), False
            if state != desired and desired != "terminated" and state in ("shutting-down", "terminated"):
                return "Failed", f"The instance {instance_id} is {state}: it will never be {desired}.", False
            waiting = waiting or state != desired
        if not waiting:
            return "Success", "", False
        due = now + self.automation_poll_seconds * self.time_scale
        self._wake(min(due, step.timeout_at or due))
        return None

    def _step_ended(
        self, run: AutomationRun, step: AutomationStep, status: str, failure: str, abort: bool
    ) -> None:
        with self._mutex:
            if step.status != "InProgress":
                return
            step.status, step.ended, step.failure = status, datetime.now(UTC), failure
            names = [s.name for s in run.steps]
            spec = step.spec
        self._send_step(run, step)
        if status == "Success":
            if _flag(spec.get("isEnd", False)):
                run.current = len(run.steps)
            elif "nextStep" not in spec:
                run.current += 1
            elif spec["nextStep"] in names:
                run.current = names.index(spec["nextStep"])
            else:
                self._end(run, "Failed", f"Step {step.name}: its nextStep {spec['nextStep']} is no step.")
            return
        ended = "TimedOut" if status == "TimedOut" else "Failed"
        message = (
            f"Step {step.name} ({step.action}) {'timed out' if ended == 'TimedOut' else 'failed'}: {failure}"
        )
        on_failure = str(spec.get("onFailure", "Abort"))
        target = on_failure.removeprefix("step:")
        if abort or on_failure not in ("Continue", *(f"step:{n}" for n in names)):
            self._end(run, ended, failure if abort else message)
            return
        if step.critical and not run.critical_failure:
            run.critical_failure = message
        run.current = run.current + 1 if on_failure == "Continue" else names.index(target)

    def _end(self, run: AutomationRun, status: str, failure: str) -> None:
        with self._mutex:
            if run.status in AUTOMATION_ENDED:
                return
            if run.status == "Cancelling":
                status, failure = "Cancelled", ""
            now = datetime.now(UTC)
            run.status, run.ended, run.failure = status, now, failure
            stopped = [step for step in run.steps if step.status == "InProgress"]
            for step in stopped:
                step.status, step.ended = "Cancelled", now
        for step in stopped:
            self._send_step(run, step)
        self._send_execution(run)

    @staticmethod
    def _event_detail(run: AutomationRun, status: str, started: datetime, ended: datetime) -> dict[str, Any]:
        version: float | str = (
            float(run.document_version) if run.document_version.isdigit() else run.document_version
        )
        return {
            "ExecutionId": run.execution_id,
            "Definition": run.document_name,
            "DefinitionVersion": version,
            "Status": status,
            "StartTime": _event_time(started),
            "EndTime": _event_time(ended),
            "Time": round((ended - started).total_seconds() * 1000, 1),
        }

    def _send_execution(self, run: AutomationRun) -> None:
        detail = self._event_detail(run, run.status, run.started, run.ended or datetime.now(UTC))
        if run.executed_by:
            detail["ExecutedBy"] = run.executed_by
        aws_events.send(
            run.account, run.region, "aws.ssm", AUTOMATION_EVENT, [run.arn, run.definition_arn], detail
        )

    def _send_step(self, run: AutomationRun, step: AutomationStep) -> None:
        now = datetime.now(UTC)
        detail = self._event_detail(run, step.status, step.started or now, step.ended or now)
        detail.update({"StepName": step.name, "Action": step.action})
        aws_events.send(
            run.account, run.region, "aws.ssm", AUTOMATION_STEP_EVENT, [run.arn, run.definition_arn], detail
        )

    @staticmethod
    def _instance_state(invocation: Invocation) -> str | None:
        backend = ec2_backends[invocation.account][invocation.region]
        for reservation in backend.reservations.values():
            for instance in reservation.instances:
                if instance.id == invocation.instance_id:
                    return str(instance.state)
        return None

    @staticmethod
    def _send(invocation: Invocation, status: str) -> None:
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
                "status": status,
            },
        )
