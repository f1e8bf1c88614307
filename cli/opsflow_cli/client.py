"""A small HTTP client for Opsflow's API that signs every request with SigV4 (service execute-api), as the
API's AWS_IAM authorizer requires: with the usual AWS credential chain for a deployed stack, and with the
embedded runtime's fixed credentials for the local app."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError

from opsflow.remediation.rules import RULE_NAME
from opsflow_cli.state import read_local

# What the local gateway (opsflow_local.gateway) accepts: the embedded account's only credentials.
LOCAL_CREDENTIALS = Credentials("testing", "testing", "testing")
LOCAL_REGION = "us-east-1"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
# https://{api-id}.execute-api.{region}.amazonaws.com/{stage}: the stack's ApiUrl output.
_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?$")
TIMEOUT_SECONDS = 30


class CliError(Exception):
    """Something the user can fix; the message says how."""

    def __init__(self, message: str, problems: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []


class ApiError(CliError):
    """The API refused the request: its status, error kind, message and, for a 400, each field's problem."""

    def __init__(self, status: int, body: Any) -> None:
        body = body if isinstance(body, dict) else {}
        self.status = status
        self.error = str(body.get("error") or "")
        message = str(body.get("message") or body.get("Message") or f"the API answered {status}")
        super().__init__(message, [p for p in body.get("problems") or [] if isinstance(p, dict)])


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoint:
    url: str  # the API's base URL, stage included, without a trailing slash
    region: str
    credentials: Credentials
    local: bool


def resolve_endpoint(url: str | None, region: str | None, profile: str | None) -> Endpoint:
    """The endpoint to talk to and how to sign for it: `url` if given, else the running `opsflow local`."""
    if not url:
        running = read_local()
        if running is None:
            raise CliError(
                "No Opsflow endpoint: start the local app with `opsflow local` (in another terminal), or pass "
                "--endpoint with a deployed stack's ApiUrl (or set OPSFLOW_ENDPOINT)."
            )
        return Endpoint(running.url.rstrip("/"), running.region, LOCAL_CREDENTIALS, local=True)
    url = url.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CliError(
            f"--endpoint must be the API's URL, like https://abc123.execute-api.eu-west-1.amazonaws.com/v1; got {url!r}"
        )
    if parts.hostname in LOCAL_HOSTS:
        return Endpoint(url, LOCAL_REGION, LOCAL_CREDENTIALS, local=True)
    return Endpoint(url, *_aws_signing(parts.hostname, region, profile), local=False)


def _aws_signing(host: str, region: str | None, profile: str | None) -> tuple[str, Credentials]:
    try:
        session = boto3.Session(profile_name=profile, region_name=region)
        credentials = session.get_credentials()
    except BotoCoreError as error:
        raise CliError(f"Cannot read AWS credentials: {error}") from None
    if credentials is None:
        raise CliError(
            "No AWS credentials found to sign the request: run `aws configure` or `aws sso login`, or pass "
            "--profile."
        )
    from_host = _API_HOST.match(host)
    chosen = region or (from_host["region"] if from_host else None) or session.region_name
    if not chosen:
        raise CliError("Which region is the API in? Pass --api-region (or set AWS_REGION).")
    frozen = credentials.get_frozen_credentials()
    return chosen, Credentials(frozen.access_key or "", frozen.secret_key or "", frozen.token)


class OpsflowClient:
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def get(self, path: str, query: dict[str, Any] | None = None) -> Answer:
        return self.request("GET", path, query=query)

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Answer:
        return self.request("POST", path, body=body, headers=headers)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        query: dict[str, Any] | None = None,
    ) -> Answer:
        """The API's answer for a 2xx; ApiError for any other status, CliError if nothing answers."""
        url = self.endpoint.url + path
        given = {k: v for k, v in (query or {}).items() if v is not None}
        if given:
            url += "?" + urlencode(given, quote_via=lambda value, *_: quote(value, safe="-_.~"))
        data = json.dumps(body).encode("utf-8") if body is not None else b""
        signed = AWSRequest(
            method=method,
            url=url,
            data=data,
            headers={"Content-Type": "application/json", "Accept": "application/json", **(headers or {})},
        )
        SigV4Auth(self.endpoint.credentials, "execute-api", self.endpoint.region).add_auth(signed)
        sent = urllib.request.Request(url, data=data or None, method=method, headers=dict(signed.headers))
        try:
            with urllib.request.urlopen(sent, timeout=TIMEOUT_SECONDS) as answer:
                return Answer(answer.status, _json(answer.read()), dict(answer.headers))
        except urllib.error.HTTPError as refused:
            raise ApiError(refused.code, _json(refused.read())) from None
        except urllib.error.URLError as error:
            raise self._unreachable(error.reason) from None
        except (ConnectionError, TimeoutError) as error:
            raise self._unreachable(error) from None

    # Remediation rules ----------------------------------------------------------------------------

    def put_remediation(self, name: str, rule: Mapping[str, Any]) -> dict[str, Any]:
        """`PUT /remediations/{name}`: create or replace the rule; the API answers with it as GET shows it."""
        return _object(self.request("PUT", _rule_path(name), body=dict(rule)), "a remediation rule")

    def remediation(self, name: str) -> dict[str, Any]:
        """`GET /remediations/{name}`: the rule, its breaker, what is under way and cooling down, its decisions."""
        return _object(self.get(_rule_path(name)), "a remediation rule")

    def remediations(self) -> dict[str, Any]:
        """`GET /remediations`: `{"remediations": [...], "count": n}`."""
        return _object(self.get("/remediations"), "a list of remediation rules")

    def delete_remediation(self, name: str) -> dict[str, Any]:
        """`DELETE /remediations/{name}`: `{"deleted": name}`."""
        return _object(self.request("DELETE", _rule_path(name)), "a deletion")

    def close_breaker(self, name: str) -> dict[str, Any]:
        """`DELETE /remediations/{name}/breaker`: the rule as GET shows it, its breaker closed."""
        return _object(self.request("DELETE", _rule_path(name) + "/breaker"), "a remediation rule")

    def _unreachable(self, reason: object) -> CliError:
        if self.endpoint.local:
            return CliError(
                f"No Opsflow at {self.endpoint.url}: start `opsflow local` or pass --endpoint ({reason})."
            )
        return CliError(f"No answer from {self.endpoint.url}: {reason}. Check --endpoint and your network.")


def _rule_path(name: str) -> str:
    # Checked here: the API would refuse such a name with a message about its path, not about the name.
    if not re.fullmatch(RULE_NAME, name):
        raise CliError(
            f"{name!r} is not a rule name: up to 64 letters, digits, '_' and '-', starting with a letter or a "
            "digit."
        )
    return f"/remediations/{quote(name, safe='')}"


def _object(answer: Answer, what: str) -> dict[str, Any]:
    if not isinstance(answer.body, dict):
        raise CliError(f"The API answered something other than {what}: {answer.body!r}")
    return answer.body


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return {"message": raw.decode("utf-8", "replace")[:500]}
