"""Turn botocore errors into domain errors, at the adapter boundary: unknown resources become `NotFound`,
throttling and AWS-side failures `AwsTransient` (the state machines retry those), the rest `AwsCallFailed`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from opsflow.errors import AwsCallFailed, AwsTransient, NotFound

_NOT_FOUND_CODES = frozenset(
    {
        "InvalidInstanceID.NotFound",
        "InvalidInstanceID.Malformed",
        "InvalidAMIID.NotFound",
        "InvalidAMIID.Unavailable",
        "InvalidSnapshot.NotFound",
        "InvalidLaunchTemplateId.NotFound",
        "InvalidLaunchTemplateId.VersionNotFound",
        "InvalidLaunchTemplateName.NotFoundException",
        "ExecutionDoesNotExist",
        "ListenerNotFound",
        "TargetGroupNotFound",
        "NoSuchHostedZone",
        "NoSuchHealthCheck",
        "NoSuchChange",
    }
)

# The codes the SDKs' standard retry mode treats as throttling or transient (botocore `retries/standard.py`),
# and the services' own names for a failure on their side. Codes that name a quota (Auto Scaling's
# `LimitExceeded`, ELB's `TooManyRules`) are refusals: retrying cannot help them.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "EC2ThrottledException",
    }
)
TRANSIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServerException",
        "InternalServiceError",
        "ServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "Unavailable",
    }
)
_TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


def is_transient(code: str, status: int | None = None) -> bool:
    """Whether an error may clear by itself: throttling, or a failure on AWS's side."""
    return code in THROTTLING_CODES or code in TRANSIENT_CODES or status in _TRANSIENT_STATUS


def call_failed(operation: str, code: str, message: str, status: int | None = None) -> AwsCallFailed:
    """The domain error for an AWS call that failed with `code`: `AwsTransient` when retrying may help."""
    kind = AwsTransient if is_transient(code, status) else AwsCallFailed
    return kind(operation, code, message)


def from_client_error(operation: str, error: ClientError) -> AwsCallFailed:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    message = str(error.response.get("Error", {}).get("Message", ""))
    return call_failed(operation, error_code(error), message, int(status) if status else None)


@contextmanager
def aws_call(operation: str, not_found: str | None = None) -> Iterator[None]:
    """Map a botocore error raised inside the block to a domain error naming the operation."""
    try:
        yield
    except ClientError as error:
        code = error_code(error)
        if code in _NOT_FOUND_CODES:
            message = str(error.response.get("Error", {}).get("Message", ""))
            raise NotFound(not_found or f"{operation}: {message or code}") from error
        raise from_client_error(operation, error) from error
    except (ConnectionError, HTTPClientError) as error:
        # The endpoint could not be reached or the connection broke, after the SDK's retries.
        raise AwsTransient(operation, type(error).__name__, str(error)) from error
