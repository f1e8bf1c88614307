"""The environments store's contract, held by the DynamoDB store (on the table as the template declares it)
and its in-memory twin alike."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest

from opsflow.store.environments import (
    DynamoEnvironmentStore,
    EnvironmentStore,
    InMemoryEnvironmentStore,
    KeepAlive,
)
from opsflow.workflows.env_power.calendar import EnvironmentSchedule

from .conftest import table_from_template

pytestmark = pytest.mark.usefixtures("mocked_aws")


@pytest.fixture(params=["dynamodb", "memory"])
def environments(request: pytest.FixtureRequest) -> EnvironmentStore:
    if request.param == "memory":
        return InMemoryEnvironmentStore()
    return DynamoEnvironmentStore(boto3.client("dynamodb"), table_from_template("EnvironmentsTable"))


def test_a_schedule_and_a_keep_alive_read_back_and_each_leaves_the_other(
    environments: EnvironmentStore,
) -> None:
    assert environments.get("qa") is None
    schedule = EnvironmentSchedule(
        timezone="Europe/Berlin", stop_at="19:00", start_at="07:30", off_days=["2026-12-24"]
    )
    environments.put_schedule("qa", schedule, by="alice")
    keep = KeepAlive(until=datetime(2026, 12, 2, 22, 0, tzinfo=UTC), by="bob", reason="release testing")
    environments.set_keep_alive("qa", keep)

    environment = environments.get("qa")
    assert environment is not None
    assert (environment.schedule, environment.keep_alive, environment.updated_by) == (schedule, keep, "alice")

    environments.put_schedule("qa", schedule.model_copy(update={"stop_at": "20:00"}), by="carol")
    environments.set_keep_alive("qa", None)
    environment = environments.get("qa")
    assert environment is not None
    assert (environment.schedule.stop_at if environment.schedule else None, environment.keep_alive) == (
        "20:00",
        None,
    )
    assert environment.updated_by == "carol"
