"""The smoke test, a gate checked once green is steady and before any production traffic reaches it: an
HTTP GET through the test listener, or a Lambda function's verdict."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, StrictBool, ValidationError

from opsflow.aws.lambda_functions import LambdaFunctions
from opsflow.workflows.ecs_blue_green.errors import SmokeTestFailed
from opsflow.workflows.ecs_blue_green.state import DeploySpec, GreenState, SmokeTestSpec

HttpGet = Callable[[str, float], int]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect (to HTTPS, or to the production host) would test something other than green: it counts as
    # an answer that is not 2xx.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def http_status(url: str, timeout: float) -> int:
    """The status of a GET of `url`, redirects not followed; raises OSError when there is no answer."""
    request = urllib.request.Request(url, headers={"User-Agent": "opsflow-smoke-test"})
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


@dataclass(frozen=True)
class UrlSmokeTest:
    url: str
    timeout_seconds: float
    http_get: HttpGet

    def check(self) -> str:
        try:
            status = self.http_get(self.url, self.timeout_seconds)
        except OSError as error:
            raise SmokeTestFailed(f"smoke test GET {self.url} got no answer: {error}") from error
        if not 200 <= status < 300:
            raise SmokeTestFailed(f"smoke test GET {self.url} answered {status}, not 2xx")
        return f"GET {self.url} answered {status}"


class Verdict(BaseModel):
    """What a smoke test function must return."""

    passed: StrictBool
    reason: str | None = None


class _FunctionError(BaseModel):
    errorMessage: str


@dataclass(frozen=True)
class LambdaSmokeTest:
    """The function is told which green to test; it answers `{"passed": true|false, "reason": "..."}`."""

    functions: LambdaFunctions
    function: str
    payload: dict[str, Any]

    def check(self) -> str:
        invocation = self.functions.invoke(self.function, self.payload)
        answer = invocation.payload
        if invocation.function_error:
            try:
                message: Any = _FunctionError.model_validate(answer).errorMessage
            except ValidationError:
                message = answer
            raise SmokeTestFailed(f"smoke test function {self.function} failed: {message}")
        try:
            verdict = Verdict.model_validate(answer)
        except ValidationError as error:
            raise SmokeTestFailed(
                f'smoke test function {self.function} must return {{"passed": true|false, "reason": "..."}}, '
                f"not {json.dumps(answer)[:200]}"
            ) from error
        reason = verdict.reason or "no reason given"
        if not verdict.passed:
            raise SmokeTestFailed(f"smoke test function {self.function} says green failed: {reason}")
        return f"Lambda {self.function}: {reason}"


def smoke_test_gate(
    smoke: SmokeTestSpec,
    spec: DeploySpec,
    green: GreenState,
    run_id: str,
    functions: LambdaFunctions,
    http_get: HttpGet,
) -> UrlSmokeTest | LambdaSmokeTest:
    if smoke.url:
        return UrlSmokeTest(smoke.url, float(smoke.timeout_seconds), http_get)
    if not smoke.lambda_function:
        raise ValueError("a smoke test names a url or a Lambda function")
    return LambdaSmokeTest(
        functions,
        smoke.lambda_function,
        {
            "run_id": run_id,
            "cluster": spec.cluster,
            "service": green.service,
            "task_definition": green.task_definition,
            "target_group_arn": spec.green.target_group,
            "test_listener_arn": spec.test_listener_arn,
        },
    )
