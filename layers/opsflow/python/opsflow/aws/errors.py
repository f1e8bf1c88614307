"""Turn botocore ClientError codes into domain errors, at the adapter boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError

from opsflow.errors import AwsCallFailed, NotFound

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
    }
)


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


@contextmanager
def aws_call(operation: str, not_found: str | None = None) -> Iterator[None]:
    """Map a ClientError raised inside the block to a domain error naming the operation."""
    try:
        yield
    except ClientError as error:
        code = error_code(error)
        message = str(error.response.get("Error", {}).get("Message", ""))
        if code in _NOT_FOUND_CODES:
            raise NotFound(not_found or f"{operation}: {message or code}") from error
        raise AwsCallFailed(operation, code, message) from error
