"""The remediate request: one resource a rule acts on, and what fired it. The remediation trigger writes it
after the rule's guard let it act; it is not a request people send (`POST /runs` refuses it)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from opsflow.aws.target import Target
from opsflow.remediation.rules import RULE_NAME
from opsflow.runs.requests import REQUEST_CONFIG, RunRequest


class RunbookCall(BaseModel):
    """The runbook a rule runs, its parameters filled in for the resource acted on."""

    model_config = REQUEST_CONFIG

    document: Annotated[str, Field(min_length=3, max_length=128)]
    document_version: str | None = None
    parameters: dict[str, list[str]] = Field(default_factory=dict)


class RemediateRequest(RunRequest):
    workflow: Literal["remediate"]
    rule: Annotated[str, Field(pattern=RULE_NAME, description="The remediation rule acting.")]
    resource_kind: Literal["instance", "ecs"]
    resource: Annotated[
        str, Field(min_length=1, max_length=512, description="An instance id, or cluster/service for ECS.")
    ]
    group: Annotated[str, Field(min_length=1, max_length=255)] | None = Field(
        default=None, description="The Auto Scaling group the instance belongs to."
    )
    alarm_name: Annotated[str, Field(min_length=1, max_length=255)] | None = Field(
        default=None, description="The alarm that fired: the action helped once it is OK again."
    )
    cause: Annotated[str, Field(max_length=1000)] = Field(default="", description="What fired, for people.")
    helped_when: Literal["status_checks_ok", "alarm_ok"] = Field(
        default="status_checks_ok",
        description="What says the action helped: the resource healthy (an instance running with both status "
        "checks ok, a service steady), or also the alarm that fired back to OK.",
    )
    action: Literal["reboot", "stop_start", "recover", "ecs_redeploy", "runbook"]
    runbook: RunbookCall | None = None
    outcome_timeout_minutes: Annotated[int, Field(ge=1, le=120)] = 15

    @property
    def cluster_and_service(self) -> tuple[str, str]:
        cluster, _, service = self.resource.partition("/")
        return cluster, service

    def target(self) -> Target:
        return self.located(self.resource_kind, self.resource)
