"""Build one message from one event: Step Functions runs, Opsflow progress, CodePipeline, CloudWatch
alarms, EC2 Auto Scaling instance refreshes and ECS deployments here; CodeBuild, CodeDeploy and ECR in
delivery_sources.py, AWS Health in health.py.

A run's own record (the runs table) says more than the Step Functions event: which step failed, why,
what was rolled back, who asked. The notify handler passes it in when the event is about a run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from opsflow.aws.target import Target
from opsflow.notify.ci import ci_run
from opsflow.notify.delivery_sources import (
    codebuild_build,
    codedeploy_deployment,
    ecr_image_action,
    ecr_image_scan,
)
from opsflow.notify.health import HEALTH_EVENT, InstanceTags, health_event
from opsflow.notify.message import Burst, Link, Message, Severity, Status
from opsflow.notify.where import console, elsewhere, link_label, where_facts
from opsflow.runs import registry


def workflow_title(workflow: str) -> str:
    """The registry's title for a workflow (`ami_bake`: AMI bake); a name it does not know, as it is."""
    known = registry.WORKFLOWS.get(workflow)
    return known.title if known else workflow


def build_message(
    event: dict[str, Any], run: dict[str, Any] | None = None, instance_tags: InstanceTags | None = None
) -> Message | None:
    """The message for `event`, or None for events nobody needs to read (e.g. a run starting).
    `instance_tags` looks up the tags of the instances an AWS Health event names (health.py)."""
    key = (event.get("source", ""), event.get("detail-type", ""))
    if key == HEALTH_EVENT and instance_tags is not None:
        return health_event(event, run, instance_tags)
    builder = _BUILDERS.get(key)
    if (
        builder is None
        and event.get("source") == "aws.autoscaling"
        and str(event.get("detail-type", "")).startswith("EC2 Auto Scaling Instance Refresh")
    ):
        builder = _instance_refresh
    return builder(event, run) if builder else None


# Step Functions -----------------------------------------------------------------------------------


def _execution(event: dict[str, Any], run: dict[str, Any] | None) -> Message | None:
    detail = event["detail"]
    status = detail.get("status", "")
    if status == "RUNNING":
        return None  # the API already answered the person who started it
    execution_input = _json(detail.get("input"))
    workflow = (
        (run or {}).get("workflow")
        or execution_input.get("workflow")
        or _workflow_of_state_machine(detail.get("stateMachineArn", ""))
    )
    request = (run or {}).get("request") or execution_input.get("request") or {}
    known = registry.WORKFLOWS.get(workflow)
    name = known.title_of(request) if known else workflow
    target = Target.from_key((run or {}).get("target") or execution_input.get("target") or "")
    target_name = (target.shown_name or f"run {detail.get('name', '?')}") + elsewhere(
        target.account, target.region
    )
    hub_region = event.get("region", "us-east-1")
    region = target.region or hub_region
    requester = (
        ((run or {}).get("requester") or {}).get("identity") or execution_input.get("requester") or "unknown"
    )
    facts = [("Requested by", requester), *where_facts(target.account, region)]
    duration = _duration(detail.get("startDate"), detail.get("stopDate"))
    if duration:
        facts.append(("Duration", duration))
    links = [
        Link(
            "Open execution",
            console(
                hub_region,
                f"states/home?region={hub_region}#/v2/executions/details/{detail.get('executionArn', '')}",
            ),
        )
    ]
    if target.kind == "asg":
        links.append(
            Link(
                link_label("Open group", target.account),
                console(region, f"ec2/home?region={region}#AutoScalingGroupDetails:id={quote(target.name)}"),
            )
        )
    if target.kind == "record":
        zone, _, record = target.name.partition("/")
        # Route 53's console is global; it opens in us-east-1.
        links.append(
            Link(
                link_label(f"Open {record} in Route 53", target.account),
                console("us-east-1", f"route53/v2/hostedzones?region=us-east-1#ListRecordSets/{quote(zone)}"),
            )
        )
    run_id = detail.get("name")
    environment = ((run or {}).get("request") or execution_input.get("request") or {}).get("environment")
    if status == "SUCCEEDED":
        output = (run or {}).get("result") or {}
        facts += _result_facts(output)
        return Message(
            title=f"{name} succeeded: {target_name}",
            status=Status.SUCCEEDED,
            severity=Severity.INFO,
            summary=_success_summary(workflow, output, target_name),
            facts=tuple(facts),
            links=tuple(links),
            run_id=run_id,
            source=f"Opsflow {name}",
            workflow=workflow,
            environment=environment,
        )
    error = (run or {}).get("error") or {}
    step = error.get("step")
    cause = (
        error.get("message")
        or _lambda_message(detail.get("cause"))
        or detail.get("error")
        or "Step Functions gave no reason; the execution history shows the last state entered."
    )
    if step:
        facts.insert(0, ("Failed step", str(step)))
    if error.get("gate"):
        # A cutover names the set traffic was moving to; a blue/green deploy's is green.
        facts.insert(
            1, ("Gate", f"{error['gate']} at {error.get('weight', 0)}% on {error.get('to') or 'green'}")
        )
    if error.get("live"):
        facts.append(("Traffic now", f"100% {error['live']}"))
    for failure in (error.get("failed") or [])[:5]:
        facts.append(("Failed", f"{failure['resource']}: {failure['error']}"))
    rollback = error.get("rollback") or {}
    next_step = error.get("next_step")
    if rollback.get("problems"):
        next_step = "Not everything could be undone: " + "; ".join(rollback["problems"])
    elif rollback.get("undone"):
        next_step = f"Rolled back ({len(rollback['undone'])} change(s)); the target is as it was. Fix the cause and run again."
    verb = {"FAILED": "failed", "TIMED_OUT": "timed out", "ABORTED": "was aborted"}.get(
        status, status.lower()
    )
    return Message(
        title=f"{name} {verb}: {target_name}",
        status=Status.FAILED,
        severity=Severity.CRITICAL if status == "FAILED" else Severity.WARNING,
        summary=f"The {name} of {target_name or 'its target'} {verb}"
        + (f" at step {step}." if step else "."),
        facts=tuple(facts),
        cause=cause,
        next_step=next_step,
        links=tuple(links),
        run_id=run_id,
        source=f"Opsflow {name}",
        workflow=workflow,
        environment=environment,
    )


def _success_summary(workflow: str, output: dict[str, Any], target: str) -> str:
    known = registry.WORKFLOWS.get(workflow)
    return known.summarize_success(output, target) if known else f"{target} done."


def _result_facts(output: dict[str, Any]) -> list[tuple[str, str]]:
    facts: list[tuple[str, str]] = []
    if output.get("image_id"):
        facts.append(("Image", f"{output['image_id']} ({len(output.get('snapshots', []))} snapshot(s))"))
    group = output.get("group") or {}
    if group.get("after"):
        facts.append(("Group now uses", str(group["after"])))
    refresh = output.get("refresh") or {}
    if refresh.get("refresh_id"):
        facts.append(
            (
                "Instance refresh",
                f"{refresh['status']}, version {refresh.get('previous_version')} → {refresh.get('version')}",
            )
        )
    if output.get("weights"):
        facts.append(("Traffic steps", " → ".join(f"{w}%" for w in output["weights"])))
    for warning in output.get("warnings", []):
        facts.append(("Warning", str(warning)))
    return facts


# Opsflow progress -------------------------------------------------------------------------------


def _progress(event: dict[str, Any], run: dict[str, Any] | None) -> Message:
    detail = event["detail"]
    workflow = detail.get("workflow", "")
    name = workflow_title(workflow)
    located = Target.from_key(str(detail.get("target", "")))
    target = (located.shown_name or str(detail.get("target", ""))) + elsewhere(
        located.account, located.region
    )
    # A remediation's breaker opening is a warning: the team must look before the rule acts again.
    warning = detail.get("severity") == "warning"
    return Message(
        title=f"{name} {target}: {detail.get('message', detail.get('kind', 'progress'))}",
        status=Status.WARNING if warning else Status.IN_PROGRESS,
        severity=Severity.WARNING if warning else Severity.INFO,
        run_id=detail.get("run_id"),
        source=f"Opsflow {name}",
        workflow=workflow,
        environment=detail.get("environment"),
    )


# CodePipeline -----------------------------------------------------------------------------------

_PIPELINE_STATUS = {
    "SUCCEEDED": (Status.SUCCEEDED, Severity.INFO),
    "FAILED": (Status.FAILED, Severity.CRITICAL),
    "STOPPED": (Status.WARNING, Severity.WARNING),
    "SUPERSEDED": (Status.INFO, Severity.INFO),
    "CANCELED": (Status.WARNING, Severity.WARNING),
    "STARTED": (Status.IN_PROGRESS, Severity.INFO),
    "RESUMED": (Status.IN_PROGRESS, Severity.INFO),
    "STOPPING": (Status.IN_PROGRESS, Severity.WARNING),
    "ABANDONED": (Status.WARNING, Severity.WARNING),
}


# The states that end an execution, a stage or an action (CodePipeline User Guide, "Monitoring CodePipeline
# events": the detail-types' state values).
_PIPELINE_ENDS = frozenset({"SUCCEEDED", "FAILED", "STOPPED", "SUPERSEDED", "CANCELED", "ABANDONED"})


def _pipeline(event: dict[str, Any], run: dict[str, Any] | None) -> Message:
    detail = event["detail"]
    region = event.get("region", "us-east-1")
    pipeline = detail.get("pipeline", "")
    state = detail.get("state", "")
    status, severity = _PIPELINE_STATUS.get(state, (Status.INFO, Severity.INFO))
    where = ""
    part = None
    if detail.get("action"):
        part = f"{detail.get('stage')} / {detail['action']}"
        where = f" at {part}"
    elif detail.get("stage"):
        part = str(detail["stage"])
        where = f" stage {part}"
    result = detail.get("execution-result") or {}
    cause = None
    if state == "FAILED":
        cause = result.get("external-execution-summary") or _failure_summary(detail)
    facts = [("Execution", str(detail.get("execution-id", "")))]
    if result.get("error-code"):
        facts.append(("Error code", str(result["error-code"])))
    links = [
        Link(
            "Open pipeline",
            console(
                region,
                f"codesuite/codepipeline/pipelines/{quote(pipeline)}/executions/{detail.get('execution-id', '')}/timeline?region={region}",
            ),
        )
    ]
    if result.get("external-execution-url"):
        links.append(Link("Open action details", str(result["external-execution-url"])))
    return Message(
        title=f"Pipeline {pipeline}{where}: {state.lower()}",
        status=status,
        severity=severity,
        facts=tuple(facts),
        cause=cause,
        links=tuple(links),
        source="AWS CodePipeline",
        pipeline=pipeline,
        burst=Burst(
            key=_pipeline_run(event, detail),
            subject=f"Pipeline {pipeline}",
            part=part,
            state=state,
            closes=state in _PIPELINE_ENDS,
        ),
    )


def _pipeline_run(event: dict[str, Any], detail: dict[str, Any]) -> str:
    """The burst of a pipeline execution's attempt. A failed or stopped stage can be retried: the
    execution resumes (RESUMED) as a new attempt, whose events are a burst of their own, so a channel is
    told how the retry ended too."""
    key = f"codepipeline:{event.get('account', '')}:{event.get('region', '')}:{detail.get('pipeline', '')}:{detail.get('execution-id', '')}"
    try:
        attempt = int(float(detail.get("pipeline-execution-attempt") or 1))
    except (TypeError, ValueError):
        attempt = 1
    return key if attempt <= 1 else f"{key}:attempt-{attempt}"


def _failure_summary(detail: dict[str, Any]) -> str | None:
    failures = detail.get("failure-details") or detail.get("failureDetails")
    if isinstance(failures, dict):
        return str(failures.get("message") or failures)
    return None


# CloudWatch alarms ------------------------------------------------------------------------------


def _alarm(event: dict[str, Any], run: dict[str, Any] | None) -> Message:
    detail = event["detail"]
    region = event.get("region", "us-east-1")
    name = detail.get("alarmName", "")
    state = (detail.get("state") or {}).get("value", "")
    previous = (detail.get("previousState") or {}).get("value", "")
    status, severity = {
        "ALARM": (Status.FAILED, Severity.CRITICAL),
        "OK": (Status.SUCCEEDED, Severity.INFO),
    }.get(state, (Status.WARNING, Severity.WARNING))
    description = ((detail.get("configuration") or {}).get("description")) or ""
    account = event.get("account")
    return Message(
        title=f"{state}: {name}{elsewhere(account, region)}" + (f" (was {previous})" if previous else ""),
        status=status,
        severity=severity,
        summary=description,
        cause=(detail.get("state") or {}).get("reason"),
        facts=tuple(where_facts(account, region)),
        links=(
            Link(
                link_label("Open alarm", account),
                console(region, f"cloudwatch/home?region={region}#alarmsV2:alarm/{quote(name)}"),
            ),
        ),
        source="Amazon CloudWatch",
    )


# EC2 Auto Scaling instance refresh ----------------------------------------------------------------


def _instance_refresh(event: dict[str, Any], run: dict[str, Any] | None) -> Message:
    detail = event["detail"]
    region = event.get("region", "us-east-1")
    group = detail.get("AutoScalingGroupName", "")
    what = str(event.get("detail-type", "")).removeprefix("EC2 Auto Scaling Instance Refresh ").strip()
    status, severity = {
        "Succeeded": (Status.SUCCEEDED, Severity.INFO),
        "Failed": (Status.FAILED, Severity.CRITICAL),
        "Cancelled": (Status.WARNING, Severity.WARNING),
        "Rollback Started": (Status.WARNING, Severity.WARNING),
        "Rollback Succeeded": (Status.WARNING, Severity.WARNING),
        "Rollback Failed": (Status.FAILED, Severity.CRITICAL),
    }.get(what, (Status.IN_PROGRESS, Severity.INFO))
    account = event.get("account")
    facts = [("Instance refresh", str(detail.get("InstanceRefreshId", ""))), *where_facts(account, region)]
    if detail.get("CheckpointPercentage"):
        facts.append(
            (
                "Checkpoint",
                f"{detail['CheckpointPercentage']}%, then waits {detail.get('CheckpointDelay', '?')} s",
            )
        )
    return Message(
        title=f"Instance refresh of {group}{elsewhere(account, region)}: {what.lower()}",
        status=status,
        severity=severity,
        facts=tuple(facts),
        links=(
            Link(
                link_label("Open group", account),
                console(
                    region,
                    f"ec2/home?region={region}#AutoScalingGroupDetails:id={quote(group)};view=instanceRefresh",
                ),
            ),
        ),
        source="Amazon EC2 Auto Scaling",
    )


# ECS deployments --------------------------------------------------------------------------------


def _ecs_deployment(event: dict[str, Any], run: dict[str, Any] | None) -> Message:
    detail = event["detail"]
    region = event.get("region", "us-east-1")
    service_arn = (event.get("resources") or [""])[0]
    # arn:aws:ecs:region:account:service/cluster/service
    parts = service_arn.split(":", 5)[-1].split("/")
    cluster, service = (parts[1], parts[2]) if len(parts) == 3 else ("", parts[-1])
    name = str(detail.get("eventName", ""))
    status, severity = {
        "SERVICE_DEPLOYMENT_COMPLETED": (Status.SUCCEEDED, Severity.INFO),
        "SERVICE_DEPLOYMENT_FAILED": (Status.FAILED, Severity.CRITICAL),
    }.get(name, (Status.IN_PROGRESS, Severity.INFO))
    account = event.get("account")
    return Message(
        title=f"ECS service {service}{elsewhere(account, region)}: "
        f"{name.removeprefix('SERVICE_').replace('_', ' ').lower()}",
        status=status,
        severity=severity,
        facts=(
            ("Cluster", cluster),
            ("Deployment", str(detail.get("deploymentId", ""))),
            *where_facts(account, region),
        ),
        cause=detail.get("reason") if status == Status.FAILED else None,
        summary="" if status == Status.FAILED else str(detail.get("reason") or ""),
        links=(
            Link(
                link_label("Open service", account),
                console(
                    region, f"ecs/v2/clusters/{quote(cluster)}/services/{quote(service)}?region={region}"
                ),
            ),
        ),
        source="Amazon ECS",
    )


# Helpers ----------------------------------------------------------------------------------------


def _workflow_of_state_machine(arn: str) -> str:
    """`...:stateMachine:opsflow-ami-bake` -> `ami_bake` (the template names each state machine after its
    workflow); a name CloudFormation made up, `opsflow-AmiBakeStateMachine-...`, by its logical id."""
    name = arn.rsplit(":", 1)[-1]
    for workflow in registry.WORKFLOWS.values():
        if name.endswith(f"-{workflow.dashed_name}"):
            return workflow.name
    logical_id = next((part for part in name.split("-") if part.endswith("StateMachine")), name)
    return re.sub(r"(?<!^)(?=[A-Z])", "_", logical_id.removesuffix("StateMachine")).lower()


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value) if value else {}
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _lambda_message(cause: Any) -> str | None:
    parsed = _json(cause)
    return str(parsed.get("errorMessage")) if parsed.get("errorMessage") else (str(cause) if cause else None)


def _duration(start: Any, stop: Any) -> str | None:
    try:
        seconds = (int(stop) - int(start)) / 1000
    except (TypeError, ValueError):
        return None
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s" if minutes else f"{secs} s"


_BUILDERS: dict[tuple[str, str], Callable[[dict[str, Any], dict[str, Any] | None], Message | None]] = {
    ("aws.states", "Step Functions Execution Status Change"): _execution,
    ("opsflow", "Opsflow Run Progress"): _progress,
    ("aws.codepipeline", "CodePipeline Pipeline Execution State Change"): _pipeline,
    ("aws.codepipeline", "CodePipeline Stage Execution State Change"): _pipeline,
    ("aws.codepipeline", "CodePipeline Action Execution State Change"): _pipeline,
    ("aws.cloudwatch", "CloudWatch Alarm State Change"): _alarm,
    ("aws.ecs", "ECS Deployment State Change"): _ecs_deployment,
    ("opsflow.ci", "CI Run State Change"): ci_run,
    ("aws.codebuild", "CodeBuild Build State Change"): codebuild_build,
    ("aws.codedeploy", "CodeDeploy Deployment State-change Notification"): codedeploy_deployment,
    ("aws.ecr", "ECR Image Action"): ecr_image_action,
    ("aws.ecr", "ECR Image Scan"): ecr_image_scan,
    HEALTH_EVENT: health_event,
}
