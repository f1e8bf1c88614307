"""Post a rendered message to a webhook: retry 429 and 5xx, honouring Retry-After, and never put the
URL (a secret) in an error."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from opsflow.errors import OpsflowError


class DeliveryFailed(OpsflowError):
    code = "DeliveryFailed"


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: str


Poster = Callable[[str, bytes, Mapping[str, str]], HttpResponse]


def urllib_post(url: str, body: bytes, headers: Mapping[str, str]) -> HttpResponse:
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return HttpResponse(
                response.status, dict(response.headers), response.read(2048).decode(errors="replace")
            )
    except urllib.error.HTTPError as error:
        return HttpResponse(error.code, dict(error.headers or {}), error.read(2048).decode(errors="replace"))


def retry_after(headers: Mapping[str, str]) -> float | None:
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to backoff


def deliver(
    url: str,
    payload: dict[str, Any],
    *,
    post: Poster = urllib_post,
    sleep: Callable[[float], None] = time.sleep,
    max_attempts: int = 4,
    max_wait_seconds: float = 30.0,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Deliver once; returns the number of attempts it took. Raises DeliveryFailed, never with the URL.
    `deadline` (a `clock` reading) stops retrying where a wait would outlast the time left."""
    body = json.dumps(payload).encode()
    problem = "not attempted"
    for attempt in range(1, max_attempts + 1):
        wait = min(2.0 ** (attempt - 1), max_wait_seconds)
        try:
            response = post(url, body, {"Content-Type": "application/json"})
        except ValueError as error:  # urllib's message would quote the URL, a secret
            raise DeliveryFailed(f"the webhook URL is not valid ({type(error).__name__})") from None
        except (urllib.error.URLError, OSError) as error:
            problem = f"could not connect ({type(error).__name__})"
        else:
            if 200 <= response.status < 300:
                return attempt
            problem = f"HTTP {response.status}: {response.body[:200]}"
            if response.status != 429 and response.status < 500:
                raise DeliveryFailed(f"the webhook refused the message ({problem}); not retried")
            asked = retry_after(response.headers)
            if asked is not None:
                wait = min(asked, max_wait_seconds)
        if attempt < max_attempts:
            if deadline is not None and clock() + wait > deadline:
                raise DeliveryFailed(f"no time left to wait {wait:.0f} s for a retry: {problem}")
            sleep(wait)
    raise DeliveryFailed(f"gave up after {max_attempts} attempts: {problem}")


# Publishes `message` (a JSON string) to the topic ARN; raises botocore's ClientError or a connection error.
Publisher = Callable[[str, str], None]

# SNS takes messages of up to 256 KB.
SNS_MAX_BYTES = 256 * 1024


def sns_publish(topic_arn: str, message: str) -> None:
    from opsflow.aws import clients

    region = topic_arn.split(":")[3]
    clients.client("sns", region).publish(TopicArn=topic_arn, Message=message)


def publish(
    topic_arn: str,
    payload: dict[str, Any],
    *,
    publisher: Publisher = sns_publish,
    sleep: Callable[[float], None] = time.sleep,
    max_attempts: int = 3,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Publish once to an SNS topic (an AWS Chatbot channel's); returns the attempts it took. Throttling
    and AWS-side errors are retried with backoff (on top of botocore's own retries); anything else, such
    as a topic that does not exist or a missing grant, is not."""
    from botocore.exceptions import BotoCoreError, ClientError

    from opsflow.aws.errors import error_code, is_transient

    body = json.dumps(payload)
    if len(body.encode()) > SNS_MAX_BYTES:
        raise DeliveryFailed(f"the message is over SNS's {SNS_MAX_BYTES // 1024} KB limit; not sent")
    problem = "not attempted"
    for attempt in range(1, max_attempts + 1):
        try:
            publisher(topic_arn, body)
            return attempt
        except ClientError as error:
            code = error_code(error)
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            problem = f"SNS {code}"
            if not is_transient(code, status):
                raise DeliveryFailed(f"SNS refused the message ({code}); not retried") from None
        except (BotoCoreError, OSError) as error:
            problem = f"could not reach SNS ({type(error).__name__})"
        if attempt < max_attempts:
            wait = 2.0 ** (attempt - 1)
            if deadline is not None and clock() + wait > deadline:
                raise DeliveryFailed(f"no time left to wait {wait:.0f} s for a retry: {problem}")
            sleep(wait)
    raise DeliveryFailed(f"gave up after {max_attempts} attempts: {problem}")
