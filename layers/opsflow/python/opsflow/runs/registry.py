"""Every workflow Opsflow runs, registered once. Adding a workflow is: its package under
`opsflow/workflows/`, its ASL file, one line here, and its template resources."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from opsflow.errors import NotFound
from opsflow.runs.requests import RunRequest
from opsflow.runs.workflow import Workflow
from opsflow.workflows import (
    ami_bake,
    ami_lifecycle,
    asg_refresh,
    dns_shift,
    ecs_blue_green,
    env_power,
    remediate,
)

WORKFLOWS: dict[str, Workflow] = {
    workflow.name: workflow
    for workflow in (
        ami_bake.WORKFLOW,
        asg_refresh.WORKFLOW,
        env_power.WORKFLOW,
        ecs_blue_green.WORKFLOW,
        dns_shift.WORKFLOW,
        ami_lifecycle.WORKFLOW,
        remediate.WORKFLOW,
    )
}


def names(people_only: bool = False) -> tuple[str, ...]:
    """Every workflow's name; with `people_only`, those a person or a pipeline may ask for."""
    return tuple(name for name, workflow in WORKFLOWS.items() if workflow.asked_by_people or not people_only)


def get(name: str) -> Workflow:
    try:
        return WORKFLOWS[name]
    except KeyError:
        raise NotFound(f"no workflow {name!r}; known: {', '.join(WORKFLOWS)}") from None


def workflow_of(request: RunRequest) -> Workflow:
    return get(request.workflow)


def request_union(people_only: bool = True) -> Any:
    """Every workflow's request model, told apart by `workflow`: the body `POST /runs` takes. Without
    `people_only`, also the requests only Opsflow writes (a remediation its rule's guard let act)."""
    models = tuple(w.request for w in WORKFLOWS.values() if w.asked_by_people or not people_only)
    union = models[0]
    for model in models[1:]:
        union = union | model  # type: ignore[assignment]
    return Annotated[union, Field(discriminator="workflow")]


@cache
def request_adapter(people_only: bool = True) -> TypeAdapter[RunRequest]:
    return TypeAdapter(request_union(people_only))
