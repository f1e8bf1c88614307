"""POST /runs, GET /runs, GET /runs/{run_id} and POST /runs/{run_id}/abort."""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated, Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from opsflow.aws import clients
from opsflow.aws.stepfunctions import StepFunctions
from opsflow.errors import NotFound
from opsflow.runs import registry
from opsflow.runs.view import abort_run, run_summary, run_view
from opsflow.runs.wiring import default_config, default_starter
from opsflow.store.runs import DRY_RUN
from opsflow.triggers.api.routing import new_router, requester

if TYPE_CHECKING:
    from opsflow.runs.requests import RunRequest as RunRequestBody

    WorkflowName = str
else:
    # Every workflow's request model, told apart by `workflow`, and every workflow's name: from the registry.
    RunRequestBody = registry.request_union()
    WorkflowName = Literal[registry.names()]

logger = Logger(service="opsflow-api", child=True)
router = new_router()


@router.post("/runs")
def create_run(run_request: Annotated[RunRequestBody, Body()]) -> Response[dict[str, Any]]:
    key = router.current_event.headers.get("Idempotency-Key")
    started = default_starter().start(run_request, requester(router), key)
    run = started.run
    body: dict[str, Any] = {
        "run_id": run.run_id,
        "workflow": run.workflow,
        "target": run.target,
        "status": run.status,
        "execution_arn": run.execution_arn,
        "plan": run.plan,
        "links": {"run": f"/runs/{run.run_id}"},
    }
    if run.status == DRY_RUN:
        body["message"] = "Dry run: nothing was changed. The plan lists what a real run would do."
        status = HTTPStatus.OK
    elif not started.created:
        body["message"] = (
            f"This request was already made: run {run.run_id} is {run.status}. Follow it at GET /runs/{run.run_id}."
        )
        status = HTTPStatus.ACCEPTED if run.status == "RUNNING" else HTTPStatus.OK
    else:
        body["message"] = f"Run {run.run_id} started; follow it at GET /runs/{run.run_id}."
        status = HTTPStatus.ACCEPTED
    headers = {} if started.created else {"Idempotent-Replayed": "true"}
    logger.info(
        "run accepted", extra={"run_id": run.run_id, "created": started.created, "status": run.status}
    )
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers
    )


@router.get("/runs/<run_id>")
def get_run(run_id: str) -> dict[str, Any]:
    run = default_config().run_store().get(run_id)
    if run is None:
        raise NotFound(f"no run {run_id}")
    execution = (
        StepFunctions(clients.client("stepfunctions")).describe(run.execution_arn)
        if run.execution_arn
        else None
    )
    return run_view(run, execution)


@router.get("/runs")
def list_runs(
    target: Annotated[
        str | None, Query(description="Only runs of this target, e.g. asg:web or env:qa.", max_length=300)
    ] = None,
    workflow: Annotated[WorkflowName | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    """The newest runs first: who asked for what, when, and how it ended."""
    found = default_config().run_store().recent(target=target, workflow=workflow, limit=limit)
    return {"runs": [run_summary(run) for run in found], "count": len(found)}


@router.post("/runs/<run_id>/abort")
def abort(run_id: str) -> Response[dict[str, Any]]:
    """Stop a running run at once; its record says ABORTED and its target is freed."""
    run = default_config().run_store().get(run_id)
    if run is None:
        raise NotFound(f"no run {run_id}")
    by = requester(router)
    abort_run(run, StepFunctions(clients.client("stepfunctions")), by)
    logger.info("run aborted", extra={"run_id": run_id, "by": by.identity})
    return Response(
        status_code=HTTPStatus.ACCEPTED,
        content_type=content_types.APPLICATION_JSON,
        body={
            "run_id": run_id,
            "status": "ABORTING",
            "message": f"Run {run_id} is being stopped; GET /runs/{run_id} shows it ABORTED in a moment.",
        },
    )
