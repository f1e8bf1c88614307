"""A run as people read it: the API's view of one run, a line of the list, and aborting one."""

from __future__ import annotations

from typing import Any, Protocol

from opsflow.aws.stepfunctions import Execution
from opsflow.errors import Refused
from opsflow.store.runs import DRY_RUN, RUNNING, SKIPPED, Requester, Run


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
