"""Step Functions: StopExecution leaves an execution ABORTED (API reference, StopExecution), even when a
state that was still evaluating fails after the stop."""

from __future__ import annotations

import threading
from contextlib import ExitStack
from datetime import UTC, datetime

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
