"""A local HTTP endpoint for the embedded app's REST API that authenticates as API Gateway's AWS_IAM
authorizer does: it recomputes each request's SigV4 signature (service execute-api) with botocore's
signer and the embedded account's credentials, refuses what does not match with API Gateway's own 403
answers, and hands what does to `EmbeddedAws.api` with the signer as the caller. A route the template
leaves unauthorized (`Auth: {Authorizer: NONE}`) is handed on unchecked, without a caller.

    with EmbeddedAws() as aws, aws.serve() as gateway:
        gateway.url        # http://127.0.0.1:<port>/v1; awscurl --service execute-api "$URL/runs"
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from opsflow_local.api import DEFAULT_PRINCIPAL

if TYPE_CHECKING:
    from opsflow_local.api import ApiClient, ApiResponse

# The embedded runtime's credentials (see EmbeddedAws._start): the only ones this gateway knows.
ACCESS_KEY = "testing"
SECRET_KEY = "testing"
SESSION_TOKEN = "testing"
MAX_CLOCK_SKEW = timedelta(minutes=5)
_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed_headers>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]+)$"
)
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)


class Refusal(Exception):
    """A request API Gateway would refuse before calling the integration."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def verify_signature(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    region: str,
    now: datetime | None = None,
) -> str:
    """The caller's ARN if the request is signed with the embedded account's credentials; else Refusal.

    `url` is the URL as the client addressed it (scheme, Host header, raw path and query)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    authorization = lowered.get("authorization")
    if not authorization:
        raise Refusal("MissingAuthenticationTokenException", "Missing Authentication Token")
    match = _AUTHORIZATION.match(authorization.strip())
    if match is None:
        raise Refusal(
            "IncompleteSignatureException",
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters "
            "(AWS4-HMAC-SHA256). Sign the request with SigV4.",
        )
    scope = match["credential"].split("/")
    if len(scope) != 5 or scope[3:] != ["execute-api", "aws4_request"] or scope[2] != region:
        raise Refusal(
            "InvalidSignatureException",
            f"Credential should be scoped to a valid region and to the service execute-api: "
            f"<key>/<date>/{region}/execute-api/aws4_request.",
        )
    if scope[0] != ACCESS_KEY or lowered.get("x-amz-security-token", SESSION_TOKEN) != SESSION_TOKEN:
        raise Refusal("UnrecognizedClientException", "The security token included in the request is invalid.")
    amz_date = lowered.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(amz_date, SIGV4_TIMESTAMP).replace(tzinfo=UTC)
    except ValueError:
        raise Refusal(
            "IncompleteSignatureException", "Authorization header requires an X-Amz-Date header."
        ) from None
    now = now or datetime.now(UTC)
    if abs(now - signed_at) > MAX_CLOCK_SKEW:
        earliest = (now - MAX_CLOCK_SKEW).strftime(SIGV4_TIMESTAMP)
        raise Refusal(
            "InvalidSignatureException",
            f"Signature expired: {amz_date} is now earlier than {earliest} "
            f"({now.strftime(SIGV4_TIMESTAMP)} - 5 min.)",
        )
    if scope[1] != amz_date[:8]:
        raise Refusal("InvalidSignatureException", _MISMATCH)
    signed_names = match["signed_headers"].split(";")
    if "host" not in signed_names or any(name not in lowered for name in signed_names):
        raise Refusal("InvalidSignatureException", _MISMATCH)
    # A signed payload hash must be the body's: botocore trusts the header instead of hashing the body.
    declared = lowered.get("x-amz-content-sha256")
    if (
        declared is not None
        and declared != "UNSIGNED-PAYLOAD"
        and declared != hashlib.sha256(body).hexdigest()
    ):
        raise Refusal("InvalidSignatureException", _MISMATCH)
    # SigV4's canonical query decodes each name and value and encodes it again (RFC 3986, `-_.~` kept),
    # as API Gateway does; botocore, given a URL, would only sort what the client sent.
    base, _, query = url.partition("?")
    params = sorted(
        (quote(name, safe="-_.~"), quote(value, safe="-_.~"))
        for name, value in parse_qsl(query, keep_blank_values=True)
    )
    canonical_url = base + ("?" + "&".join(f"{name}={value}" for name, value in params) if params else "")
    # Only the headers the client signed take part: proxies and HTTP clients add others on the way.
    request = AWSRequest(
        method=method, url=canonical_url, headers={name: lowered[name] for name in signed_names}, data=body
    )
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN), "execute-api", region)
    string_to_sign = signer.string_to_sign(request, signer.canonical_request(request))
    expected = signer.signature(string_to_sign, request)
    if not hmac.compare_digest(expected, match["signature"]):
        raise Refusal("InvalidSignatureException", _MISMATCH)
    return DEFAULT_PRINCIPAL


class Gateway:
    """A running local endpoint; stop it with `close()` or by leaving the `with` block."""

    def __init__(self, api: ApiClient, region: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.api = api
        self.region = region
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="opsflow-gateway", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The API's base URL with its stage, as the stack's ApiUrl output."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/{self.api.stage}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def answer(self, method: str, url: str, headers: dict[str, str], body: bytes) -> ApiResponse:
        from opsflow_local.api import ApiResponse

        raw_path, _, query = url.split("://", 1)[-1].partition("/")[2].partition("?")
        # API Gateway matches routes and fills pathParameters on the decoded path.
        path = "/" + unquote(raw_path).replace("?", "%3F") + (f"?{query}" if query else "")
        stage = f"/{self.api.stage}"
        # The deployed URL ends in the stage; accept paths with and without it.
        if path == stage or path.startswith(f"{stage}/") or path.startswith(f"{stage}?"):
            path = path[len(stage) :] or "/"
        # A method without an authorizer (Auth: {Authorizer: NONE}) is called signed or not, headers and all.
        signed = self.api.signature_required(method, path)
        principal: str | None = None
        if signed:
            try:
                principal = verify_signature(method, url, headers, body, self.region)
            except Refusal as refusal:
                return ApiResponse(
                    403, {"x-amzn-ErrorType": refusal.error_type}, json.dumps({"message": refusal.message})
                )
        dropped = ("authorization", "x-amz-security-token") if signed else ()
        passed = {
            name: value
            for name, value in headers.items()
            if name.lower() not in (*dropped, "content-length", "connection")
        }
        return self.api.request(
            method, path, principal=principal, headers=passed, body=body.decode("utf-8", "replace") or None
        )


def _handler_for(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            host = self.headers.get("Host") or gateway.url.split("/")[2]
            # A repeated header is one value, joined with commas, as SigV4 signs it.
            headers = {
                name: ",".join(value.strip() for value in self.headers.get_all(name) or [])
                for name in dict.fromkeys(self.headers.keys())
            }
            response = gateway.answer(self.command, f"http://{host}{self.path}", headers, body)
            payload = response.text.encode("utf-8")
            self.send_response(response.status_code)
            names = {name.lower() for name in response.headers}
            for name, value in response.headers.items():
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            if "content-type" not in names:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def __getattr__(self, name: str) -> Any:
            # Every method reaches API Gateway; one a resource lacks gets its 403, as an unknown path does.
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: API Gateway's access log is not this process's stderr."""

    return Handler
