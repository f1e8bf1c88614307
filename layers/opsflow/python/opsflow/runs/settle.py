"""Settle a run whose execution ended without reaching its finish step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opsflow.runs.requests import parse_run_request
from opsflow.store.locks import LockStore
from opsflow.store.runs import RUNNING, Run, RunStore

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
        return [
            target.key for target in parse_run_request(run.request, strict=False, people_only=False).holds()
        ]
    except ValueError:  # a record older than its request model: at least the target
        return [run.target]
