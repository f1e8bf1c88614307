"""Start a run: validate, guard, record, lock, StartExecution. Every trigger ends here."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from opsflow.aws import clients
from opsflow.aws.target import Target
from opsflow.errors import Busy, IdempotencyConflict
from opsflow.runs.requests import RunRequest
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


Preflight = Callable[[RunRequest], dict[str, Any]]
# Raises unless a run may act where the target is (its account registered, its spoke role assumable).
ReachCheck = Callable[[Target, str, bool], None]


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
    # The hub's account and region: a request that names them is the same as one that does not.
    home: tuple[str, str] | None = None
    reach: ReachCheck | None = None

    def start(
        self, request: RunRequest, requester: Requester, idempotency_key: str | None = None
    ) -> StartedRun:
        if self.home is not None:
            request = request.at_home(*self.home)
        request_json = request.model_dump(mode="json")
        request_hash = _hash(request_json)
        run_id = self.run_id_for(request, requester, request_hash, idempotency_key)

        existing = self.runs.get(run_id)
        if existing is not None:
            return self._replay(existing, request_hash)

        with clients.acting_for(run_id):
            if self.reach is not None:
                places = request.places()
                # One place must answer now; of several, one that does not is named in the run's outcome.
                for place in places:
                    self.reach(place, run_id, len(places) == 1)
            if not request.dry_run:
                # Before the pre-flight: a run of ours on the target explains the target's state better
                # than anything the pre-flight would find (an instance refresh it is driving, say).
                for target in request.holds():
                    self._refuse_if_held(target.key, run_id)
            plan = self.preflight(request)
        stamp = now_iso()
        run = Run(
            run_id=run_id,
            workflow=request.workflow,
            target=request.target().key,
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

        keys = [target.key for target in request.holds()]
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
        self, request: RunRequest, requester: Requester, reason: str, idempotency_key: str | None = None
    ) -> StartedRun:
        """Record that a trigger decided not to start this run, and why: the audit trail shows every
        scheduled stop, including the ones a holiday or a keep-alive skipped."""
        request_json = request.model_dump(mode="json")
        request_hash = _hash(request_json)
        stamp = now_iso()
        run = Run(
            run_id=self.run_id_for(request, requester, request_hash, idempotency_key),
            workflow=request.workflow,
            target=request.target().key,
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
        self, request: RunRequest, requester: Requester, request_hash: str, idempotency_key: str | None
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


def _busy(key: str, holder: str) -> Busy:
    return Busy(
        f"{Target.from_key(key).describe()} is busy with run {holder}; wait for it to finish (GET /runs/{holder})"
    )
