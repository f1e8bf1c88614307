"""The local signing gateway: SigV4 checked as API Gateway's IAM authorizer does, good requests served by
the real API handler, and the OpenAPI document it serves kept in step with the committed one."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from opsflow_local import EmbeddedAws
from opsflow_local import openapi as openapi_script
from opsflow_local.gateway import Gateway

ROOT = Path(__file__).resolve().parents[2]
GOOD = Credentials("testing", "testing", "testing")


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAws]:
    with EmbeddedAws() as embedded:
        yield embedded


@pytest.fixture(scope="module")
def gateway(aws: EmbeddedAws) -> Iterator[Gateway]:
    with aws.serve() as served:
        yield served


def send(
    method: str,
    url: str,
    body: bytes = b"",
    credentials: Credentials | None = GOOD,
    at: datetime | None = None,
    tamper: bytes | None = None,
) -> tuple[int, dict[str, str], Any]:
    request = AWSRequest(method=method, url=url, data=body, headers={"Content-Type": "application/json"})
    if credentials is not None:
        with mock.patch("botocore.auth.get_current_datetime", return_value=at or datetime.now(UTC)):
            SigV4Auth(credentials, "execute-api", "us-east-1").add_auth(request)
    sent = urllib.request.Request(
        url,
        data=(tamper if tamper is not None else body) or None,
        method=method,
        headers=dict(request.headers),
    )
    try:
        with urllib.request.urlopen(sent, timeout=30) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as refused:
        return refused.code, dict(refused.headers), json.loads(refused.read() or b"null")


def test_a_signed_request_reaches_the_handler_with_the_signer_as_caller(gateway: Gateway) -> None:
    body = json.dumps({"workflow": "asg_refresh", "asg_name": "no-such-group"}).encode()

    status, _, answer = send("POST", f"{gateway.url}/runs", body)

    # The handler ran: the group does not exist, so the run is refused with the domain's answer.
    assert status == 422
    assert answer["error"] in ("NotFound", "Refused")
    assert "no-such-group" in answer["message"]


def test_the_stage_prefix_is_optional(gateway: Gateway) -> None:
    without_stage = gateway.url.removesuffix("/v1")

    status, _, answer = send("GET", f"{without_stage}/runs/ami-bake-nope")

    assert status == 404
    assert answer["error"] == "NotFound"


def test_an_unsigned_request_gets_missing_authentication_token(gateway: Gateway) -> None:
    status, headers, answer = send("GET", f"{gateway.url}/runs/ami-bake-nope", credentials=None)

    assert status == 403
    assert answer == {"message": "Missing Authentication Token"}
    assert headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def test_a_wrong_secret_is_refused(gateway: Gateway) -> None:
    status, headers, answer = send(
        "GET", f"{gateway.url}/runs/ami-bake-nope", credentials=Credentials("testing", "wrong", "testing")
    )

    assert status == 403
    assert answer["message"].startswith("The request signature we calculated does not match")
    assert headers["x-amzn-ErrorType"] == "InvalidSignatureException"


def test_an_unknown_access_key_is_refused(gateway: Gateway) -> None:
    status, _, answer = send(
        "GET", f"{gateway.url}/runs/x", credentials=Credentials("AKIAOTHER", "testing", "testing")
    )

    assert status == 403
    assert answer == {"message": "The security token included in the request is invalid."}


def test_a_body_changed_after_signing_is_refused(gateway: Gateway, aws: EmbeddedAws) -> None:
    body = json.dumps({"workflow": "env_power", "environment": "qa", "action": "stop", "dry_run": True})
    tampered = body.replace('"dry_run": true', '"dry_run": false').encode()

    status, _, answer = send("POST", f"{gateway.url}/runs", body.encode(), tamper=tampered)

    assert status == 403
    assert answer["message"].startswith("The request signature we calculated does not match")
    assert (
        aws.client("stepfunctions").list_executions(
            stateMachineArn=aws.state_machine_arn("EnvPowerStateMachine")
        )["executions"]
        == []
    )


def test_a_request_signed_more_than_five_minutes_ago_is_refused(gateway: Gateway) -> None:
    status, _, answer = send("GET", f"{gateway.url}/runs/x", at=datetime.now(UTC) - timedelta(minutes=6))

    assert status == 403
    assert answer["message"].startswith("Signature expired: ")
    assert answer["message"].endswith(" - 5 min.)")


def test_a_request_signed_four_minutes_ago_is_accepted(gateway: Gateway) -> None:
    status, _, _ = send("GET", f"{gateway.url}/runs/x", at=datetime.now(UTC) - timedelta(minutes=4))

    assert status == 404


def test_a_route_without_an_authorizer_is_handed_on_unsigned(gateway: Gateway) -> None:
    """POST /events/ci/hook has `Auth: {Authorizer: NONE}`: the function answers, not API Gateway."""
    status, headers, body = send("POST", f"{gateway.url}/events/ci/hook", b"{}", credentials=None)

    assert status == 401
    assert body["error"] == "Unauthenticated"
    assert headers["WWW-Authenticate"].startswith("HMAC-SHA256")


def test_the_openapi_document_is_served_signed(gateway: Gateway) -> None:
    status, headers, document = send("GET", f"{gateway.url}/openapi.json")

    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert document["info"]["title"] == "Opsflow"
    assert document["servers"] == [{"url": "/"}]
    assert document == json.loads((ROOT / "openapi.json").read_text())


def test_the_committed_openapi_document_is_up_to_date() -> None:
    assert (ROOT / "openapi.json").read_text() == openapi_script.generate(), (
        "openapi.json is out of date: run python -m opsflow_local.openapi"
    )


def test_every_operation_documents_its_refusals_with_the_error_body() -> None:
    document = json.loads(openapi_script.generate())
    error_body = {"$ref": "#/components/schemas/ErrorBody"}

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            refusals = {code for code in operation["responses"] if code.startswith("4")}
            assert {"400", "403", "422"} <= refusals, f"{method} {path}"
            for code in refusals:
                schema = operation["responses"][code]["content"]["application/json"]["schema"]
                assert schema == error_body or error_body in schema["anyOf"], f"{method} {path} {code}"
    assert document["components"]["schemas"]["ErrorBody"]["required"] == ["error", "message"]


def test_a_query_signed_in_sigv4s_canonical_form_is_accepted(gateway: Gateway) -> None:
    """SigV4 signs each query name and value URI-encoded (`:` as %3A) while clients such as awscurl send
    them as typed; API Gateway accepts both, and so must the gateway."""
    typed = f"{gateway.url}/runs?target=asg:web&workflow=ami_bake"
    request = AWSRequest(
        method="GET", url=f"{gateway.url}/runs", params={"target": "asg:web", "workflow": "ami_bake"}
    )
    SigV4Auth(GOOD, "execute-api", "us-east-1").add_auth(request)
    sent = urllib.request.Request(typed, method="GET", headers=dict(request.headers))

    with urllib.request.urlopen(sent, timeout=30) as answer:
        assert answer.status == 200
        assert json.loads(answer.read())["runs"] == []


def test_a_body_changed_after_signing_its_hash_is_refused(gateway: Gateway, aws: EmbeddedAws) -> None:
    body = json.dumps(
        {"workflow": "env_power", "environment": "qa", "action": "stop", "dry_run": True}
    ).encode()
    request = AWSRequest(
        method="POST",
        url=f"{gateway.url}/runs",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Amz-Content-Sha256": hashlib.sha256(body).hexdigest(),
        },
    )
    SigV4Auth(GOOD, "execute-api", "us-east-1").add_auth(request)
    tampered = body.replace(b'"dry_run": true', b'"dry_run": false')
    sent = urllib.request.Request(
        f"{gateway.url}/runs", data=tampered, method="POST", headers=dict(request.headers)
    )

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(sent, timeout=30)

    assert refused.value.code == 403
    assert json.loads(refused.value.read())["message"].startswith("The request signature we calculated")
