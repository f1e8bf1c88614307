"""Rule targets are invoked as Lambda invokes asynchronously: retried, then handed to the on-failure
destination."""

from __future__ import annotations

from typing import Any

from opsflow_local.emulation.events import EventDelivery
from opsflow_local.lambdas import invocation_record

ARN = "arn:aws:lambda:us-east-1:123456789012:function:opsflow-RunEndedFunction"
EVENT = {"detail-type": "Step Functions Execution Status Change", "detail": {"name": "run-1"}}


class Flaky:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self, arn: str, event: dict[str, Any]) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(f"attempt {self.calls} failed")


def test_a_failed_invocation_is_retried_and_one_that_then_succeeds_is_not_parked() -> None:
    parked: list[Any] = []
    function = Flaky(failures=2)
    delivery = EventDelivery(function, retries=lambda arn: 2, on_failure=lambda *args: parked.append(args))

    delivery.deliver(ARN, EVENT)

    assert function.calls == 3
    assert parked == []


def test_an_invocation_that_fails_every_time_goes_to_the_destination_with_the_last_error() -> None:
    parked: list[tuple[str, dict[str, Any], Exception, int]] = []
    function = Flaky(failures=10)
    delivery = EventDelivery(function, retries=lambda arn: 1, on_failure=lambda *args: parked.append(args))

    delivery.deliver(ARN, EVENT)

    assert function.calls == 2
    ((arn, event, error, attempts),) = parked
    assert (arn, event, str(error), attempts) == (ARN, EVENT, "attempt 2 failed", 2)
    assert delivery.wait(timeout=1)


def test_the_invocation_record_wraps_the_event_as_lambda_documents() -> None:
    record = invocation_record(ARN, EVENT, KeyError("detail"), attempts=3)

    assert record["version"] == "1.0"
    assert record["requestPayload"] == EVENT
    assert record["requestContext"]["functionArn"] == f"{ARN}:$LATEST"
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "KeyError"
    assert record["timestamp"].endswith("Z")
