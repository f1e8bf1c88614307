"""Step Functions adapter: start, describe and stop executions, and resume the ones waiting on a task token."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from opsflow.aws.errors import aws_call, error_code

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient


@dataclass(frozen=True)
class Execution:
    arn: str
    status: str  # RUNNING | SUCCEEDED | FAILED | TIMED_OUT | ABORTED | PENDING_REDRIVE
    error: str | None
    cause: str | None


class StepFunctions:
    def __init__(self, client: SFNClient) -> None:
        self._sfn = client

    def start_execution(self, state_machine_arn: str, name: str, input: str) -> str:
        try:
            return self._sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=input)[
                "executionArn"
            ]
        except ClientError as error:
            # Same name, same input: Step Functions treats the start as idempotent and so do we.
            if error_code(error) == "ExecutionAlreadyExists":
                return execution_arn_for(state_machine_arn, name)
            raise

    def find_execution(self, state_machine_arn: str, name: str) -> str | None:
        arn = execution_arn_for(state_machine_arn, name)
        try:
            self._sfn.describe_execution(executionArn=arn)
        except ClientError as error:
            if error_code(error) == "ExecutionDoesNotExist":
                return None
            raise
        return arn

    def describe(self, execution_arn: str) -> Execution:
        with aws_call("DescribeExecution", not_found=f"execution {execution_arn} does not exist"):
            raw = self._sfn.describe_execution(executionArn=execution_arn)
        return Execution(
            arn=execution_arn, status=raw["status"], error=raw.get("error"), cause=raw.get("cause")
        )

    def stop(self, execution_arn: str, cause: str) -> None:
        with aws_call("StopExecution", not_found=f"execution {execution_arn} does not exist"):
            self._sfn.stop_execution(executionArn=execution_arn, error="Aborted", cause=cause)


# What Step Functions answers a token whose wait is over (timed out, already resumed, execution ended).
_STALE_TOKEN_CODES = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})


class TaskTokens:
    """Ends `.waitForTaskToken` waits. Each call returns whether the wait was still on: a stale token is no
    error, since events come at least once and a wait may have ended by its timeout first."""

    def __init__(self, client: SFNClient) -> None:
        self._sfn = client

    def succeed(self, token: str, output: str = "{}") -> bool:
        return self._send(
            "SendTaskSuccess", lambda: self._sfn.send_task_success(taskToken=token, output=output)
        )

    def fail(self, token: str, error: str, cause: str) -> bool:
        return self._send(
            "SendTaskFailure",
            lambda: self._sfn.send_task_failure(taskToken=token, error=error, cause=cause[:32768]),
        )

    @staticmethod
    def _send(operation: str, send: Callable[[], object]) -> bool:
        with aws_call(operation):
            try:
                send()
            except ClientError as error:
                if error_code(error) in _STALE_TOKEN_CODES:
                    return False
                raise
        return True


def execution_arn_for(state_machine_arn: str, name: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
