"""Lambda adapter: invoke a function synchronously and read its JSON answer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from opsflow.aws.errors import aws_call


@dataclass(frozen=True)
class Invocation:
    payload: Any  # the function's JSON answer, or None when it returned nothing readable
    function_error: str | None  # "Unhandled" when the function raised


class LambdaFunctions:
    def __init__(self, client: Any) -> None:
        self._lambda = client

    def invoke(self, function: str, payload: dict[str, Any]) -> Invocation:
        with aws_call("Invoke", not_found=f"Lambda function {function} does not exist"):
            answer = self._lambda.invoke(
                FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(payload).encode()
            )
        body = answer["Payload"].read()
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode(errors="replace")
        return Invocation(payload=parsed, function_error=answer.get("FunctionError"))
