"""Step Functions: StopExecution leaves an execution ABORTED (API reference, StopExecution), even when a
state that was still evaluating fails after the stop; task-token waits time out on the scaled clock and
SendTaskFailure's cause reaches the Catch."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import boto3
from moto import mock_aws
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.program_state import ProgramError, ProgramRunning, ProgramStopped

from opsflow_local.emulation import stepfunctions


def running_environment() -> Environment:
    # Only what set_stop and set_error touch: the program state, its lock, its event and its frames.
    env = Environment.__new__(Environment)
    env._state_mutex = threading.RLock()
    env._program_state = ProgramRunning()
    env._frames = []
    env.program_state_event = threading.Event()
    return env


def test_an_error_after_the_stop_leaves_the_execution_stopped() -> None:
    with ExitStack() as stack:
        stepfunctions.install(stack, time_scale=0.01)
        env = running_environment()
        env.set_stop(stop_date=datetime.now(UTC), cause="aborted", error=None)
        env.set_error(error={"error": "KeyError", "cause": "half-unwound stack"})
        assert isinstance(env.program_state(), ProgramStopped)


def test_an_error_of_a_running_execution_still_fails_it() -> None:
    with ExitStack() as stack:
        stepfunctions.install(stack, time_scale=0.01)
        env = running_environment()
        env.set_error(error={"error": "States.TaskFailed", "cause": "boom"})
        assert isinstance(env.program_state(), ProgramError)


# Task tokens (Step Functions Developer Guide, "Wait for a Callback with Task Token"; API reference,
# SendTaskFailure): a wait's TimeoutSeconds ends it with States.Timeout, and a Catch receives the error and
# the cause SendTaskFailure gave.
CALLBACK = {
    "StartAt": "Wait",
    "States": {
        "Wait": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"QueueUrl.$": "$.queue", "MessageBody": {"token.$": "$$.Task.Token"}},
            "TimeoutSeconds": 300,
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}],
            "End": True,
        },
        "Caught": {"Type": "Pass", "End": True},
    },
}


def run_callback(resume: Callable[[Any, str], None] | None) -> dict[str, Any]:
    with ExitStack() as stack:
        stepfunctions.install(stack, time_scale=0.001)
        stack.enter_context(mock_aws(config={"stepfunctions": {"execute_state_machine": True}}))
        sqs, sfn = boto3.client("sqs", "us-east-1"), boto3.client("stepfunctions", "us-east-1")
        queue = sqs.create_queue(QueueName="tokens")["QueueUrl"]
        machine = sfn.create_state_machine(
            name="callback", definition=json.dumps(CALLBACK), roleArn="arn:aws:iam::123456789012:role/sfn"
        )["stateMachineArn"]
        started = time.monotonic()
        execution = sfn.start_execution(
            stateMachineArn=machine, name="one", input=json.dumps({"queue": queue})
        )
        if resume is not None:
            message = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2)["Messages"][0]
            resume(sfn, json.loads(message["Body"])["token"])
        while (described := sfn.describe_execution(executionArn=execution["executionArn"]))[
            "status"
        ] == "RUNNING":
            time.sleep(0.01)
        return {"output": json.loads(described["output"]), "seconds": time.monotonic() - started}


def test_a_wait_no_one_resumes_ends_with_states_timeout_after_its_scaled_timeout() -> None:
    ended = run_callback(None)
    assert ended["output"]["error"]["Error"] == "States.Timeout"
    assert ended["seconds"] < 3, "300 s at a time scale of 0.001"


def test_send_task_failure_hands_the_catch_its_error_and_cause() -> None:
    ended = run_callback(
        lambda sfn, token: sfn.send_task_failure(
            taskToken=token, error="AlarmFired", cause="alarm web-5xx went to ALARM"
        )
    )
    assert ended["output"]["error"] == {"Error": "AlarmFired", "Cause": "alarm web-5xx went to ALARM"}
