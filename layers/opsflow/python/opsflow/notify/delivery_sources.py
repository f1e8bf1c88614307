"""Messages for the AWS services a team delivers with: CodeBuild builds, CodeDeploy deployments, ECR image
pushes and image scans. Each names what a channel routes on (`project`, `application`, `repository`) and,
when something went wrong, what: the build's failed phase and its message, the deployment group and any
rollback, the scan's critical findings."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from opsflow.notify.message import Burst, Link, Message, Severity, Status
from opsflow.notify.where import console, elsewhere, link_label, where_facts

# CodeBuild ----------------------------------------------------------------------------------------

_BUILD_STATUS = {
    "IN_PROGRESS": (Status.IN_PROGRESS, Severity.INFO, "started"),
    "SUCCEEDED": (Status.SUCCEEDED, Severity.INFO, "succeeded"),
    "FAILED": (Status.FAILED, Severity.CRITICAL, "failed"),
    "FAULT": (Status.FAILED, Severity.CRITICAL, "faulted"),
    "TIMED_OUT": (Status.FAILED, Severity.WARNING, "timed out"),
    "STOPPED": (Status.WARNING, Severity.WARNING, "stopped"),
}
# A phase that did not succeed (CodeBuild API Reference, BuildPhase: phaseStatus).
_PHASE_FAILURES = frozenset({"FAILED", "FAULT", "TIMED_OUT", "STOPPED", "CLIENT_ERROR"})


def codebuild_build(event: dict[str, Any], run: dict[str, Any] | None = None) -> Message:
    """CodeBuild Build State Change (CodeBuild User Guide, "Build notifications input format reference")."""
    detail = event["detail"]
    region = event.get("region", "us-east-1")
    account = event.get("account")
    project = str(detail.get("project-name", ""))
    state = str(detail.get("build-status", ""))
    status, severity, verb = _BUILD_STATUS.get(state, (Status.INFO, Severity.INFO, state.lower()))
    info = detail.get("additional-information") or {}
    # build-id: arn:aws:codebuild:region:account:build/project:uuid
    build = str(detail.get("build-id", "")).rpartition("build/")[2]
    number = _whole(info.get("build-number"))
    shown = f"#{number}" if number else build.rpartition(":")[2][:8]
    failed = _failed_phase(info.get("phases") or [])
    where = f" at {failed['phase-type']}" if failed and status is not Status.IN_PROGRESS else ""
    facts = [("Build", f"#{number}" if number else build)]
    if info.get("initiator"):
        facts.append(("Started by", str(info["initiator"])))
    if info.get("source-version"):
        facts.append(("Source version", str(info["source-version"])))
    cause = None
    if state in {"FAILED", "FAULT", "TIMED_OUT", "STOPPED"}:
        if failed:
            facts.insert(0, ("Failed phase", f"{failed['phase-type']} ({failed.get('phase-status', '?')})"))
        cause = (_phase_message(failed) if failed else None) or _phase_message(
            {"phase-context": detail.get("current-phase-context")}
        )
        if not cause and state != "STOPPED":
            cause = "CodeBuild gave no reason; the build's log says which command failed."
    facts += where_facts(account, region)
    links = [
        Link(
            link_label("Open build", account),
            console(
                region, f"codesuite/codebuild/projects/{quote(project)}/build/{quote(build)}/?region={region}"
            ),
        )
    ]
    logs = (info.get("logs") or {}).get("deep-link")
    if logs:
        links.append(Link(link_label("Open logs", account), str(logs)))
    return Message(
        title=f"Build {project} {shown}{elsewhere(account, region)}: {verb}{where}",
        status=status,
        severity=severity,
        facts=tuple(facts),
        cause=cause,
        links=tuple(links),
        source="AWS CodeBuild",
        project=project,
        burst=Burst(
            key=f"codebuild:{detail.get('build-id', '')}",
            subject=f"Build {project} {shown}",
            state=state,
            closes=state != "IN_PROGRESS",
        ),
    )


def _failed_phase(phases: list[Any]) -> dict[str, Any] | None:
    return next(
        (
            phase
            for phase in phases
            if isinstance(phase, dict) and str(phase.get("phase-status", "")) in _PHASE_FAILURES
        ),
        None,
    )


def _phase_message(phase: dict[str, Any]) -> str | None:
    """A phase's context: a list of messages (`COMMAND_EXECUTION_ERROR: Error while executing command: ...`),
    or, in the API's shape, of {statusCode, message}; `current-phase-context` holds it as text."""
    context = phase.get("phase-context")
    if isinstance(context, str):
        context = [context.strip().removeprefix("[").removesuffix("]")]
    parts = []
    for item in context or []:
        if isinstance(item, dict):
            item = ": ".join(str(item[key]) for key in ("statusCode", "message") if item.get(key))
        text = str(item).strip()
        if text and text != ":":
            parts.append(text)
    return "; ".join(parts) or None


def _whole(value: Any) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


# CodeDeploy ---------------------------------------------------------------------------------------

_DEPLOYMENT_STATE = {
    "START": (Status.IN_PROGRESS, Severity.INFO, "started"),
    "SUCCESS": (Status.SUCCEEDED, Severity.INFO, "succeeded"),
    "FAILURE": (Status.FAILED, Severity.CRITICAL, "failed"),
    "STOP": (Status.WARNING, Severity.WARNING, "stopped"),
    # Blue/green: the replacement is ready and waits for traffic to be rerouted to it.
    "READY": (Status.IN_PROGRESS, Severity.INFO, "ready for traffic"),
}


def codedeploy_deployment(event: dict[str, Any], run: dict[str, Any] | None = None) -> Message:
    """CodeDeploy Deployment State-change Notification (CloudWatch Events User Guide, "Event examples from
    supported services": AWS CodeDeploy events)."""
    detail = event["detail"]
    region = str(detail.get("region") or event.get("region", "us-east-1"))
    account = event.get("account")
    application = str(detail.get("application", ""))
    group = str(detail.get("deploymentGroup", ""))
    deployment = str(detail.get("deploymentId", ""))
    state = str(detail.get("state", ""))
    status, severity, verb = _DEPLOYMENT_STATE.get(state, (Status.INFO, Severity.INFO, state.lower()))
    facts = [("Application", application), ("Deployment group", group), ("Deployment", deployment)]
    rollback, next_step = _rollback(detail)
    facts += rollback
    facts += where_facts(account, region)
    rolls_back = any(label == "Rolls back" for label, _ in rollback)
    if state == "FAILURE" and not next_step:
        next_step = "The deployment's page lists the lifecycle event that failed, with its script's log."
    return Message(
        title=f"{'Rollback' if rolls_back else 'Deployment'} of {application} to {group}"
        f"{elsewhere(account, region)}: {verb}",
        status=status,
        severity=severity,
        summary=f"Deployment {deployment} of {application} to deployment group {group}: {verb}.",
        facts=tuple(facts),
        next_step=next_step,
        links=(
            Link(
                link_label("Open deployment", account),
                console(region, f"codesuite/codedeploy/deployments/{quote(deployment)}?region={region}"),
            ),
            Link(
                link_label("Open deployment group", account),
                console(
                    region,
                    f"codesuite/codedeploy/applications/{quote(application)}"
                    f"/deployment-groups/{quote(group)}?region={region}",
                ),
            ),
        ),
        source="AWS CodeDeploy",
        application=application,
        burst=Burst(
            key=f"codedeploy:{account}:{region}:{deployment}",
            subject=f"Deployment {deployment}",
            state=state,
            closes=state in {"SUCCESS", "FAILURE", "STOP"},
        ),
    )


def _rollback(detail: dict[str, Any]) -> tuple[list[tuple[str, str]], str | None]:
    """What the event says of a rollback. AWS documents no rollback field for this event; one that carries a
    deployment's `rollbackInfo` as the CodeDeploy API returns it (GetDeployment, RollbackInfo), or names
    CodeDeploy's rollback as its `creator`, is said to be about one."""
    info = detail.get("rollbackInfo")
    info = info if isinstance(info, dict) else {}
    facts: list[tuple[str, str]] = []
    if info.get("rollbackTriggeringDeploymentId"):
        facts.append(("Rolls back", str(info["rollbackTriggeringDeploymentId"])))
    elif detail.get("creator") == "codeDeployRollback":
        facts.append(("Rolls back", "an earlier deployment (CodeDeploy's automatic rollback)"))
    if info.get("rollbackDeploymentId"):
        facts.append(("Rolled back by", str(info["rollbackDeploymentId"])))
    message = str(info["rollbackMessage"]) if info.get("rollbackMessage") else None
    return facts, message


# ECR ----------------------------------------------------------------------------------------------

# Most severe first (ECR API Reference, ImageScanFindings: findingSeverityCounts).
_SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED")


def ecr_image_action(event: dict[str, Any], run: dict[str, Any] | None = None) -> Message | None:
    """ECR Image Action (ECR User Guide, "Amazon ECR events and EventBridge"): a push of an image; a
    deletion is nobody's news."""
    detail = event["detail"]
    if detail.get("action-type") != "PUSH":
        return None
    region = event.get("region", "us-east-1")
    account = event.get("account")
    repository = str(detail.get("repository-name", ""))
    digest = str(detail.get("image-digest", ""))
    tag = str(detail.get("image-tag") or "")
    result = str(detail.get("result", ""))
    pushed = result == "SUCCESS"
    return Message(
        title=f"Image {'pushed' if pushed else 'push ' + result.lower()}: "
        f"{repository}:{tag or _short(digest)}{elsewhere(account, region)}",
        status=Status.SUCCEEDED if pushed else Status.WARNING,
        severity=Severity.INFO if pushed else Severity.WARNING,
        facts=(
            ("Repository", repository),
            ("Tag", tag or "(none)"),
            ("Digest", digest),
            *where_facts(account, region),
        ),
        links=_image_links(region, account, repository, digest),
        source="Amazon ECR",
        repository=repository,
    )


def ecr_image_scan(event: dict[str, Any], run: dict[str, Any] | None = None) -> Message:
    """ECR Image Scan (basic scanning; ECR User Guide, "Amazon ECR events and EventBridge"). Any CRITICAL
    finding makes it critical, any HIGH a warning. The counts list only the severities found."""
    detail = event["detail"]
    region = event.get("region", "us-east-1")
    account = event.get("account")
    repository = str(detail.get("repository-name", ""))
    digest = str(detail.get("image-digest", ""))
    tags = [str(tag) for tag in detail.get("image-tags") or []]
    counts = {
        str(name).upper(): count
        for name, value in (detail.get("finding-severity-counts") or {}).items()
        if (count := _whole(value))
    }
    order = (*_SEVERITIES, *sorted(set(counts) - set(_SEVERITIES)))
    found = [(name, counts[name]) for name in order if name in counts]
    image = f"{repository}:{tags[0]}" if tags else f"{repository}@{_short(digest)}"
    scan_status = str(detail.get("scan-status", ""))
    if scan_status != "COMPLETE":
        status, severity = Status.WARNING, Severity.WARNING
        headline = f"scan {scan_status.lower() or 'ended'}"
    elif counts.get("CRITICAL"):
        status, severity = Status.FAILED, Severity.CRITICAL
        headline = _counted(found)
    elif counts.get("HIGH"):
        status, severity = Status.WARNING, Severity.WARNING
        headline = _counted(found)
    elif found:
        status, severity = Status.INFO, Severity.INFO
        headline = _counted(found)
    else:
        status, severity = Status.SUCCEEDED, Severity.INFO
        headline = "no findings"
    return Message(
        title=f"Image scan of {image}{elsewhere(account, region)}: {headline}",
        status=status,
        severity=severity,
        facts=(
            ("Repository", repository),
            ("Tags", ", ".join(tags) or "(none)"),
            ("Digest", digest),
            *((f"{name.capitalize()} findings", str(count)) for name, count in found),
            *where_facts(account, region),
        ),
        next_step=(
            "Fix or replace the vulnerable packages and push again before this image is deployed."
            if severity is Severity.CRITICAL
            else None
        ),
        links=_image_links(region, account, repository, digest),
        source="Amazon ECR",
        repository=repository,
    )


def _counted(found: list[tuple[str, int]]) -> str:
    return ", ".join(f"{count} {name.lower()}" for name, count in found)


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def _image_links(region: str, account: str | None, repository: str, digest: str) -> tuple[Link, ...]:
    base = f"ecr/repositories/private/{account or ''}/{quote(repository)}"
    links = [Link(link_label("Open repository", account), console(region, f"{base}?region={region}"))]
    if digest:
        links.insert(
            0,
            Link(
                link_label("Open image", account),
                console(region, f"{base}/_/image/{quote(digest, safe=':')}/details?region={region}"),
            ),
        )
    return tuple(links)
