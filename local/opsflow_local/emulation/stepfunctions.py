"""Step Functions on moto's executing backend, with Wait and Retry time compressed.

AWS behaviour kept: a Wait state waits its `Seconds`/`SecondsPath`, a Retry waits
IntervalSeconds x BackoffRate^n before attempt n+1, and a Task's `TimeoutSeconds`/`TimeoutSecondsPath`
ends it with States.Timeout (a `.waitForTaskToken` wait no one resumed); here all three are multiplied by
`time_scale`, so a state machine that waits for an hour runs in well under a minute.

StopExecution (API reference) stops any RUNNING execution. moto's worker raises AttributeError when
the stop comes before its thread has begun evaluating the execution (right after StartExecution);
here the stop waits for that moment, as briefly as it takes. A stopped execution is ABORTED: in moto,
a state still evaluating when the stop lands can fail on the stop's half-unwound stack and turn the
execution FAILED; here an error after the stop does not replace it.

Not a behaviour but a cost: moto parses a definition with ANTLR at every CreateStateMachine and
StartExecution (0.3-0.4 s for one of Opsflow's), always the same few texts here. The syntax tree of each
text is kept (a failed parse is not) and turned into fresh evaluation components each time, as before.

An execution invokes its Lambda functions in its state machine's account. moto's executor signs every
integration call with fixed credentials, which moto reads as its default account; here they are the
credentials of the execution's account (`credentials_for`).

SendTaskFailure (API reference) fails the task with the `error` and the `cause` given, and a Catch's
ResultPath receives both (`{"Error", "Cause"}`). moto's response handler drops `cause`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any
from unittest import mock

import boto3
from botocore.config import Config
from moto.core.responses import EmptyResult
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import Timeout, TimeoutSeconds
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.asl.parse import asl_parser
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse


class _ScaledTime:
    """Stands in for the `time` module inside moto's retrier: sleeps are scaled, the rest is real."""

    def __init__(self, scale: float) -> None:
        self._scale = scale

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds * self._scale)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


_TREES: dict[str, Any] = {}
_TREES_LOCK = threading.Lock()


def _parse(definition: str) -> tuple[Any, Any]:
    with _TREES_LOCK:
        tree = _TREES.get(definition)
    if tree is None:
        program, tree = _ORIGINAL_PARSE(definition)
        with _TREES_LOCK:
            _TREES[definition] = tree
        return program, tree
    return Preprocessor().visit(tree), tree


_ORIGINAL_PARSE = asl_parser.AmazonStateLanguageParser.parse
_VALIDATED: set[str] = set()


def _validate_once(definition: str) -> None:
    """CreateStateMachine's validation, once per definition text: every deployment of the template creates the
    same state machines, and building a program to validate one is most of a deployment's time. Executions
    still build their own."""
    with _TREES_LOCK:
        if definition in _VALIDATED:
            return
    _ORIGINAL_VALIDATE(definition)
    with _TREES_LOCK:
        _VALIDATED.add(definition)


_ORIGINAL_VALIDATE = StepFunctionsParserBackend._validate_definition


Credentials = Callable[[str], dict[str, str]]


def install(stack: ExitStack, time_scale: float, credentials_for: Credentials | None = None) -> None:
    original_invoke = lambda_eval_utils._invoke_lambda_function

    def invoke_lambda_function(parameters: dict[str, Any], region: str, state_credentials: Any) -> Any:
        # The function's ARN names its account: the execution's own, for Opsflow's state machines.
        name = str(parameters.get("FunctionName", ""))
        account = name.split(":")[4] if name.startswith("arn:") else None
        given = credentials_for(account) if credentials_for is not None and account else {}
        if not given:
            return original_invoke(parameters=parameters, region=region, state_credentials=state_credentials)
        client = boto3.client(
            service_name="lambda",
            region_name=region,
            aws_access_key_id=given["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=given["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=given.get("AWS_SESSION_TOKEN"),
            # moto's settings for its integration clients.
            config=Config(
                parameter_validation=False,
                retries={"max_attempts": 0, "total_max_attempts": 1},
                connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
            ),
        )
        response = client.invoke(**parameters)
        response["Payload"] = lambda_eval_utils._from_payload(response["Payload"])
        return response

    stack.enter_context(
        mock.patch.object(lambda_eval_utils, "_invoke_lambda_function", invoke_lambda_function)
    )

    def wait_interval(self: WaitFunction, env: Any, wait_seconds: int) -> None:
        # moto's own version re-enters when fewer whole seconds than asked have passed; a scaled wait
        # must not, and an execution being stopped sets the event and ends the wait at once.
        if wait_seconds > 0:
            env.program_state_event.wait(wait_seconds * time_scale)

    original_stop = ExecutionWorker.stop

    def stop(self: ExecutionWorker, *args: Any, **kwargs: Any) -> None:
        deadline = time.monotonic() + 5
        while self.env is None and time.monotonic() < deadline:
            time.sleep(0.005)
        original_stop(self, *args, **kwargs)

    original_set_error = Environment.set_error

    def set_error(self: Environment, error: Any) -> None:
        if isinstance(self._program_state, ProgramStopped):
            return
        original_set_error(self, error)

    def timeout_seconds(self: Timeout, env: Any) -> None:
        # moto waits on these with Event.wait and friends, which take fractions of a second.
        env.stack.append(self._eval_seconds(env=env) * time_scale)

    def send_task_failure(self: StepFunctionResponse) -> Any:
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return EmptyResult()

    stack.enter_context(mock.patch.object(StepFunctionResponse, "send_task_failure", send_task_failure))
    stack.enter_context(
        mock.patch.object(asl_parser.AmazonStateLanguageParser, "parse", staticmethod(_parse))
    )
    stack.enter_context(
        mock.patch.object(StepFunctionsParserBackend, "_validate_definition", staticmethod(_validate_once))
    )
    stack.enter_context(mock.patch.object(Timeout, "_eval_body", timeout_seconds))
    stack.enter_context(mock.patch.object(Environment, "set_error", set_error))
    stack.enter_context(mock.patch.object(WaitFunction, "_wait_interval", wait_interval))
    stack.enter_context(mock.patch.object(ExecutionWorker, "stop", stop))
    stack.enter_context(mock.patch.object(retrier_decl, "time", _ScaledTime(time_scale)))
