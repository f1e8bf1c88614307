"""The smoke test, a gate checked once green is steady and before any production traffic reaches it: an
HTTP GET through the test listener, or a Lambda function's verdict."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, StrictBool, ValidationError

from opsflow.aws.lambda_functions import LambdaFunctions
from opsflow.traffic.gates import SmokeTestFailed
from opsflow.traffic.smoke import HttpGet, UrlSmokeTest
from opsflow.workflows.ecs_blue_green.state import DeploySpec, GreenState, SmokeTestSpec


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
