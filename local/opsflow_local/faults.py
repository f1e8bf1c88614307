"""Failures on purpose, for tests and demos: an AWS call answered with the error AWS would give, or a
Lambda invocation that fails before or after its handler ran. Opsflow's code is not touched: the failure
comes from where it would come from on AWS (`EmbeddedAws.faults`).

A call fault is answered from botocore's `before-call` hook, after IAM's (a denied call is denied first);
an invocation fault wraps the handler the embedded Lambda runs. An injected answer is final: botocore does
not retry it, as if its retries had all failed the same way."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from botocore import handlers
from botocore.awsrequest import AWSResponse

from opsflow_local.iam.enforcer import PARAMS_KEY

# The function whose handler is running on this thread: the caller of the AWS calls it makes.
_invoking: ContextVar[str | None] = ContextVar("invoking", default=None)


@dataclass
class CallFault:
    service: str  # botocore's service name: "autoscaling", "dynamodb", ...
    operation: str  # "UpdateAutoScalingGroup"
    code: str
    message: str
    status: int = 400
    caller: str | None = None  # a function's name: only its calls fail
    when: Callable[[dict[str, Any]], bool] | None = None  # on the call's parameters
    times: int | None = 1  # None: every matching call
    hits: int = 0

    def matches(self, service: str, operation: str, params: dict[str, Any]) -> bool:
        if (service, operation) != (self.service, self.operation):
            return False
        if self.caller is not None and _invoking.get() != self.caller:
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        return self.when is None or self.when(params)


@dataclass
class InvocationFault:
    function: str
    message: str
    when: Callable[[Any], bool] | None = None  # on the invocation's event
    nth: int = 1  # the nth matching invocation fails
    after_running: bool = False  # the handler did its work, then the invocation failed
    seen: int = 0
    done: bool = False

    def applies(self, function: str, event: Any) -> bool:
        if self.done or function != self.function or (self.when is not None and not self.when(event)):
            return False
        self.seen += 1
        return self.seen == self.nth


class InjectedFailure(RuntimeError):
    """What a failed invocation raises, as a Lambda function error (its errorType is this class's name)."""


@dataclass
class Faults:
    calls: list[CallFault] = field(default_factory=list)
    invocations: list[InvocationFault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_call(
        self,
        service: str,
        operation: str,
        code: str,
        message: str = "injected failure",
        *,
        status: int = 400,
        caller: str | None = None,
        when: Callable[[dict[str, Any]], bool] | None = None,
        times: int | None = 1,
    ) -> CallFault:
        fault = CallFault(service, operation, code, message, status, caller, when, times)
        with self._lock:
            self.calls.append(fault)
        return fault

    def fail_invocation(
        self,
        function: str,
        message: str = "injected failure",
        *,
        when: Callable[[Any], bool] | None = None,
        nth: int = 1,
        after_running: bool = False,
    ) -> InvocationFault:
        fault = InvocationFault(function, message, when, nth, after_running)
        with self._lock:
            self.invocations.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
            self.invocations.clear()

    @contextmanager
    def only_here(self) -> Iterator[Faults]:
        """Faults made inside the block end with it."""
        try:
            yield self
        finally:
            self.clear()

    # The runtime's side -------------------------------------------------------------------------

    def install(self, stack: ExitStack) -> None:
        global _active
        _active = self
        stack.callback(_deactivate, self)

    def answer(self, service: str, operation: str, params: dict[str, Any]) -> CallFault | None:
        with self._lock:
            for fault in self.calls:
                if fault.matches(service, operation, params):
                    fault.hits += 1
                    return fault
        return None

    def invoke(self, function: str, event: Any, run: Callable[[], Any]) -> Any:
        """Run an invocation, failing it if a fault says so."""
        with self._lock:
            fault = next((f for f in self.invocations if f.applies(function, event)), None)
            if fault is not None:
                fault.done = True
        token = _invoking.set(function)
        try:
            if fault is None:
                return run()
            if fault.after_running:
                run()
            raise InjectedFailure(fault.message)
        finally:
            _invoking.reset(token)


_active: Faults | None = None


def _deactivate(faults: Faults) -> None:
    global _active
    if _active is faults:
        _active = None


def _answer(model: Any, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
    faults = _active
    if faults is None:
        return None
    fault = faults.answer(model.service_model.service_name, model.name, context.get(PARAMS_KEY, {}))
    if fault is None:
        return None
    body = {
        "Error": {"Code": fault.code, "Message": fault.message},
        "ResponseMetadata": {"HTTPStatusCode": fault.status},
    }
    return AWSResponse(
        "https://faults.embedded", fault.status, {}, io.BytesIO(json.dumps(body).encode())
    ), body


# After IAM's hooks (registered when the enforcer was imported): a call IAM denies is denied, not failed.
handlers.BUILTIN_HANDLERS.append(("before-call", _answer))
