"""EventBridge Scheduler adapter: the daily schedules that stop and start environments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from opsflow.aws.errors import aws_call, error_code

if TYPE_CHECKING:
    from mypy_boto3_scheduler import EventBridgeSchedulerClient


class Scheduler:
    def __init__(self, client: EventBridgeSchedulerClient, group: str) -> None:
        self._scheduler = client
        self._group = group

    def put_schedule(
        self,
        name: str,
        *,
        expression: str,
        timezone: str,
        target_arn: str,
        role_arn: str,
        input_json: str,
        description: str,
        dead_letter_arn: str | None = None,
    ) -> None:
        """Create the schedule, or update it in place if it exists (UpdateSchedule replaces every field)."""
        arguments: dict[str, Any] = {
            "Name": name,
            "GroupName": self._group,
            "ScheduleExpression": expression,
            "ScheduleExpressionTimezone": timezone,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Description": description,
            "State": "ENABLED",
            "Target": {
                "Arn": target_arn,
                "RoleArn": role_arn,
                "Input": input_json,
                # Scheduler delivers at least once; the run's idempotency key makes a retry harmless.
                "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600},
                # What Scheduler still could not deliver waits there instead of being dropped.
                **({"DeadLetterConfig": {"Arn": dead_letter_arn}} if dead_letter_arn else {}),
            },
        }
        try:
            self._scheduler.update_schedule(**arguments)
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                with aws_call("UpdateSchedule"):
                    raise
            with aws_call("CreateSchedule"):
                self._scheduler.create_schedule(**arguments)

    def get_schedule(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self._scheduler.get_schedule(Name=name, GroupName=self._group))
        except ClientError as error:
            if error_code(error) == "ResourceNotFoundException":
                return None
            with aws_call("GetSchedule"):
                raise
