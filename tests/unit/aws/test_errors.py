"""How adapters classify AWS errors: what may clear by itself is AwsTransient (the state machines retry it),
a refusal is AwsCallFailed (the run fails at once), an unknown resource NotFound."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from opsflow.aws.errors import aws_call
from opsflow.errors import AwsCallFailed, AwsTransient, NotFound


def client_error(code: str, status: int = 400, message: str = "m") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "ModifyListener",
    )


def raised(error: Exception) -> Exception:
    with pytest.raises((AwsCallFailed, NotFound)) as caught, aws_call("ModifyListener"):
        raise error
    return caught.value


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("Throttling", 400),  # ELB, Auto Scaling, CloudWatch
        ("ThrottlingException", 400),  # ECS, Step Functions, DynamoDB's control plane
        ("RequestLimitExceeded", 503),  # EC2
        ("ProvisionedThroughputExceededException", 400),  # DynamoDB
        ("TooManyRequestsException", 429),  # Lambda
        ("ServiceUnavailable", 503),
        ("InternalFailure", 500),
        ("ServerException", 500),  # ECS's name for its own failure
        ("SomethingNew", 502),  # an unknown code: the status says it was AWS's side
    ],
)
def test_throttling_and_failures_on_aws_side_are_transient(code: str, status: int) -> None:
    error = raised(client_error(code, status, "Rate exceeded"))
    assert type(error) is AwsTransient
    assert str(error) == f"ModifyListener failed: {code}: Rate exceeded"


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ValidationError", 400),  # an invalid action
        ("AccessDenied", 403),
        ("UnauthorizedOperation", 403),
        ("LimitExceeded", 400),  # Auto Scaling's quota: retrying cannot help
        ("TooManyRules", 400),
        ("IncorrectState", 400),
    ],
)
def test_refusals_are_not_retried(code: str, status: int) -> None:
    assert type(raised(client_error(code, status))) is AwsCallFailed


def test_an_unreachable_endpoint_or_a_timeout_is_transient() -> None:
    assert type(raised(EndpointConnectionError(endpoint_url="https://elasticloadbalancing"))) is AwsTransient
    assert type(raised(ReadTimeoutError(endpoint_url="https://ecs"))) is AwsTransient


def test_an_unknown_resource_is_not_found_not_transient() -> None:
    assert type(raised(client_error("ListenerNotFound"))) is NotFound
