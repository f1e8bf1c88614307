"""Acting on many resources in as few calls as AWS allows, without letting one bad resource stop the rest."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from opsflow.errors import OpsflowError

T = TypeVar("T")


@dataclass(frozen=True)
class ResourceFailure:
    resource: str
    error: str

    def as_dict(self) -> dict[str, str]:
        return {"resource": self.resource, "error": self.error}


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


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
    except OpsflowError as error:
        if len(batch) == 1:
            return [ResourceFailure(batch[0], error.message)]
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
        except OpsflowError as error:
            failures.append(ResourceFailure(name(item), error.message))
    return failures
