"""An environment across accounts and regions: how a request names them, where each part keeps its save, and
how the run's outcome is made of what each account-region reported."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from opsflow.runs.requests import parse_run_request
from opsflow.runs.steps import acted_on
from opsflow.workflows.env_power import results
from opsflow.workflows.env_power.request import EnvPowerRequest, Place
from opsflow.workflows.env_power.state import EnvPowerState, PlaceResult, Settled

HUB, SPOKE, OTHER = "111111111111", "222222222222", "333333333333"


@pytest.fixture(autouse=True)
def hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_ACCOUNT_ID", HUB)
    monkeypatch.setenv("AWS_REGION", "us-east-1")


def request(**fields: Any) -> EnvPowerRequest:
    parsed = parse_run_request({"workflow": "env_power", "environment": "qa", "action": "stop", **fields})
    assert isinstance(parsed, EnvPowerRequest)
    return parsed


def state(**fields: Any) -> EnvPowerState:
    base = {
        "run_id": "env-power-1",
        "workflow": "env_power",
        "target": "env:qa",
        "request": {"workflow": "env_power", "environment": "qa", "action": "stop"},
    }
    return EnvPowerState.model_validate({**base, **fields}, strict=False)


def test_targets_name_each_account_region_the_run_acts_in() -> None:
    asked = request(targets=[{"account": SPOKE, "region": "eu-west-1"}, {"account": OTHER}])

    assert [place.key for place in asked.places()] == [f"env:qa@{SPOKE}/eu-west-1", f"env:qa@{OTHER}/"]
    assert asked.target().key == "env:qa"


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"targets": [{"account": SPOKE}], "account": SPOKE}, "not both"),
        ({"targets": [{"account": SPOKE}, {"account": SPOKE}]}, "twice"),
        ({"targets": []}, "at least 1"),
        ({"targets": [{"account": "12"}]}, "pattern"),
    ],
)
def test_a_request_that_says_where_badly_is_refused(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        request(**fields)


def test_the_hubs_own_account_and_region_are_left_unsaid_in_targets_too() -> None:
    asked = request(
        targets=[{"account": HUB, "region": "us-east-1"}, {"account": SPOKE, "region": "us-east-1"}]
    )

    normalized = asked.at_home(HUB, "us-east-1")

    assert isinstance(normalized, EnvPowerRequest)
    assert normalized.targets == [Place(), Place(account=SPOKE)]


def test_each_account_region_keeps_its_own_save_and_the_hubs_keeps_the_environments_name() -> None:
    assert state().save_key == "qa"
    assert state(place={"account": None, "region": None}).save_key == "qa"
    assert state(place={"account": SPOKE, "region": "eu-west-1"}).save_key == f"qa@{SPOKE}/eu-west-1"
    assert state(target=f"env:qa@{SPOKE}/eu-west-1").save_key == f"qa@{SPOKE}/eu-west-1"


def test_a_map_iteration_acts_in_its_place_not_in_the_runs_target() -> None:
    where = acted_on({"target": "env:qa", "place": {"account": SPOKE, "region": "eu-west-1"}})

    assert (where.account, where.region) == (SPOKE, "eu-west-1")


def test_one_account_region_concludes_as_a_run_over_it_alone_would() -> None:
    report = {
        "environment": "qa",
        "action": "stop",
        "summary": "Stopped qa: 3 instances.",
        "saved": {"instances": 3},
    }
    only = Settled(report=report)

    concluded = results.conclude(state(places=[PlaceResult(place=Place(), outcome=only).model_dump()]))

    assert concluded.report == report
    assert not concluded.failed


def test_several_conclude_with_each_named_and_a_failed_one_fails_the_run_after_the_others() -> None:
    done = Settled(report={"summary": "Stopped qa: 1 instance.", "saved": {"instances": 1, "groups": 1}})
    refused = Settled(
        failed=True, error_report={"step": "save", "message": "SpokeUnreachable: cannot assume"}
    )
    places = [
        PlaceResult(place=Place(account=SPOKE, region="eu-west-1"), outcome=done).model_dump(),
        PlaceResult(place=Place(account=OTHER), outcome=refused).model_dump(),
    ]

    concluded = results.conclude(state(places=places))

    assert concluded.failed
    assert concluded.report["saved"] == {"instances": 1, "groups": 1}
    assert [(p["account"], p["region"], p["status"]) for p in concluded.report["places"]] == [
        (SPOKE, "eu-west-1", "SUCCEEDED"),
        (OTHER, "us-east-1", "FAILED"),
    ]
    assert concluded.error_report is not None
    assert f"{OTHER}/us-east-1: SpokeUnreachable: cannot assume" in concluded.error_report["message"]
    assert concluded.error_report["failed"] == [
        {"resource": f"{OTHER}/us-east-1", "error": "SpokeUnreachable: cannot assume"}
    ]
    assert "Stopped qa in 1 of 2 account-regions" in concluded.summary
