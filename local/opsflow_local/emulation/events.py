"""EventBridge delivery that moto lacks, as the EventBridge and Step Functions user guides document it:

- Rules whose targets are Lambda functions invoke them (asynchronously, as EventBridge does: an error
  in the function does not reach the sender). moto refuses Lambda targets (NotImplementedError).
- As Lambda does with an asynchronous invocation (Lambda developer guide, "Error handling and automatic
  retries in Lambda"), a function that fails is retried as its EventInvokeConfig says (twice unless told
  otherwise; at once here, where Lambda waits a minute, then two), then handed to its on-failure
  destination.
- Step Functions sends "Step Functions Execution Status Change" events (source aws.states) when a
  Standard execution ends: detail with executionArn, stateMachineArn, name, status, startDate and
  stopDate (epoch milliseconds), input and output as JSON strings, error and cause. moto sends none.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import datetime
from typing import Any
from unittest import mock

from moto.events.models import Rule, events_backends
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
from moto.utilities.arns import parse_arn

LOG = logging.getLogger(__name__)


# (function ARN, event, the last error, how many times it was invoked)
OnFailure = Callable[[str, dict[str, Any], Exception, int], None]


class EventDelivery:
    """Counts deliveries under way, so the runtime can wait for them to settle.

    retries: how many times Lambda retries a failed invocation of a function (by ARN).
    on_failure: what Lambda does with an invocation that failed every time (its on-failure destination).
    """

    def __init__(
        self,
        invoke: Callable[[str, dict[str, Any]], Any],
        retries: Callable[[str], int] = lambda arn: 0,
        on_failure: OnFailure | None = None,
    ) -> None:
        self._invoke = invoke
        self._retries = retries
        self._on_failure = on_failure
        self._in_flight = 0
        self._settled = threading.Condition()

    def deliver(self, function_arn: str, event: dict[str, Any]) -> None:
        with self._settled:
            self._in_flight += 1
        try:
            attempts = 1 + self._retries(function_arn)
            for attempt in range(1, attempts + 1):
                try:
                    self._invoke(function_arn, event)
                    return
                except Exception as error:  # noqa: BLE001 - Lambda retries whatever the function raised
                    if attempt == attempts:
                        self._failed(function_arn, event, error, attempts)
        finally:
            with self._settled:
                self._in_flight -= 1
                self._settled.notify_all()

    def _failed(self, function_arn: str, event: dict[str, Any], error: Exception, attempts: int) -> None:
        LOG.error("rule target %s failed %d times", function_arn, attempts, exc_info=error)
        if self._on_failure is not None:
            try:
                self._on_failure(function_arn, event, error, attempts)
            except Exception:
                LOG.exception("the on-failure destination of %s failed", function_arn)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Count a delivery as under way before its event exists (an execution ending), so that no one
        sees the run over and the notifications settled in between."""
        with self._settled:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._settled:
                self._in_flight -= 1
                self._settled.notify_all()

    def wait(self, timeout: float) -> bool:
        with self._settled:
            return self._settled.wait_for(lambda: self._in_flight == 0, timeout)

    def install(self, stack: ExitStack) -> None:
        delivery = self
        original_send = Rule.send_to_targets
        original_terminated = BaseExecutionWorkerCommunication.terminated

        def send_to_targets(rule: Rule, original_event: Any, transform_input: bool = True) -> None:
            if not rule.event_pattern.matches_event(original_event):
                return
            functions = [t for t in rule.targets if parse_arn(t["Arn"]).service == "lambda"]
            others = [t for t in rule.targets if t not in functions]
            if others:
                saved, rule.targets = rule.targets, others
                try:
                    original_send(rule, original_event, transform_input)
                finally:
                    rule.targets = saved
            for target in functions:
                delivery.deliver(target["Arn"], dict(original_event))

        def terminated(worker: BaseExecutionWorkerCommunication) -> None:
            with delivery.held():
                original_terminated(worker)
                execution = worker.execution
                events_backends[execution.account_id][execution.region_name].put_events(
                    [
                        {
                            "Source": "aws.states",
                            "DetailType": "Step Functions Execution Status Change",
                            "Resources": [execution.exec_arn],
                            "Detail": json.dumps(_status_change(execution)),
                        }
                    ]
                )

        stack.enter_context(mock.patch.object(Rule, "send_to_targets", send_to_targets))
        stack.enter_context(mock.patch.object(BaseExecutionWorkerCommunication, "terminated", terminated))


def _millis(value: datetime | None) -> int | None:
    return int(value.timestamp() * 1000) if value else None


def _status_change(execution: Any) -> dict[str, Any]:
    output = execution.output
    return {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name,
        "status": execution.exec_status.value,
        "startDate": _millis(execution.start_date),
        "stopDate": _millis(execution.stop_date),
        "input": json.dumps(execution.input_data),
        "inputDetails": {"included": True},
        "output": json.dumps(output) if output is not None else None,
        "outputDetails": {"included": True} if output is not None else None,
        "error": execution.error,
        "cause": execution.cause,
    }
