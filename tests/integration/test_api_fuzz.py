"""Fuzz the API through the local signing gateway with schemathesis, from the committed OpenAPI document:
no 5xx, every answer as documented, and every refusal says what to fix."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
    unsupported_method,
)

from opsflow_local import EmbeddedAws
from opsflow_local.gateway import Gateway

ROOT = Path(__file__).resolve().parents[2]
schema = schemathesis.openapi.from_dict(json.loads((ROOT / "openapi.json").read_text()))


class SigV4(requests.auth.AuthBase):
    """Signs each request as awscurl does, with the embedded account's credentials."""

    def __init__(self, region: str) -> None:
        self.signer = SigV4Auth(Credentials("testing", "testing", "testing"), "execute-api", region)

    def __call__(self, prepared: requests.PreparedRequest) -> requests.PreparedRequest:
        body = prepared.body.encode() if isinstance(prepared.body, str) else (prepared.body or b"")
        # Sign only what no client or proxy rewrites on the way, as SDKs do.
        signed = {k: v for k, v in prepared.headers.items() if k.lower() in ("content-type", "host")}
        request = AWSRequest(method=prepared.method, url=prepared.url, data=body, headers=signed)
        self.signer.add_auth(request)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            prepared.headers[name] = request.headers[name]
        return prepared


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    with EmbeddedAws() as aws, aws.serve() as served:
        yield served


_REASON_PHRASES = {"", *(status.phrase.lower() for status in HTTPStatus)}


def message_says_what_to_fix(ctx: Any, response: Any, case: Any) -> bool | None:
    if 400 <= response.status_code < 500:
        body = response.json()
        message = body.get("message") if isinstance(body, dict) else None
        assert isinstance(message, str), f"a {response.status_code} without a message: {body!r}"
        assert message.strip().lower() not in _REASON_PHRASES, (
            f"a {response.status_code} saying only {message!r}"
        )
        if response.status_code == 400:
            assert body.get("problems"), f"a 400 that names no field: {body!r}"
    return None


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_the_api_answers_as_documented(case: schemathesis.Case, gateway: Gateway) -> None:
    case.call_and_validate(
        base_url=gateway.url,
        auth=SigV4(gateway.region),
        additional_checks=[message_says_what_to_fix],
        excluded_checks=[
            # API Gateway answers a method a resource lacks with 403 Missing Authentication Token, not 405.
            unsupported_method,
            # Unknown query parameters are ignored, as API Gateway and Powertools do.
            negative_data_rejection,
            # A well-formed request for a target that does not exist is refused (404, 422) by design.
            positive_data_acceptance,
        ],
    )
