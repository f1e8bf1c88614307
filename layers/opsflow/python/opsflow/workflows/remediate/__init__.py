"""Remediate: act on one resource a remediation rule's guard let it act on, and learn whether it helped.
Only the remediation trigger starts it (opsflow.triggers.remediation)."""

from __future__ import annotations

from opsflow.runs.workflow import Workflow, lazy
from opsflow.workflows.remediate.request import RemediateRequest

WORKFLOW = Workflow(
    name="remediate",
    title="Remediation",
    request=RemediateRequest,
    preflight=lazy("opsflow.workflows.remediate.preflight", "preflight_run"),
    steps=lazy("opsflow.workflows.remediate.steps", "build_runner"),
    put_back=lazy("opsflow.workflows.remediate.steps", "put_back"),
    asked_by_people=False,
)
