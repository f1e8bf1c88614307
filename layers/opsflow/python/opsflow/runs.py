"""Start a run: validate, guard, record, lock, StartExecution. Every trigger ends here."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from opsflow.aws.stepfunctions import Execution
from opsflow.errors import Busy, IdempotencyConflict, Refused
from opsflow.requests import AnyRunRequest, held_while_running, parse_run_request
from opsflow.store.locks import LockStore
from opsflow.store.runs import DRY_RUN, FAILED, RUNNING, SKIPPED, Requester, Run, RunExists, RunStore, now_iso

# Requests without an idempotency key that are identical within this window are the same run:
# a double-clicked button or a retried webhook does not bake twice.
DEDUP_WINDOW_SECONDS = 60


class ExecutionStarter(Protocol):
    def start_execution(self, state_machine_arn: str, name: str, input: str) -> str:
        """Start an execution and return its ARN; starting the same name and input again is a no-op."""

    def find_execution(self, state_machine_arn: str, name: str) -> str | None:
        """The ARN of the execution of that name, if it exists."""


Preflight = Callable[[AnyRunRequest], dict[str, Any]]


@dataclass(frozen=True)
class StartedRun:
    run: Run
    created: bool  # False when an earlier identical request already started it


@dataclass
class RunStarter:
    runs: RunStore
    locks: LockStore
    executions: ExecutionStarter
    preflight: Preflight
    state_machine_arns: Mapping[str, str]
    settings: Mapping[str, Any] = field(default_factory=dict)
    lock_ttl_seconds: int = 6 * 3600
    clock: Callable[[], float] = time.time

    def start(
        self, request: AnyRunRequest, requester: Requester, idempotency_key: str | None = None
    ) -> StartedRun:
        request_json = request.model_dump(mode="json")
        request_hash = _hash(request_json)
        run_id = self.run_id_for(request, requester, request_hash, idempotency_key)

        existing = self.runs.get(run_id)
        if existing is not None:
            return self._replay(existing, request_hash)

        if not request.dry_run:
            # Before the pre-flight: a run of ours on the target explains the target's state better
            # than anything the pre-flight would find (an instance refresh it is driving, say).
            for key in held_while_running(request):
                self._refuse_if_held(key, run_id)
        plan = self.preflight(request)
        stamp = now_iso()
        run = Run(
            run_id=run_id,
            workflow=request.workflow,
            target=request.target(),
            status=DRY_RUN if request.dry_run else RUNNING,
            requester=requester,
            request=request_json,
            request_hash=request_hash,
            created_at=stamp,
            updated_at=stamp,
            plan=plan,
            finished_at=stamp if request.dry_run else None,
        )
        if request.dry_run:
            return self._create(run, request_hash)

        keys = held_while_running(request)
        self._acquire_all(keys, run_id)
        created = False
        try:
            started = self._create(run, request_hash)
            if not started.created:
                return started
            created = True
            execution_arn = self.executions.start_execution(
                self.state_machine_arns[request.workflow],
                run_id,
                json.dumps(
                    {
                        "run_id": run_id,
                        "workflow": request.workflow,
                        "target": run.target,
                        "also_holds": keys[1:],
                        "requester": requester.identity,
                        "request": request_json,
                        "settings": dict(self.settings),
                    }
                ),
            )
        except Exception as error:
            found = self._find_execution(request.workflow, run_id) if created else None
            if found:
                # The start went through; only its answer was lost.
                self.runs.set_execution(run_id, found)
                return StartedRun(run=replace(run, execution_arn=found), created=True)
            for key in keys:
                self.locks.release(key, run_id)
            if created:
                # Never leave a RUNNING record without an execution: a replay would report it as started.
                with contextlib.suppress(Exception):  # the original error is the one to report
                    self.runs.finish(
                        run_id,
                        FAILED,
                        error={
                            "step": "start",
                            "message": f"the run could not start: {error}. Send the request again with a new "
                            "Idempotency-Key to retry.",
                        },
                    )
            raise
        self.runs.set_execution(run_id, execution_arn)
        return StartedRun(run=replace(run, execution_arn=execution_arn), created=True)

    def skip(
        self, request: AnyRunRequest, requester: Requester, reason: str, idempotency_key: str | None = None
    ) -> StartedRun:
        """Record that a trigger decided not to start this run, and why: the audit trail shows every
        scheduled stop, including the ones a holiday or a keep-alive skipped."""
        request_json = request.model_dump(mode="json")
        request_hash = _hash(request_json)
        stamp = now_iso()
        run = Run(
            run_id=self.run_id_for(request, requester, request_hash, idempotency_key),
            workflow=request.workflow,
            target=request.target(),
            status=SKIPPED,
            requester=requester,
            request=request_json,
            request_hash=request_hash,
            created_at=stamp,
            updated_at=stamp,
            finished_at=stamp,
            result={"summary": reason},
        )
        return self._create(run, request_hash)

    def _find_execution(self, workflow: str, run_id: str) -> str | None:
        try:
            return self.executions.find_execution(self.state_machine_arns[workflow], run_id)
        except Exception:  # noqa: BLE001 - unknown is treated as not started
            return None

    def _acquire_all(self, keys: list[str], run_id: str) -> None:
        taken: list[str] = []
        for key in keys:
            held = self.locks.acquire(key, run_id, self.lock_ttl_seconds)
            if held is not None:
                for done in taken:
                    self.locks.release(done, run_id)
                raise _busy(key, held.run_id)
            taken.append(key)

    def _refuse_if_held(self, target: str, run_id: str) -> None:
        held = self.locks.holder(target)
        if held is not None and held.run_id != run_id:
            raise _busy(target, held.run_id)

    def run_id_for(
        self, request: AnyRunRequest, requester: Requester, request_hash: str, idempotency_key: str | None
    ) -> str:
        if idempotency_key:
            seed = f"{requester.identity}|key|{idempotency_key}"
        else:
            bucket = int(self.clock()) // DEDUP_WINDOW_SECONDS
            seed = f"{requester.identity}|{request_hash}|{bucket}"
        # Execution names allow 80 characters of [A-Za-z0-9-_].
        return f"{request.workflow.replace('_', '-')}-{hashlib.sha256(seed.encode()).hexdigest()[:24]}"

    def _create(self, run: Run, request_hash: str) -> StartedRun:
        try:
            self.runs.create(run)
        except RunExists as exists:
            return self._replay(exists.existing, request_hash)
        return StartedRun(run=run, created=True)

    @staticmethod
    def _replay(existing: Run, request_hash: str) -> StartedRun:
        if existing.request_hash != request_hash:
            raise IdempotencyConflict(
                f"this Idempotency-Key was already used for a different request (run {existing.run_id}); "
                "use a new key for a new request"
            )
        return StartedRun(run=existing, created=False)


def _hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _busy(target: str, holder: str) -> Busy:
    return Busy(
        f"{_describe_target(target)} is busy with run {holder}; wait for it to finish (GET /runs/{holder})"
    )


def _describe_target(target: str) -> str:
    kind, _, name = target.partition(":")
    return {"asg": "Auto Scaling group", "env": "environment", "ecs": "ECS service"}.get(
        kind, kind
    ) + f" {name}"


def run_view(run: Run, execution: Execution | None = None) -> dict[str, Any]:
    """A run as the API shows it. A run whose record says RUNNING but whose execution has ended
    without reaching its finish step (aborted, timed out) takes the execution's status."""
    view = run.as_dict()
    if execution is not None and run.status == RUNNING and execution.status != RUNNING:
        view["status"] = execution.status
        view["error"] = view["error"] or {"error": execution.error, "message": execution.cause}
    view["output"] = (
        view["result"] if view["status"] in (RUNNING, DRY_RUN, SKIPPED, "SUCCEEDED") else view["error"]
    )
    return view


PutBack = Callable[[Run], dict[str, Any] | None]


def settle_ended_run(
    run_id: str,
    status: str,
    cause: str | None,
    runs: RunStore,
    locks: LockStore,
    put_back: PutBack | None = None,
) -> bool:
    """An execution that ended without reaching its finish step (aborted, timed out, failed outside a
    Catch) leaves a RUNNING record and a held lock: record how it ended and free the target.
    `put_back` undoes what a workflow must never leave half-done (a blue/green deploy's traffic) and says
    what it did. Returns whether there was anything to settle."""
    run = runs.get(run_id)
    if run is None or run.status != RUNNING:
        return False
    message = cause or f"the execution ended {status} before the run could record its outcome"
    error: dict[str, Any] = {
        "step": "unknown",
        "message": message,
        "rollback": {"undone": [], "problems": ["nothing was rolled back: check the target"]},
    }
    # Recorded first, and only over RUNNING (a finish step that got there first has the last word): a step
    # still in flight reads the run and puts back what it was doing.
    if not runs.finish(run_id, status, error=error, if_status=RUNNING):
        return False
    if put_back is not None:
        # Read again: a step may have claimed the run (a mark) just before it ended.
        ended = runs.get(run_id) or run
        try:
            done = put_back(ended)
        except Exception as failure:  # noqa: BLE001 - recorded for people; the lock must still be freed
            done = {"undone": [], "problems": [f"putting things back: {failure}"], "summary": "not put back"}
        if done is not None:
            error = {
                **error,
                "message": f"{message}. Then: {done.get('summary', 'done')}",
                "rollback": {"undone": done.get("undone", []), "problems": done.get("problems", [])},
                "live": done.get("live"),
            }
            runs.finish(run_id, status, error=error, if_status=status)
    for key in _held_by(run):
        locks.release(key, run_id)
    return True


def _held_by(run: Run) -> list[str]:
    try:
        return held_while_running(parse_run_request(run.request, strict=False))
    except ValueError:  # a record older than its request model: at least the target
        return [run.target]


def run_summary(run: Run) -> dict[str, Any]:
    """One line of `GET /runs`: who asked for what, how it ended, and why in one sentence."""
    outcome = run.result if run.status in (SKIPPED, DRY_RUN, "SUCCEEDED") else run.error
    return {
        "run_id": run.run_id,
        "workflow": run.workflow,
        "target": run.target,
        "status": run.status,
        "requester": run.requester.as_dict(),
        "created_at": run.created_at,
        "finished_at": run.finished_at,
        "summary": (outcome or {}).get("summary") or (outcome or {}).get("message"),
    }


class Aborter(Protocol):
    def stop(self, execution_arn: str, cause: str) -> None: ...


def abort_run(run: Run, executions: Aborter, by: Requester) -> None:
    """Stop a running run's execution at once. The execution's end event records the run ABORTED, puts a
    blue/green deploy's traffic back on blue and frees its target (functions/run_ended)."""
    if run.status != RUNNING or not run.execution_arn:
        raise Refused(f"run {run.run_id} is {run.status}, not running: there is nothing to abort")
    executions.stop(run.execution_arn, f"aborted by {by.identity}")
