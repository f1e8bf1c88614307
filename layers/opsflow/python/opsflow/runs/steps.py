"""What every steps Lambda shares: dispatch on `step`, record each outcome, finish the run."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from opsflow.aws import clients
from opsflow.aws.stepfunctions import TaskTokens
from opsflow.aws.target import Target
from opsflow.errors import AwsCallFailed, AwsTransient, LockLost, TransientRetriesExhausted
from opsflow.runs.config import StepsConfig
from opsflow.store.locks import DynamoLockStore, LockStore
from opsflow.store.runs import FAILED, SUCCEEDED, DynamoRunStore, RunStore, StepOutcome, now_iso
from opsflow.store.waiters import DynamoWaiterStore, Waiter, WaiterStore
from opsflow.waits.awaiting import TOKEN_MARGIN_SECONDS, Await, reconcile_seconds
from opsflow.waits.resume import Tokens


class StepResult(BaseModel):
    """A step's result, kept in the execution's state under the step's `result_key`. Three fields shape the
    audit record and are not kept: `summary` (one line for people), `waiting` (true while a polling loop goes
    round) and `milestones` (lines worth their own entry, such as a checkpoint reached)."""

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(default="", exclude=True)
    waiting: bool = Field(default=False, exclude=True)
    milestones: list[str] = Field(default_factory=list, exclude=True)


class CaughtError(BaseModel):
    """What a state machine's Catch puts at `$.error`."""

    model_config = ConfigDict(populate_by_name=True)

    error: str = Field(default="", alias="Error")
    cause: str = Field(default="", alias="Cause")

    @field_validator("cause", mode="before")
    @classmethod
    def _no_cause(cls, value: object) -> object:
        # SendTaskFailure may give none: the Catch then carries a null Cause.
        return "" if value is None else value

    def describe(self) -> str:
        return describe_failure(self.model_dump(by_alias=True))


class RunState(BaseModel):
    """What every execution carries: its start input (`runs/start.py`), the error a Catch adds and the step
    that failed. Each workflow's state model extends it with its steps' results; fields it does not model
    pass through the runner untouched."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    run_id: str
    workflow: str
    target: str
    also_holds: list[str] = Field(default_factory=list)
    requester: str = ""
    request: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, int] = Field(default_factory=dict)
    error: CaughtError | None = None
    failed_step: str | None = None
    # How the last wait on an event ended: what the resume function sent, or the States.Timeout a Catch put
    # here when no event came within the reconcile interval.
    wake: dict[str, Any] | None = None

    @property
    def acted_on(self) -> Target:
        """The run's target: its steps act in its account and region."""
        return Target.from_key(self.target)

    @property
    def woken_by_timeout(self) -> bool:
        return bool(self.wake) and (self.wake or {}).get("Error") == "States.Timeout"


Step = Callable[[Any], "StepResult | dict[str, Any]"]
StepTable = Mapping[str, "Step | Await"]
# A workflow's steps for one execution state: built per invocation from the account and region its target is
# in, so a run in another account gets adapters whose clients are that account's.
StepTableFor = Callable[[Mapping[str, Any]], StepTable]

# Steps that run after a Catch: they are told which step failed, from the run record.
AFTER_FAILURE = frozenset({"rollback", "await_refresh_rollback", "finish_failed", "place_failed"})
# Putting things back matters more than going forward: those steps ride out a throttle this much longer.
AFTER_FAILURE_RETRY_FACTOR = 3


class UnknownStep(ValueError):
    pass


@dataclass
class StepRunner:
    """Runs one step for the state machine and returns the execution state with the step's result
    under the event's `result_key` (the state machine selects it with `OutputPath: $.Payload`).

    With a `state_model`, each step receives the state validated into it and returns a `StepResult`, dumped
    back as JSON; without one, steps take and return dicts, whose `summary`, `waiting` and `milestones` keys
    are taken out as a `StepResult`'s are."""

    steps: StepTable | StepTableFor
    runs: RunStore
    # With a lock store, every step first renews the run's lock on its target, so a run that outlives
    # the lock's TTL keeps it, and a run that lost it (its TTL expired, another run took the target)
    # stops instead of acting on a target someone else now holds.
    locks: LockStore | None = None
    lock_ttl_seconds: int = 6 * 3600
    # Steps that write the run's final record themselves; recording them as steps would add nothing.
    bookkeeping: frozenset[str] = frozenset({"finish", "finish_failed"})
    state_model: type[RunState] | None = None
    # How long a step that keeps failing with AwsTransient is handed back to the state machine's retrier
    # before it fails for good (TransientRetriesExhausted, which no retrier matches).
    transient_retry_seconds: int = 300
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # For the steps that wait on an event (`Await`): where their task tokens go, and how a wait that is
    # over by the time its token is recorded is ended.
    waiters: WaiterStore | None = None
    tokens: Tokens | None = None

    def __call__(self, event: Mapping[str, Any]) -> dict[str, Any]:
        step = str(event.get("step", ""))
        state = dict(event.get("state") or {})
        with clients.acting_for(str(state.get("run_id") or "")):
            return self._run(step, state, event)

    def _run(self, step: str, state: dict[str, Any], event: Mapping[str, Any]) -> dict[str, Any]:
        steps = self.table(state)
        handler = steps.get(step)
        if handler is None:
            raise UnknownStep(f"unknown step {step!r}; known: {', '.join(sorted(steps))}")
        if step in AFTER_FAILURE and not state.get("failed_step"):
            state["failed_step"] = self._failed_step(state)
        try:
            self._renew_lock(step, state)
            typed = self.state_model.model_validate(state, strict=False) if self.state_model else state
            if isinstance(handler, Await):
                self._await(step, handler, typed, state, str(event.get("task_token") or ""))
                return state
            result = handler(typed)
        except AwsTransient as error:
            raise self._retry_or_give_up(step, state, error) from error
        except Exception as error:
            self._record(state, StepOutcome(step, "failed", now_iso(), f"{type(error).__name__}: {error}"))
            raise
        if isinstance(result, StepResult):
            summary, waiting, milestones = result.summary, result.waiting, result.milestones
            kept = result.model_dump(mode="json")
        else:
            summary = str(result.pop("summary", ""))
            waiting = bool(result.pop("waiting", False))
            milestones = list(result.pop("milestones", []))
            kept = result
        for milestone in milestones:
            self._record(state, StepOutcome(step, "milestone", now_iso(), str(milestone)))
        self._record(state, StepOutcome(step, "waiting" if waiting else "succeeded", now_iso(), summary))
        return {**state, str(event.get("result_key") or step): kept}

    def table(self, state: Mapping[str, Any]) -> StepTable:
        """The steps for this execution state."""
        return self.steps(state) if callable(self.steps) else self.steps

    def _await(self, step: str, wait: Await, typed: Any, state: Mapping[str, Any], token: str) -> None:
        """Record the token under each awaited thing, then look once. The wait is recorded by the step that
        checks after it, not here: a wait that events end after one look adds nothing to the audit record."""
        if not token or self.waiters is None or self.tokens is None:
            raise ValueError(
                f"{step} waits on an event: the state machine must invoke it with .waitForTaskToken and "
                "pass task_token.$: $$.Task.Token, and the runner needs a waiter store and task tokens"
            )
        expires = (
            int(self.now().timestamp())
            + reconcile_seconds(state.get("settings") or {})
            + TOKEN_MARGIN_SECONDS
        )
        waiters = [Waiter(t.key, str(state["run_id"]), step, token, expires) for t in wait.awaited(typed)]
        for waiter in waiters:
            self.waiters.register(waiter)
        failure = self._failure_now(wait, typed)
        if failure is not None:
            error, cause = failure
            # Recorded first: once the token is failed, the rollback may be reading the record.
            self._record(state, StepOutcome(step, "failed", now_iso(), f"{error}: {cause}"))
            if not self.tokens.fail(token, error, cause):
                self._record(
                    state, StepOutcome(step, "milestone", now_iso(), "(the event had ended the wait already)")
                )
            for waiter in waiters:
                self.waiters.forget(waiter)
            return
        try:
            ready = wait.ready(typed)
        except Exception:  # noqa: BLE001 - the step after the wait meets the error and handles it
            ready = True
        if ready:
            self.tokens.succeed(token, json.dumps({"by": step, "what": "ready when the wait began"}))
            for waiter in waiters:
                self.waiters.forget(waiter)

    @staticmethod
    def _failure_now(wait: Await, typed: Any) -> tuple[str, str] | None:
        if wait.fails is None:
            return None
        try:
            return wait.fails(typed)
        except Exception:  # noqa: BLE001 - a look that fails fails nothing: the wait goes on, its end looks again
            return None

    def _retry_or_give_up(self, step: str, state: Mapping[str, Any], error: AwsTransient) -> AwsCallFailed:
        """The error to raise for a transient failure: itself, for the state machine to retry, while the
        step's streak of transient failures is within its budget; past it, one that fails the run."""
        budget = self.transient_retry_seconds * (AFTER_FAILURE_RETRY_FACTOR if step in AFTER_FAILURE else 1)
        now = self.now()
        since = self._retrying_since(state, step)
        elapsed = (now - since).total_seconds() if since else 0.0
        stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if elapsed < budget:
            self._record(state, StepOutcome(step, "retrying", stamp, f"{error}; retrying"))
            return error
        exhausted = TransientRetriesExhausted(
            error.operation,
            error.aws_code,
            f"{error.aws_message} (still failing after {elapsed:.0f} s of retries)",
        )
        self._record(state, StepOutcome(step, "failed", stamp, f"{type(exhausted).__name__}: {exhausted}"))
        return exhausted

    def _retrying_since(self, state: Mapping[str, Any], step: str) -> datetime | None:
        """When the step's current streak of transient failures began, from the run record."""
        run = self.runs.get(str(state.get("run_id", ""))) if state.get("run_id") else None
        since = None
        for outcome in reversed(run.steps if run else ()):
            if outcome.step != step or outcome.status != "retrying":
                break
            since = datetime.fromisoformat(outcome.at)
        return since

    def _failed_step(self, state: Mapping[str, Any]) -> str:
        """The step whose failure the Catch caught: the last one the run record saw fail. A step that never
        reached the runner (its Lambda timed out, say) left no record: then it is named by the last step
        that ran."""
        run = self.runs.get(str(state.get("run_id", ""))) if state.get("run_id") else None
        if run is None:
            return "unknown"
        # A rollback that failed once and is retried is not the step that failed.
        steps = [outcome for outcome in run.steps if outcome.step not in AFTER_FAILURE]
        for outcome in reversed(steps):
            # A step whose retries ran out in the state machine's retrier was last recorded as retrying.
            if outcome.status in ("failed", "retrying"):
                return outcome.step
        ran = [outcome.step for outcome in steps if outcome.status != "milestone"]
        return f"unknown (after {ran[-1]})" if ran else "unknown"

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


AnyState = RunState | Mapping[str, Any]


def _plain(state: AnyState) -> Mapping[str, Any]:
    return state.model_dump(mode="json") if isinstance(state, RunState) else state


def acted_on(state: AnyState) -> Target:
    """The run's target, from an execution state or its model: its steps act in its account and region, or in
    the `place` a Map iteration of a run over several gives them."""
    plain = _plain(state)
    target = Target.from_key(str(plain["target"]))
    place = plain.get("place")
    if isinstance(place, Mapping):
        return Target(target.kind, target.name, place.get("account"), place.get("region"))
    return target


def held_keys(state: AnyState) -> list[str]:
    """The run's target, and what else it locks (a blue/green deploy's listener)."""
    plain = _plain(state)
    return [str(plain["target"]), *(str(key) for key in plain.get("also_holds") or [])]


def release_all(state: AnyState, locks: LockStore) -> None:
    run_id = str(_plain(state)["run_id"])
    for key in held_keys(state):
        locks.release(key, run_id)


def finish_succeeded(
    state: AnyState, result: dict[str, Any], runs: RunStore, locks: LockStore
) -> dict[str, Any]:
    # The lock first: a run whose record could not be written must still free its target.
    release_all(state, locks)
    runs.finish(str(_plain(state)["run_id"]), SUCCEEDED, result=result)
    return result


def finish_failed(state: AnyState, error: dict[str, Any], runs: RunStore, locks: LockStore) -> dict[str, Any]:
    release_all(state, locks)
    runs.finish(str(_plain(state)["run_id"]), FAILED, error=error)
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


Finish = Callable[[Any, RunStore, LockStore], dict[str, Any]]


def steps_runner(
    config: StepsConfig,
    steps: StepTable | StepTableFor,
    run_result: Callable[[Any], dict[str, Any]],
    run_error: Callable[[Any], dict[str, Any]],
    finish: Finish | None = None,
    state_model: type[RunState] | None = None,
) -> StepRunner:
    """A workflow's steps, plus the finish steps every state machine ends with. `finish` replaces the
    default finish step, for a workflow whose last step decides between success and failure."""
    runs = DynamoRunStore(clients.client("dynamodb"), config.runs_table)
    locks = DynamoLockStore(clients.client("dynamodb"), config.locks_table)
    waiters = (
        DynamoWaiterStore(clients.client("dynamodb"), config.waiters_table) if config.waiters_table else None
    )
    finishing: StepTable = {
        "finish": (
            (lambda state: finish(state, runs, locks))
            if finish is not None
            else (lambda state: finish_succeeded(state, run_result(state), runs, locks))
        ),
        "finish_failed": lambda state: finish_failed(state, run_error(state), runs, locks),
    }

    def table(state: Mapping[str, Any]) -> StepTable:
        return {**(steps(state) if callable(steps) else steps), **finishing}

    return StepRunner(
        steps=table,
        runs=runs,
        locks=locks,
        lock_ttl_seconds=config.lock_ttl_seconds,
        state_model=state_model,
        transient_retry_seconds=config.transient_retry_seconds,
        waiters=waiters,
        tokens=TaskTokens(clients.client("stepfunctions")) if waiters else None,
    )
