"""Call the API function as API Gateway would after IAM authorization: a REST proxy event in,
a proxy response out. Routes come from the template's Api events; unknown routes get API Gateway's
own answer (403 Missing Authentication Token), and so does a request without a principal to a route the
IAM authorizer guards. A route whose event sets `Auth: {Authorizer: NONE}` is called without one: its
event's identity names no caller, as API Gateway's does for an unauthorized method."""

from __future__ import annotations

import json
import os
import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from opsflow_local.template import ACCOUNT_ID

if TYPE_CHECKING:
    from opsflow_local.lambdas import LambdaRouter
    from opsflow_local.template import Template

DEFAULT_PRINCIPAL = f"arn:aws:iam::{ACCOUNT_ID}:user/opsflow-local"


@dataclass(frozen=True)
class ApiResponse:
    status_code: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text) if self.text else None


@dataclass(frozen=True)
class _Route:
    method: str
    resource: str
    pattern: re.Pattern[str]
    function: str
    iam: bool = True  # API Gateway's AWS_IAM authorizer guards it


@dataclass
class ApiClient:
    router: LambdaRouter
    routes: list[_Route] = field(default_factory=list)
    stage: str = "v1"
    api_id: str = "opsflowlocal"

    @classmethod
    def from_template(cls, template: Template, router: LambdaRouter) -> ApiClient:
        routes = []
        for logical_id in template.resources("AWS::Serverless::Function"):
            events = template.body["Resources"][logical_id]["Properties"].get("Events") or {}
            for event in events.values():
                if event.get("Type") != "Api":
                    continue
                path = event["Properties"]["Path"]
                regex = "^" + re.sub(r"\{([^}/+]+)\}", r"(?P<\1>[^/]+)", path) + "$"
                routes.append(
                    _Route(
                        event["Properties"]["Method"].upper(),
                        path,
                        re.compile(regex),
                        template.physical_name(logical_id),
                        _authorizer(template, event["Properties"]) == "AWS_IAM",
                    )
                )
        return cls(router=router, routes=routes)

    def _route(self, method: str, path: str) -> tuple[_Route, re.Match[str]] | None:
        for route in self.routes:
            match = route.pattern.match(path)
            if match and route.method == method.upper():
                return route, match
        return None

    def signature_required(self, method: str, path: str) -> bool:
        """Whether API Gateway's IAM authorizer checks a request for `path` (an unknown one: it answers 403)."""
        found = self._route(method, path.partition("?")[0])
        return found is None or found[0].iam

    def post(
        self,
        path: str,
        json: Any = None,
        principal: str | None = DEFAULT_PRINCIPAL,
        headers: dict[str, str] | None = None,
        body: str | None = None,
    ) -> ApiResponse:
        return self.request("POST", path, json=json, principal=principal, headers=headers, body=body)

    def put(
        self,
        path: str,
        json: Any = None,
        principal: str | None = DEFAULT_PRINCIPAL,
        headers: dict[str, str] | None = None,
    ) -> ApiResponse:
        return self.request("PUT", path, json=json, principal=principal, headers=headers)

    def get(
        self, path: str, principal: str | None = DEFAULT_PRINCIPAL, headers: dict[str, str] | None = None
    ) -> ApiResponse:
        return self.request("GET", path, principal=principal, headers=headers)

    def delete(
        self, path: str, principal: str | None = DEFAULT_PRINCIPAL, headers: dict[str, str] | None = None
    ) -> ApiResponse:
        return self.request("DELETE", path, principal=principal, headers=headers)

    def request(
        self,
        method: str,
        path: str,
        json: Any = None,
        principal: str | None = DEFAULT_PRINCIPAL,
        headers: dict[str, str] | None = None,
        body: str | None = None,
    ) -> ApiResponse:
        """`principal`: the IAM caller the authorizer found (None: an unsigned request)."""
        import json as json_module

        path, _, query = path.partition("?")
        found = self._route(method, path)
        if found is None or (found[0].iam and principal is None):
            return ApiResponse(
                403,
                {"x-amzn-ErrorType": "MissingAuthenticationTokenException"},
                '{"message":"Missing Authentication Token"}',
            )
        route, match = found
        # A method without an authorizer tells the integration nothing of who signed, if anyone did.
        caller = principal if route.iam else None
        if body is None and json is not None:
            body = json_module.dumps(json)
        all_headers = {"Content-Type": "application/json", "Host": "localhost", **(headers or {})}
        event = {
            "resource": route.resource,
            "path": path,
            "httpMethod": method.upper(),
            "headers": all_headers,
            "multiValueHeaders": {key: [value] for key, value in all_headers.items()},
            "queryStringParameters": _query(query),
            "multiValueQueryStringParameters": {k: [v] for k, v in (_query(query) or {}).items()} or None,
            "pathParameters": match.groupdict() or None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": route.resource,
                "httpMethod": method.upper(),
                "path": f"/{self.stage}{path}",
                "stage": self.stage,
                "accountId": ACCOUNT_ID,
                "apiId": self.api_id,
                "requestId": str(uuid.uuid4()),
                "protocol": "HTTP/1.1",
                "identity": _identity(caller),
            },
            "body": body,
            "isBase64Encoded": False,
        }
        try:
            result = self.router.invoke(route.function, event)
        except Exception:  # API Gateway's answer when the integration fails
            if os.environ.get("OPSFLOW_LOCAL_DEBUG"):
                raise
            return ApiResponse(502, {}, '{"message": "Internal server error"}')
        response_headers = {key: str(value) for key, value in (result.get("headers") or {}).items()}
        for key, values in (result.get("multiValueHeaders") or {}).items():
            response_headers[key] = ", ".join(str(v) for v in values)
        return ApiResponse(int(result["statusCode"]), response_headers, result.get("body") or "")


def _authorizer(template: Template, properties: dict[str, Any]) -> str:
    """The authorizer of an Api event: its own `Auth.Authorizer`, else its API's `DefaultAuthorizer`."""
    own = (properties.get("Auth") or {}).get("Authorizer")
    if own:
        return str(own)
    api = template.body["Resources"].get((properties.get("RestApiId") or {}).get("Ref", ""), {})
    return str(((api.get("Properties") or {}).get("Auth") or {}).get("DefaultAuthorizer") or "NONE")


def _identity(principal: str | None) -> dict[str, Any]:
    if principal is None:
        return {
            "userArn": None,
            "caller": None,
            "user": None,
            "accountId": None,
            "accessKey": None,
            "sourceIp": "127.0.0.1",
            "userAgent": "opsflow-local",
        }
    return {
        "userArn": principal,
        "caller": principal.rsplit("/", 1)[-1],
        "user": principal.rsplit("/", 1)[-1],
        "accountId": principal.split(":")[4] if principal.count(":") >= 5 else ACCOUNT_ID,
        "accessKey": "ASIAEMBEDDEDLOCAL",
        "sourceIp": "127.0.0.1",
        "userAgent": "opsflow-local",
    }


def _query(query: str) -> dict[str, str] | None:
    pairs = dict(parse_qsl(query))
    return pairs or None
