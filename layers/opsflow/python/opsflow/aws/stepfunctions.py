"""Step Functions adapter: start and describe executions."""

from __future__ import annotations

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


def execution_arn_for(state_machine_arn: str, name: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
