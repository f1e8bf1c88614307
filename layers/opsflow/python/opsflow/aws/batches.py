"""Acting on many resources in as few calls as AWS allows, without letting one bad resource stop the rest."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from botocore.exceptions import BotoCoreError

from opsflow.errors import AwsCallFailed, NotFound, OpsflowError

T = TypeVar("T")

# The resource was deleted: there is nothing left to act on.
GONE_CODES = frozenset(
    {
        "InvalidInstanceID.NotFound",
        "ServiceNotFoundException",
        "ServiceNotActiveException",
        "DBInstanceNotFound",
        "DBInstanceNotFoundFault",
        "DBClusterNotFoundFault",
    }
)
# AWS is rate-limiting the caller: splitting the batch would only make more calls.
THROTTLING_CODES = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
)


@dataclass(frozen=True)
class ResourceFailure:
    resource: str
    error: str
    gone: bool = False

    def as_dict(self) -> dict[str, str]:
        return {"resource": self.resource, "error": self.error}


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _failure(resource: str, error: Exception) -> ResourceFailure:
    if isinstance(error, OpsflowError):
        gone = isinstance(error, NotFound) or getattr(error, "aws_code", None) in GONE_CODES
        return ResourceFailure(resource, error.message, gone)
    return ResourceFailure(resource, f"{type(error).__name__}: {error}")


def act_in_batches(
    ids: Sequence[str], batch_size: int, act: Callable[[list[str]], None]
) -> list[ResourceFailure]:
    """Call `act` on batches of ids. A call that fails for a batch (EC2 refuses a whole StopInstances
    call when one instance cannot stop) is split in halves until the resources that refuse are
    isolated, so the others still get their change and each refusal carries its own reason."""
    failures: list[ResourceFailure] = []
    for batch in chunks(ids, batch_size):
        failures.extend(_bisect(batch, act))
    return failures


def _bisect(batch: list[str], act: Callable[[list[str]], None]) -> list[ResourceFailure]:
    try:
        act(batch)
    except (OpsflowError, BotoCoreError) as error:
        throttled = isinstance(error, AwsCallFailed) and error.aws_code in THROTTLING_CODES
        if len(batch) == 1 or throttled or isinstance(error, BotoCoreError):
            return [_failure(resource, error) for resource in batch]
        middle = len(batch) // 2
        return _bisect(batch[:middle], act) + _bisect(batch[middle:], act)
    return []


def act_on_each(
    items: Sequence[T], name: Callable[[T], str], act: Callable[[T], None]
) -> list[ResourceFailure]:
    """For calls AWS takes one resource at a time (UpdateAutoScalingGroup, UpdateService, StopDBInstance)."""
    failures: list[ResourceFailure] = []
    for item in items:
        try:
            act(item)
        except (OpsflowError, BotoCoreError) as error:
            failures.append(_failure(name(item), error))
    return failures
