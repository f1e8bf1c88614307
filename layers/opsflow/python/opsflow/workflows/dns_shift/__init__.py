"""Weighted DNS cutover: move a name's traffic between its Route 53 weighted record sets in gated steps."""

from __future__ import annotations

from opsflow.runs.workflow import Workflow, lazy
from opsflow.workflows.dns_shift.request import DnsShiftRequest

WORKFLOW = Workflow(
    name="dns_shift",
    title="DNS cutover",
    request=DnsShiftRequest,
    preflight=lazy("opsflow.workflows.dns_shift.preflight", "preflight_run"),
    steps=lazy("opsflow.workflows.dns_shift.steps", "build_runner"),
    put_back=lazy("opsflow.workflows.dns_shift.results", "put_back_run"),
)
