"""POST /events/ci/hook's authentication: an HMAC of the timestamp and body, or a GitLab webhook's token, and
a replay refused."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from opsflow.ci import hook
from opsflow.errors import BadSignature, InvalidField, Unauthenticated

SECRET = "s3cr3t-shared-with-the-ci-server-0123456789"
BODY = b'{"system": "jenkins", "pipeline": "web-app", "run": 42, "status": "failed"}'
NOW = 1_800_000_000


def signed(body: bytes = BODY, at: int = NOW, secret: str = SECRET) -> dict[str, str]:
    return {"X-Signature-256": hook.sign(secret, at, body), "X-Timestamp": str(at)}


def test_the_signature_is_the_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()

    assert hook.sign(SECRET, NOW, BODY) == f"sha256={expected}"


def test_a_valid_signature_is_accepted() -> None:
    verified = hook.verify(signed(), BODY, SECRET, NOW + 10)

    assert verified.method == "hmac"


def test_header_names_are_read_in_any_case() -> None:
    headers = {name.lower(): value for name, value in signed().items()}

    assert hook.verify(headers, BODY, SECRET, NOW).method == "hmac"


def test_an_upper_case_hex_signature_is_the_same_signature() -> None:
    headers = signed()
    upper = {**headers, "X-Signature-256": "sha256=" + headers["X-Signature-256"][7:].upper()}

    assert (
        hook.verify(upper, BODY, SECRET, NOW).replay_key == hook.verify(headers, BODY, SECRET, NOW).replay_key
    )


def test_a_signature_with_another_secret_is_refused() -> None:
    with pytest.raises(BadSignature, match="does not match"):
        hook.verify(signed(secret="another-secret-of-the-same-size"), BODY, SECRET, NOW)


def test_a_body_changed_after_signing_is_refused() -> None:
    with pytest.raises(BadSignature, match="does not match"):
        hook.verify(signed(), BODY.replace(b"failed", b"succeeded"), SECRET, NOW)


def test_a_timestamp_changed_after_signing_is_refused() -> None:
    headers = {**signed(), "X-Timestamp": str(NOW + 1)}

    with pytest.raises(BadSignature, match="does not match"):
        hook.verify(headers, BODY, SECRET, NOW)


def test_a_signature_that_is_not_sha256_hex_is_refused() -> None:
    with pytest.raises(BadSignature, match="sha256="):
        hook.verify({**signed(), "X-Signature-256": "md5=abc"}, BODY, SECRET, NOW)


def test_a_timestamp_that_is_not_unix_seconds_is_refused() -> None:
    headers = {
        "X-Signature-256": hook.sign(SECRET, "2026-11-24T10:00:00Z", BODY),
        "X-Timestamp": "2026-11-24T10:00:00Z",
    }

    with pytest.raises(BadSignature, match="Unix time"):
        hook.verify(headers, BODY, SECRET, NOW)


def test_no_credentials_at_all_is_unauthenticated() -> None:
    with pytest.raises(Unauthenticated, match="X-Signature-256"):
        hook.verify({"Content-Type": "application/json"}, BODY, SECRET, NOW)


def test_a_signature_without_its_timestamp_is_unauthenticated() -> None:
    with pytest.raises(Unauthenticated, match="X-Timestamp"):
        hook.verify({"X-Signature-256": signed()["X-Signature-256"]}, BODY, SECRET, NOW)


def test_a_timestamp_older_than_five_minutes_is_refused() -> None:
    with pytest.raises(BadSignature, match="301 s ago"):
        hook.verify(signed(at=NOW - 301), BODY, SECRET, NOW)


def test_a_timestamp_more_than_five_minutes_ahead_is_refused() -> None:
    with pytest.raises(BadSignature, match="301 s ahead"):
        hook.verify(signed(at=NOW + 301), BODY, SECRET, NOW)


@pytest.mark.parametrize("skew", [-300, 300])
def test_a_timestamp_five_minutes_away_is_accepted(skew: int) -> None:
    assert hook.verify(signed(at=NOW + skew), BODY, SECRET, NOW).method == "hmac"


def test_a_gitlab_token_equal_to_the_secret_is_accepted_with_its_delivery_id() -> None:
    headers = {"X-Gitlab-Token": SECRET, "X-Gitlab-Event-UUID": "9cdc8f2a-8d4b-4b5d-a1b2-3c4d5e6f7a8b"}

    verified = hook.verify(headers, BODY, SECRET, NOW)

    assert verified.method == "gitlab-token"
    assert verified.replay_key == "delivery:9cdc8f2a-8d4b-4b5d-a1b2-3c4d5e6f7a8b"


def test_a_job_sends_its_own_delivery_id_as_x_request_id() -> None:
    verified = hook.verify({"X-Gitlab-Token": SECRET, "X-Request-Id": "job-4711-failed"}, BODY, SECRET, NOW)

    assert verified.replay_key == "delivery:job-4711-failed"


def test_a_wrong_gitlab_token_is_refused() -> None:
    with pytest.raises(BadSignature, match="X-Gitlab-Token"):
        hook.verify({"X-Gitlab-Token": SECRET[:-1] + "x", "X-Request-Id": "1"}, BODY, SECRET, NOW)


def test_a_gitlab_token_without_a_delivery_id_names_the_header() -> None:
    with pytest.raises(InvalidField) as refused:
        hook.verify({"X-Gitlab-Token": SECRET}, BODY, SECRET, NOW)

    assert refused.value.field == "X-Request-Id"


def test_a_short_secret_is_never_used() -> None:
    with pytest.raises(ValueError, match="too short"):
        hook.verify(signed(secret="short"), BODY, "short", NOW)


def test_a_signature_is_accepted_once() -> None:
    seen = hook.InMemorySeenDeliveries()
    verified = hook.verify(signed(), BODY, SECRET, NOW)

    first = seen.first_time(verified.replay_key, NOW, verified.remember_seconds)
    again = seen.first_time(verified.replay_key, NOW + 60, verified.remember_seconds)

    assert (first, again) == (True, False)


def test_a_signature_is_remembered_as_long_as_its_timestamp_could_be_accepted() -> None:
    # Signed five minutes ahead of the clock, it is accepted until ten minutes from now.
    verified = hook.verify(signed(at=NOW + 300), BODY, SECRET, NOW)

    assert verified.remember_seconds > 2 * hook.MAX_SKEW_SECONDS


def test_a_forgotten_delivery_may_be_sent_again() -> None:
    seen = hook.InMemorySeenDeliveries()
    seen.first_time("delivery:1", NOW, 60)

    seen.forget("delivery:1")

    assert seen.first_time("delivery:1", NOW, 60)
