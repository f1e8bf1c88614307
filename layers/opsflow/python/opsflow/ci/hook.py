"""How `POST /events/ci/hook` authenticates a CI server that cannot sign with SigV4. API Gateway lets the
route through unauthorized; the function itself accepts a request only with one of:

- `X-Signature-256: sha256=<hex>`, the HMAC-SHA256 with the shared secret of `<X-Timestamp>.<raw body>`,
  and `X-Timestamp`, the Unix time in seconds it was signed at, no more than five minutes away from now;
- `X-Gitlab-Token` equal to the shared secret (a GitLab webhook's secret token), with a delivery id:
  `X-Gitlab-Event-UUID` (GitLab sends it) or `X-Request-Id`.

Each accepted signature or delivery id is remembered (`SeenDeliveries`), so the same request sent again is
refused: a captured request cannot be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from botocore.exceptions import ClientError

from opsflow.aws.errors import aws_call, error_code, from_client_error
from opsflow.errors import BadSignature, InvalidField, Unauthenticated

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SIGNATURE = "X-Signature-256"
TIMESTAMP = "X-Timestamp"
GITLAB_TOKEN = "X-Gitlab-Token"
GITLAB_EVENT_UUID = "X-Gitlab-Event-UUID"
REQUEST_ID = "X-Request-Id"
# How far a signature's timestamp may be from the function's clock, either way.
MAX_SKEW_SECONDS = 300
# Shorter secrets are refused: they could be guessed.
MIN_SECRET_LENGTH = 16
# A signature is remembered while its timestamp could still be accepted (at most twice the skew after it
# arrives, for one signed ahead of the clock); a delivery id, which no timestamp bounds, for a day.
REMEMBER_SIGNATURE_SECONDS = 2 * MAX_SKEW_SECONDS + 60
REMEMBER_DELIVERY_SECONDS = 24 * 3600

_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
_DELIVERY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

HOW_TO_SIGN = (
    f"send {SIGNATURE}: sha256=<hex HMAC-SHA256 of {TIMESTAMP} + '.' + the body, keyed with the shared "
    f"secret> and {TIMESTAMP}: <Unix time in seconds>, or {GITLAB_TOKEN}: <the shared secret> with "
    f"{GITLAB_EVENT_UUID} or {REQUEST_ID}"
)


@dataclass(frozen=True)
class Verified:
    """An authenticated request: how, the key that tells it from every other one (its replay key), and how
    long a repeat of it must be refused."""

    method: Literal["hmac", "gitlab-token"]
    replay_key: str
    remember_seconds: int


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The `X-Signature-256` value of `body` signed at `timestamp`."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(headers: Mapping[str, str], body: bytes, secret: str, now: float) -> Verified:
    """The request's authentication, or Unauthenticated (no credentials: 401), BadSignature (credentials
    that do not match, or a stale timestamp: 403) or InvalidField (a token without a delivery id: 400)."""
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError("the shared secret is too short")
    lowered = {name.lower(): value for name, value in headers.items()}
    signature = lowered.get(SIGNATURE.lower())
    if signature is not None:
        return _verify_signature(signature.strip(), lowered.get(TIMESTAMP.lower()), body, secret, now)
    token = lowered.get(GITLAB_TOKEN.lower())
    if token is not None:
        return _verify_token(token, lowered, secret)
    raise Unauthenticated(f"This request carries no credentials: {HOW_TO_SIGN}.")


def _verify_signature(
    signature: str, timestamp: str | None, body: bytes, secret: str, now: float
) -> Verified:
    if timestamp is None:
        raise Unauthenticated(
            f"{SIGNATURE} needs {TIMESTAMP}: the Unix time in seconds the body was signed at, which the "
            "signature covers."
        )
    matched = _SIGNATURE.fullmatch(signature)
    if matched is None:
        raise BadSignature(f"{SIGNATURE} must be sha256= and the 64 hex digits of the HMAC-SHA256.")
    timestamp = timestamp.strip()
    if not re.fullmatch(r"\d{1,12}", timestamp):
        raise BadSignature(f"{TIMESTAMP} must be the Unix time in seconds (date +%s).")
    expected = sign(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), f"sha256={matched[1].lower()}".encode()):
        raise BadSignature(
            f"{SIGNATURE} does not match: sign {TIMESTAMP} + '.' + the body exactly as sent, with the "
            "shared secret."
        )
    skew = int(now) - int(timestamp)
    if abs(skew) > MAX_SKEW_SECONDS:
        when = f"{skew} s ago" if skew > 0 else f"{-skew} s ahead"
        raise BadSignature(
            f"{TIMESTAMP} is {when}: a signature is accepted for {MAX_SKEW_SECONDS // 60} minutes either "
            "side of its timestamp; sign the request when you send it (and check the sender's clock)."
        )
    return Verified("hmac", f"hmac:{matched[1].lower()}", REMEMBER_SIGNATURE_SECONDS)


def _verify_token(token: str, headers: Mapping[str, str], secret: str) -> Verified:
    if not hmac.compare_digest(token.strip().encode("utf-8"), secret.encode("utf-8")):
        raise BadSignature(f"{GITLAB_TOKEN} is not the shared secret.")
    delivery = headers.get(GITLAB_EVENT_UUID.lower()) or headers.get(REQUEST_ID.lower())
    if not delivery:
        raise InvalidField(
            REQUEST_ID,
            f"a token needs a delivery id, so that the same delivery cannot be accepted twice: GitLab "
            f"sends {GITLAB_EVENT_UUID}; a job sends {REQUEST_ID} (its CI_JOB_ID and status, say)",
        )
    delivery = delivery.strip()
    if not _DELIVERY_ID.fullmatch(delivery):
        raise InvalidField(REQUEST_ID, "a delivery id is up to 128 letters, digits, '.', '_', ':' and '-'")
    return Verified("gitlab-token", f"delivery:{delivery}", REMEMBER_DELIVERY_SECONDS)


class SeenDeliveries(Protocol):
    def first_time(self, key: str, now: float, remember_seconds: int) -> bool:
        """Remember `key` for `remember_seconds`; False if it is remembered already (a replay)."""

    def forget(self, key: str) -> None:
        """Forget `key`: the request it came with was not carried out, so sending it again is not a replay."""


class InMemorySeenDeliveries:
    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def first_time(self, key: str, now: float, remember_seconds: int) -> bool:
        if self._seen.get(key, float("-inf")) > now:
            return False
        self._seen[key] = now + remember_seconds
        return True

    def forget(self, key: str) -> None:
        self._seen.pop(key, None)


class DynamoSeenDeliveries:
    """In the idempotency table (key `id`, time to live `expiration`), beside the Powertools idempotency
    records, under a prefix of its own. The condition reads `expiration` too: DynamoDB deletes expired
    items hours late."""

    PREFIX = "ci-hook#"

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._ddb = client
        self._table = table_name

    def first_time(self, key: str, now: float, remember_seconds: int) -> bool:
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item={
                    "id": {"S": self.PREFIX + key},
                    "expiration": {"N": str(int(now) + remember_seconds)},
                },
                ConditionExpression="attribute_not_exists(id) OR expiration <= :now",
                ExpressionAttributeValues={":now": {"N": str(int(now))}},
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise from_client_error("PutItem", error) from error
        return True

    def forget(self, key: str) -> None:
        with aws_call("DeleteItem"):
            self._ddb.delete_item(TableName=self._table, Key={"id": {"S": self.PREFIX + key}})
