"""EventBridge delivery that moto lacks, as the EventBridge and Step Functions user guides document it:

- Rules whose targets are Lambda functions invoke them (asynchronously, as EventBridge does: an error
  in the function does not reach the sender). moto refuses Lambda targets (NotImplementedError).
- As Lambda does with an asynchronous invocation (Lambda developer guide, "Error handling and automatic
  retries in Lambda"), a function that fails is retried as its EventInvokeConfig says (twice unless told
  otherwise; at once here, where Lambda waits a minute, then two), then handed to its on-failure
  destination.
- A rule whose target is an event bus in another account or region sends it the event as it is: its
  `account` and `region` stay the sender's ("Sending and receiving events between AWS accounts in Amazon
  EventBridge"), and another account's event is taken only if the receiving bus's resource policy lets the
  sender put events (moto re-puts it as the receiver's own and checks nothing). A refused event is kept in
  `refused`.
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

from opsflow_local.iam.policy import Context, Decision, resource_policy

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
        # The organization an account belongs to (aws:PrincipalOrgID in a bus policy), when one is simulated.
        self.organization_of: Callable[[str], str | None] = lambda account: None
        self.refused: list[tuple[str, str, dict[str, Any]]] = []  # (rule ARN, bus ARN, event)

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

    def forward(self, rule: Rule, bus_arn: str, event: dict[str, Any]) -> None:
        arn = parse_arn(bus_arn)
        receiver = events_backends[arn.account][arn.region]
        bus = receiver.event_buses.get(arn.resource_id)
        sender = str(event.get("account", rule.account_id))
        if bus is None or (sender != arn.account and not self._admits(bus, sender)):
            LOG.warning("event bus %s refused an event from account %s (rule %s)", bus_arn, sender, rule.arn)
            self.refused.append((rule.arn, bus_arn, event))
            return
        for receiving_rule in list(bus.rules.values()):
            receiving_rule.send_to_targets(dict(event))

    def _admits(self, bus: Any, sender: str) -> bool:
        """The bus's resource policy lets `sender` put events (EventBridge User Guide, "Permissions for
        event buses")."""
        policy = bus.policy
        if not policy:
            return False
        document = json.loads(policy) if isinstance(policy, str) else policy
        organization = self.organization_of(sender)
        context = Context(
            {"aws:PrincipalAccount": sender, **({"aws:PrincipalOrgID": organization} if organization else {})}
        )
        decision = resource_policy(
            document, f"arn:aws:iam::{sender}:root", sender, "events:PutEvents", context
        )
        return decision is Decision.ALLOW

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
            buses = [t for t in rule.targets if _is_event_bus(t["Arn"])]
            for target in buses:
                delivery.forward(rule, target["Arn"], dict(original_event))
            others = [t for t in rule.targets if t not in functions and t not in buses]
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


def _is_event_bus(arn: str) -> bool:
    parsed = parse_arn(arn)
    return parsed.service == "events" and parsed.resource_type == "event-bus"


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
