"""A CI server's run (`opsflow.ci` `CI Run State Change`) becomes a message like CodePipeline's, and a
channel's `pipelines` filter picks it by the pipeline's name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from opsflow.notify import slack, teams
from opsflow.notify.build import build_message
from opsflow.notify.channels import Channel, routes
from opsflow.notify.message import Message, Severity, Status

EVENTS = Path(__file__).resolve().parents[3] / "events" / "ci"


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


def built(event: dict[str, Any]) -> Message:
    message = build_message(event)
    assert message is not None
    return message


def test_a_failed_run_says_where_it_failed_and_why() -> None:
    message = built(load("run_failed.json"))

    assert message.title == "Pipeline web-app/main #42 at Test: failed"
    assert (message.status, message.severity) == (Status.FAILED, Severity.CRITICAL)
    assert message.cause == "3 of 412 tests failed: test_checkout_total, test_refund, test_coupon_expiry"
    assert message.source == "Jenkins"


def test_a_run_shows_its_branch_short_commit_author_and_duration() -> None:
    message = built(load("run_failed.json"))

    assert message.facts == (
        ("Run", "#42"),
        ("Branch", "main"),
        ("Commit", "9fceb02d0ae5"),
        ("Author", "alice"),
        ("Duration", "12 min 34 s"),
    )


def test_the_link_opens_the_run_on_its_ci_server() -> None:
    [link] = built(load("run_succeeded.json")).links

    assert (link.label, link.url) == (
        "Open run in GitLab CI",
        "https://gitlab.example.com/shop/checkout/-/pipelines/1187",
    )


@pytest.mark.parametrize(
    ("status", "shown", "severity"),
    [
        ("started", Status.IN_PROGRESS, Severity.INFO),
        ("succeeded", Status.SUCCEEDED, Severity.INFO),
        ("failed", Status.FAILED, Severity.CRITICAL),
        ("cancelled", Status.WARNING, Severity.WARNING),
    ],
)
def test_each_status_reads_as_codepipelines_do(status: str, shown: Status, severity: Severity) -> None:
    event = load("run_started.json")
    event["detail"]["status"] = status

    message = built(event)

    assert (message.status, message.severity) == (shown, severity)
    assert message.title.endswith(f": {status}")


def test_a_run_id_that_is_not_a_number_is_named_as_a_run() -> None:
    event = load("run_started.json")
    event["detail"]["run"] = "a1b2-c3"

    assert built(event).title == "Pipeline payments-api run a1b2-c3: started"


def test_a_failed_run_without_a_message_points_at_its_log() -> None:
    event = load("run_failed.json")
    del event["detail"]["message"]

    assert built(event).cause == "Jenkins gave no reason; the run's log says which step failed."


def test_the_pipelines_filter_picks_ci_pipelines_by_name() -> None:
    channels = [
        Channel(name="web", platform="slack", webhook_secret="opsflow/web", pipelines=("web-app/main",)),
        Channel(name="shop", platform="teams", webhook_secret="opsflow/shop", pipelines=("shop/checkout",)),
        Channel(name="all", platform="slack", webhook_secret="opsflow/all"),
    ]

    picked = [channel.name for channel in routes(built(load("run_failed.json")), channels)]

    assert picked == ["web", "all"]


def test_what_the_sender_wrote_reaches_both_platforms() -> None:
    message = built(load("run_failed.json"))

    rendered = json.dumps(slack.payload(message)) + json.dumps(teams.payload(message))

    assert "test_checkout_total" in rendered
    assert "https://jenkins.example.com/job/web-app/job/main/42/" in rendered
