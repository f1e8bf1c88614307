"""The CI event a server reports: validated like every request, shown safely, and read from a GitLab
pipeline webhook."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from opsflow.ci import gitlab
from opsflow.ci.event import CiEvent
from opsflow.runs.requests import describe_validation_errors

MINIMAL = {"system": "jenkins", "pipeline": "web-app", "run": 42, "status": "failed"}


def problems(body: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as refused:
        CiEvent.model_validate(body)
    return {p["field"]: p["problem"] for p in describe_validation_errors(refused.value.errors(), "event")}


def test_a_run_number_is_kept_as_text() -> None:
    assert CiEvent.model_validate(MINIMAL).run == "42"


def test_a_run_id_may_be_text() -> None:
    assert CiEvent.model_validate({**MINIMAL, "run": "pipeline-318"}).run == "pipeline-318"


def test_the_detail_adds_how_the_sender_was_authenticated() -> None:
    detail = CiEvent.model_validate(MINIMAL).detail({"via": "hmac"})

    assert detail == {**MINIMAL, "run": "42", "reported_by": {"via": "hmac"}}


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        ({**MINIMAL, "system": "travis"}, "system", "'jenkins', 'gitlab', 'bitbucket' or 'other'"),
        ({**MINIMAL, "status": "passed"}, "status", "'started', 'succeeded', 'failed' or 'cancelled'"),
        ({**MINIMAL, "run": -1}, "run", "a run number is 0 or more"),
        ({**MINIMAL, "run": True}, "run", "the run's number"),
        ({**MINIMAL, "pipeline": "   "}, "pipeline", "must hold some text"),
        ({**MINIMAL, "url": "javascript:alert(1)"}, "url", "http:// or https://"),
        ({**MINIMAL, "duration_seconds": -5}, "duration_seconds", "greater than or equal to 0"),
        ({**MINIMAL, "commit": "not a sha!"}, "commit", "should match pattern"),
        ({**MINIMAL, "colour": "red"}, "colour", "is not a field of this event"),
        ({"system": "jenkins", "run": 1, "status": "failed"}, "pipeline", "is required"),
    ],
)
def test_a_bad_field_is_named(body: dict[str, Any], field: str, problem: str) -> None:
    assert problem in problems(body)[field]


def test_text_cannot_mention_a_slack_channel_or_hide_a_link() -> None:
    event = CiEvent.model_validate(
        {**MINIMAL, "author": "<!channel>", "message": "Fix <https://evil.example|docs>\x07\nsecond line"}
    )

    assert "<" not in f"{event.author}{event.message}"
    assert event.message == "Fix ‹https://evil.example|docs›\nsecond line"  # noqa: RUF001 - look-alikes


def test_names_are_one_line() -> None:
    assert CiEvent.model_validate({**MINIMAL, "pipeline": " web\n app "}).pipeline == "web app"


def pipeline_hook(status: str, **attributes: Any) -> dict[str, Any]:
    """A GitLab pipeline webhook body, with the fields the translation reads and some it ignores."""
    return {
        "object_kind": "pipeline",
        "object_attributes": {
            "id": 1187,
            "iid": 12,
            "ref": "main",
            "tag": False,
            "sha": "b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327",
            "status": status,
            "stages": ["build", "test"],
            "duration": 312,
            **attributes,
        },
        "user": {"id": 1, "name": "Bob Builder", "username": "bob"},
        "project": {
            "id": 7,
            "path_with_namespace": "shop/checkout",
            "web_url": "https://gitlab.example.com/shop/checkout",
        },
        "commit": {"id": "b6568db1", "title": "Refunds: round half up", "author": {"name": "Bob Builder"}},
        "builds": [
            {"id": 1, "stage": "build", "name": "compile", "status": "success"},
            {"id": 2, "stage": "test", "name": "unit", "status": "failed"},
        ],
    }


def test_a_failed_gitlab_pipeline_names_its_failed_stage_and_jobs() -> None:
    event = gitlab.ci_event(pipeline_hook("failed"))

    assert isinstance(event, CiEvent)
    assert event.model_dump(exclude_none=True) == {
        "system": "gitlab",
        "pipeline": "shop/checkout",
        "run": "1187",
        "status": "failed",
        "commit": "b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327",
        "branch": "main",
        "author": "bob",
        "url": "https://gitlab.example.com/shop/checkout/-/pipelines/1187",
        "duration_seconds": 312.0,
        "stage": "test",
        "message": "Failed: unit",
    }


@pytest.mark.parametrize(
    ("gitlab_status", "status"),
    [("running", "started"), ("success", "succeeded"), ("canceled", "cancelled")],
)
def test_gitlab_statuses_map_to_the_events(gitlab_status: str, status: str) -> None:
    event = gitlab.ci_event(pipeline_hook(gitlab_status))

    assert isinstance(event, CiEvent)
    assert event.status == status


def test_gitlabs_own_pipeline_url_is_used_when_it_sends_one() -> None:
    event = gitlab.ci_event(pipeline_hook("success", url="https://gitlab.example.com/-/p/1187"))

    assert isinstance(event, CiEvent)
    assert event.url == "https://gitlab.example.com/-/p/1187"


@pytest.mark.parametrize("gitlab_status", ["created", "pending", "manual", "skipped"])
def test_a_pipeline_that_has_not_started_is_not_reported(gitlab_status: str) -> None:
    reason = gitlab.ci_event(pipeline_hook(gitlab_status))

    assert reason == (
        f"GitLab pipeline 1187 is {gitlab_status}: only running, success, failed and canceled pipelines are "
        "reported"
    )


def test_a_body_that_is_not_a_pipeline_event_is_refused_field_by_field() -> None:
    with pytest.raises(ValidationError) as refused:
        gitlab.ci_event({"object_kind": "pipeline", "project": {}})

    fields = {p["field"] for p in describe_validation_errors(refused.value.errors(), "event")}
    assert fields == {"object_attributes", "project.path_with_namespace"}
