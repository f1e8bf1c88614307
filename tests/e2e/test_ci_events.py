"""CI servers that are not AWS report their runs, on the embedded runtime: the API function from the
template (its role's policies held), the event on the default bus, the notify function's rule, and what
the local Slack and Teams channels received. A request signed with SigV4 or with the shared secret is
delivered; one unsigned, wrongly signed, stale or replayed is refused and nothing is sent."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from opsflow.ci.hook import sign
from opsflow_local import EmbeddedAws

HOOK = "/events/ci/hook"
EVENT = {
    "system": "jenkins",
    "pipeline": "web-app",
    "run": 42,
    "status": "failed",
    "commit": "9fceb02d0ae598e95dc970b74767f19372d61af8",
    "branch": "main",
    "author": "alice",
    "url": "https://jenkins.example.com/job/web-app/42/",
    "duration_seconds": 754,
    "stage": "Test",
    "message": "3 of 412 tests failed",
}
TITLE = "❌ Pipeline web-app #42 at Test: failed"


def shared_secret(aws: EmbeddedAws) -> str:
    """The generated secret, read as an operator would (the stack's CiHookSecretArn output)."""
    arn = aws.template.ref("CiHookSecret")
    return str(aws.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])


def test_the_secret_is_generated_as_the_template_asks(aws: EmbeddedAws) -> None:
    secret = shared_secret(aws)

    assert len(secret) == 64
    assert secret.isalnum()


def signed(secret: str, body: str, at: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if at is None else at
    return {"X-Signature-256": sign(secret, timestamp, body.encode()), "X-Timestamp": str(timestamp)}


def received(aws: EmbeddedAws) -> list[tuple[str, str]]:
    return sorted((n.platform, n.text) for n in aws.notifications)


def test_a_sigv4_signed_event_reaches_slack_and_teams(aws: EmbeddedAws) -> None:
    response = aws.api.post("/events/ci", json=EVENT)

    assert response.status_code == 202, response.text
    assert response.json()["detail"]["reported_by"] == {
        "via": "sigv4",
        "identity": "arn:aws:iam::123456789012:user/opsflow-local",
    }
    assert received(aws) == [("slack", TITLE), ("teams", TITLE)]
    slack = next(n for n in aws.notifications if n.platform == "slack")
    assert "3 of 412 tests failed" in json.dumps(slack.payload)
    assert "https://jenkins.example.com/job/web-app/42/" in json.dumps(slack.payload)


def test_a_bad_event_is_a_400_naming_each_field_and_nothing_is_sent(aws: EmbeddedAws) -> None:
    bad = {**EVENT, "status": "passed", "url": "ftp://jenkins.example.com/42", "colour": "red"}

    response = aws.api.post("/events/ci", json=bad)
    empty = aws.api.post("/events/ci")

    assert response.status_code == 400
    assert {p["field"]: p["problem"] for p in response.json()["problems"]} == {
        "status": "input should be 'started', 'succeeded', 'failed' or 'cancelled'",
        "url": "must be an http:// or https:// URL, without spaces",
        "colour": "is not a field of this event",
    }
    assert empty.status_code == 400
    assert empty.json()["problems"] == [
        {"field": "(body)", "problem": "a JSON object (the event) is required"}
    ]
    assert aws.notifications == []


def test_an_unsigned_request_to_the_sigv4_route_never_reaches_the_function(aws: EmbeddedAws) -> None:
    response = aws.api.post("/events/ci", json=EVENT, principal=None)

    assert response.status_code == 403
    assert response.json() == {"message": "Missing Authentication Token"}
    assert aws.notifications == []


def test_an_hmac_signed_event_is_delivered_once_and_its_replay_refused(aws: EmbeddedAws) -> None:
    body = json.dumps(EVENT)
    headers = signed(shared_secret(aws), body)

    first = aws.api.post(HOOK, body=body, headers=headers, principal=None)
    replayed = aws.api.post(HOOK, body=body, headers=headers, principal=None)

    assert first.status_code == 202, first.text
    assert first.json()["detail"]["reported_by"] == {"via": "hmac"}
    assert replayed.status_code == 409
    assert replayed.json()["error"] == "Replayed"
    assert received(aws) == [("slack", TITLE), ("teams", TITLE)]


def test_the_same_run_reported_twice_is_accepted_twice_and_told_once(aws: EmbeddedAws) -> None:
    """Signed again, the report is a new delivery, not a replay; the channels already know the run ended."""
    body = json.dumps(EVENT)
    secret = shared_secret(aws)
    now = int(time.time())

    answers = [
        aws.api.post(HOOK, body=body, headers=signed(secret, body, at), principal=None)
        for at in (now - 1, now)
    ]

    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].json()["event_id"] != answers[1].json()["event_id"]
    assert received(aws) == [("slack", TITLE), ("teams", TITLE)]


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({}, 401, "Unauthenticated"),
        ({"X-Signature-256": "sha256=" + "0" * 64}, 401, "Unauthenticated"),
        (
            {"X-Signature-256": "sha256=" + "0" * 64, "X-Timestamp": str(int(time.time()))},
            403,
            "BadSignature",
        ),
        ({"X-Gitlab-Token": "not-the-shared-secret", "X-Gitlab-Event-UUID": "f00d"}, 403, "BadSignature"),
    ],
    ids=["unsigned", "no-timestamp", "wrong-signature", "wrong-token"],
)
def test_a_request_without_the_shared_secret_is_refused_and_nothing_is_sent(
    aws: EmbeddedAws, headers: dict[str, str], status: int, error: str
) -> None:
    response = aws.api.post(HOOK, body=json.dumps(EVENT), headers=headers, principal=None)

    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert aws.notifications == []


def test_a_401_names_the_scheme(aws: EmbeddedAws) -> None:
    response = aws.api.post(HOOK, body=json.dumps(EVENT), principal=None)

    assert response.headers["WWW-Authenticate"].startswith("HMAC-SHA256")


def test_a_stale_signature_is_refused_and_nothing_is_sent(aws: EmbeddedAws) -> None:
    body = json.dumps(EVENT)

    response = aws.api.post(
        HOOK, body=body, headers=signed(shared_secret(aws), body, int(time.time()) - 600), principal=None
    )

    assert response.status_code == 403
    assert "s ago" in response.json()["message"]
    assert aws.notifications == []


def test_a_signed_body_with_a_bad_field_is_a_400_naming_it(aws: EmbeddedAws) -> None:
    body = json.dumps({**EVENT, "status": "passed"})

    response = aws.api.post(HOOK, body=body, headers=signed(shared_secret(aws), body), principal=None)

    assert response.status_code == 400
    assert [p["field"] for p in response.json()["problems"]] == ["status"]
    assert aws.notifications == []


def gitlab_pipeline(status: str) -> dict[str, Any]:
    return {
        "object_kind": "pipeline",
        "object_attributes": {
            "id": 1187,
            "ref": "main",
            "sha": "b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327",
            "status": status,
            "duration": 312,
        },
        "user": {"name": "Bob Builder", "username": "bob"},
        "project": {
            "path_with_namespace": "shop/checkout",
            "web_url": "https://gitlab.example.com/shop/checkout",
        },
        "commit": {"title": "Refunds: round half up"},
        "builds": [],
    }


def test_a_gitlab_webhook_with_the_token_is_delivered_and_its_redelivery_refused(aws: EmbeddedAws) -> None:
    headers = {
        "X-Gitlab-Token": shared_secret(aws),
        "X-Gitlab-Event": "Pipeline Hook",
        "X-Gitlab-Event-UUID": "4c1d2e3f-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
    }
    body = json.dumps(gitlab_pipeline("success"))

    first = aws.api.post(HOOK, body=body, headers=headers, principal=None)
    again = aws.api.post(HOOK, body=body, headers=headers, principal=None)

    assert first.status_code == 202, first.text
    assert again.status_code == 409
    title = "✅ Pipeline shop/checkout #1187: succeeded"
    assert received(aws) == [("slack", title), ("teams", title)]


def test_a_gitlab_pipeline_that_has_not_started_is_answered_and_not_sent(aws: EmbeddedAws) -> None:
    headers = {
        "X-Gitlab-Token": shared_secret(aws),
        "X-Gitlab-Event": "Pipeline Hook",
        "X-Gitlab-Event-UUID": "e1",
    }

    response = aws.api.post(
        HOOK, body=json.dumps(gitlab_pipeline("pending")), headers=headers, principal=None
    )

    assert response.status_code == 200
    assert response.json()["reported"] is False
    assert aws.notifications == []
