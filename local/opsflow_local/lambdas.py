"""Route moto's Lambda invokes to the real handlers, in-process, each with its own environment."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from moto.awslambda_simple.models import LambdaSimpleBackend

from opsflow_local.faults import Faults
from opsflow_local.iam.enforcer import Principal, acting_as

Handler = Callable[[dict[str, Any], Any], Any]


def invocation_record(
    function_arn: str, event: dict[str, Any], error: Exception, attempts: int
) -> dict[str, Any]:
    """What Lambda sends an on-failure destination for an asynchronous invocation that failed every time
    (Lambda developer guide, "Capturing records of Lambda asynchronous invocations")."""
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"{function_arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": type(error).__name__, "errorMessage": str(error)},
    }


@dataclass
class LambdaContext:
    """What the Lambda runtime passes as `context`; Powertools reads these attributes."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class DeployedFunction:
    name: str
    arn: str
    code_dir: Path
    handler: str  # "module.function", as the template's Handler
    environment: dict[str, str]
    memory: int = 512
    role_arn: str | None = None  # the calls its handler makes run as this role (None: not held to IAM)
    _module: ModuleType | None = None

    def load(self) -> Handler:
        module_name, function_name = self.handler.rsplit(".", 1)
        if self._module is None:
            source = self.code_dir / f"{module_name.replace('.', '/')}.py"
            # A unique module name per deployment: each function (all called app.py) gets its own module,
            # and a new EmbeddedAws starts from fresh module state, as a cold start would.
            unique = f"opsflow_fn_{self.name.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
            spec = importlib.util.spec_from_file_location(unique, source)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load handler {self.handler} from {source}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[unique] = module
            spec.loader.exec_module(module)
            self._module = module
        handler: Handler = getattr(self._module, function_name)
        return handler


class LambdaRouter:
    """Holds the deployed functions and patches moto's simple Lambda backend to call them."""

    def __init__(self, base_environment: dict[str, str], faults: Faults | None = None) -> None:
        self.functions: dict[str, DeployedFunction] = {}
        self._base_environment = base_environment
        self._faults = faults
        # Environment variables are process-wide: one invocation at a time (re-entrant for nested calls).
        self._lock = threading.RLock()
        # Variables the process did not have before an invocation set them: emptied after each one,
        # removed when the runtime closes.
        self._emptied: set[str] = set()
        self._original_invoke: Any = None
        # Invocations so far, by function name.
        self.invoked: Counter[str] = Counter()

    def register(self, function: DeployedFunction) -> None:
        self.functions[function.name] = function

    def invoke(self, name: str, event: Any) -> Any:
        """Call a function's handler as Lambda would; exceptions propagate."""
        function = self.functions[name]
        self.invoked[name] += 1
        principal = Principal(function.role_arn, function.name) if function.role_arn else None
        with self._lock, self._environment(function), acting_as(principal):
            handler = function.load()
            context = LambdaContext(function.name, function.arn, function.memory)
            if self._faults is None:
                return handler(event, context)
            return self._faults.invoke(name, event, lambda: handler(event, context))

    @contextmanager
    def _environment(self, function: DeployedFunction) -> Iterator[None]:
        wanted = {
            **self._base_environment,
            **function.environment,
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory),
        }
        saved = {key: os.environ.get(key) for key in wanted}
        os.environ.update(wanted)
        try:
            yield
        finally:
            # A variable the process did not have is emptied, not removed: other threads (a Step Functions
            # execution making a boto3 client, which copies os.environ) may be iterating the environment,
            # and a key removed under them raises KeyError there. `required_env` treats empty as unset.
            os.environ.update({key: value or "" for key, value in saved.items()})
            self._emptied.update(key for key, value in saved.items() if value is None)

    # moto integration -------------------------------------------------------------------------

    def install(self) -> None:
        router = self
        self._original_invoke = LambdaSimpleBackend.invoke

        def invoke(
            backend: LambdaSimpleBackend,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: Any,
        ) -> bytes | str | None:
            name = backend.get_function(function_name, qualifier).function_name
            if name not in router.functions:
                return router._original_invoke(
                    backend, function_name, qualifier, body, headers, response_headers
                )
            event = json.loads(body) if body else {}
            try:
                result = router.invoke(name, event)
            except Exception as error:  # noqa: BLE001 - reported to the caller as Lambda reports an unhandled error
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps(
                    {
                        "errorType": type(error).__name__,
                        "errorMessage": str(error),
                        "stackTrace": traceback.format_tb(error.__traceback__),
                    }
                ).encode()
            return json.dumps(result).encode()

        LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]

    def uninstall(self) -> None:
        # No execution runs any more: the emptied variables can go without racing a reader.
        for key in self._emptied:
            if os.environ.get(key) == "":
                del os.environ[key]
        self._emptied.clear()
        if self._original_invoke is not None:
            LambdaSimpleBackend.invoke = self._original_invoke  # type: ignore[method-assign]
            self._original_invoke = None
