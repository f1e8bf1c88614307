"""What every steps Lambda shares: dispatch on `step`, record each outcome, finish the run."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from opsflow.aws import clients
from opsflow.errors import AwsCallFailed, LockLost
from opsflow.runs.config import StepsConfig
from opsflow.store.locks import DynamoLockStore, LockStore
from opsflow.store.runs import FAILED, SUCCEEDED, DynamoRunStore, RunStore, StepOutcome, now_iso

Step = Callable[[dict[str, Any]], dict[str, Any]]


class UnknownStep(ValueError):
    pass


@dataclass
class StepRunner:
    """Runs one step for the state machine and returns the execution state with the step's result
    under the event's `result_key` (the state machine selects it with `OutputPath: $.Payload`).

    Three optional keys of a step's result shape the audit record and are not kept: `summary` (one
    line for people), `waiting` (true while a polling loop goes round) and `milestones` (lines worth
    their own entry, such as a checkpoint reached)."""

    steps: Mapping[str, Step]
    runs: RunStore
    # With a lock store, every step first renews the run's lock on its target, so a run that outlives
    # the lock's TTL keeps it, and a run that lost it (its TTL expired, another run took the target)
    # stops instead of acting on a target someone else now holds.
    locks: LockStore | None = None
    lock_ttl_seconds: int = 6 * 3600
    # Steps that write the run's final record themselves; recording them as steps would add nothing.
    bookkeeping: frozenset[str] = frozenset({"finish", "finish_failed"})

    def __call__(self, event: Mapping[str, Any]) -> dict[str, Any]:
        step = str(event.get("step", ""))
        state = dict(event.get("state") or {})
        handler = self.steps.get(step)
        if handler is None:
            raise UnknownStep(f"unknown step {step!r}; known: {', '.join(sorted(self.steps))}")
        try:
            self._renew_lock(step, state)
            result = handler(state)
        except Exception as error:
            self._record(state, StepOutcome(step, "failed", now_iso(), f"{type(error).__name__}: {error}"))
            raise
        summary = str(result.pop("summary", ""))
        status = "waiting" if result.pop("waiting", False) else "succeeded"
        for milestone in result.pop("milestones", []):
            self._record(state, StepOutcome(step, "milestone", now_iso(), str(milestone)))
        self._record(state, StepOutcome(step, status, now_iso(), summary))
        return {**state, str(event.get("result_key") or step): result}

    def _renew_lock(self, step: str, state: Mapping[str, Any]) -> None:
        if self.locks is None or step in self.bookkeeping or step == "rollback":
            return
        run_id, target = state.get("run_id"), state.get("target")
        if not run_id or not target:
            return
        for key in held_keys(state):
            try:
                held = self.locks.acquire(key, str(run_id), self.lock_ttl_seconds)
            except AwsCallFailed:
                # A throttled renewal is no reason to stop a healthy run: the lock still has hours to go,
                # and the next step renews it.
                continue
            if held is not None:
                raise LockLost(
                    f"this run lost its lock on {key} to run {held.run_id}; stopping rather than act on it"
                )

    def _record(self, state: Mapping[str, Any], outcome: StepOutcome) -> None:
        run_id = state.get("run_id")
        if run_id and outcome.step not in self.bookkeeping:
            self.runs.record_step(str(run_id), outcome)


def held_keys(state: Mapping[str, Any]) -> list[str]:
    """The run's target, and what else it locks (a blue/green deploy's listener)."""
    return [str(state["target"]), *(str(key) for key in state.get("also_holds") or [])]


def release_all(state: Mapping[str, Any], locks: LockStore) -> None:
    for key in held_keys(state):
        locks.release(key, state["run_id"])


def finish_succeeded(
    state: Mapping[str, Any], result: dict[str, Any], runs: RunStore, locks: LockStore
) -> dict[str, Any]:
    # The lock first: a run whose record could not be written must still free its target.
    release_all(state, locks)
    runs.finish(state["run_id"], SUCCEEDED, result=result)
    return result


def finish_failed(
    state: Mapping[str, Any], error: dict[str, Any], runs: RunStore, locks: LockStore
) -> dict[str, Any]:
    release_all(state, locks)
    runs.finish(state["run_id"], FAILED, error=error)
    return error


def describe_failure(error: dict[str, Any] | None) -> str:
    """Step Functions hands a Catch `{Error, Cause}`; for a Lambda error Cause is JSON with errorMessage."""
    if not error:
        return "unknown error"
    cause = error.get("Cause") or ""
    try:
        parsed = json.loads(cause)
        message = parsed.get("errorMessage") or cause
    except (ValueError, AttributeError):
        message = cause
    name = error.get("Error") or "Error"
    return f"{name}: {message}" if message else name


Finish = Callable[[dict[str, Any], RunStore, LockStore], dict[str, Any]]


def steps_runner(
    config: StepsConfig,
    steps: dict[str, Step],
    result_of: Callable[[dict[str, Any]], dict[str, Any]],
    error_of: Callable[[dict[str, Any]], dict[str, Any]],
    finish: Finish | None = None,
) -> StepRunner:
    """A workflow's steps, plus the finish steps every state machine ends with. `finish` replaces the
    default finish step, for a workflow whose last step decides between success and failure."""
    runs = DynamoRunStore(clients.client("dynamodb"), config.runs_table)
    locks = DynamoLockStore(clients.client("dynamodb"), config.locks_table)
    steps = {
        **steps,
        "finish": (
            (lambda state: finish(state, runs, locks))
            if finish is not None
            else (lambda state: finish_succeeded(state, result_of(state), runs, locks))
        ),
        "finish_failed": lambda state: finish_failed(state, error_of(state), runs, locks),
    }
    return StepRunner(steps=steps, runs=runs, locks=locks, lock_ttl_seconds=config.lock_ttl_seconds)
