"""The message of a CI server's run (`opsflow.ci` `CI Run State Change`, from `POST /events/ci`), shown as
CodePipeline's are: the pipeline, where it is, how it went, and a link to the run. Its `pipeline` is the
pipeline's name, so a channel's `pipelines` filter picks CI pipelines as it does CodePipeline's."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from opsflow.notify.message import Burst, Link, Message, Severity, Status

SYSTEMS = {"jenkins": "Jenkins", "gitlab": "GitLab CI", "bitbucket": "Bitbucket Pipelines", "other": "CI"}
_STATUS = {
    "started": (Status.IN_PROGRESS, Severity.INFO),
    "succeeded": (Status.SUCCEEDED, Severity.INFO),
    "failed": (Status.FAILED, Severity.CRITICAL),
    "cancelled": (Status.WARNING, Severity.WARNING),
}


def ci_run(event: dict[str, Any], run: dict[str, Any] | None) -> Message:
    detail = event["detail"]
    system = SYSTEMS.get(str(detail.get("system", "")), "CI")
    pipeline = str(detail.get("pipeline", ""))
    number = str(detail.get("run", "?"))
    state = str(detail.get("status", ""))
    status, severity = _STATUS.get(state, (Status.INFO, Severity.INFO))
    shown_run = f"#{number}" if number.isdigit() else f"run {number}"
    where = f" at {detail['stage']}" if detail.get("stage") else ""
    facts = [("Run", shown_run)]
    for label, key in (("Branch", "branch"), ("Commit", "commit"), ("Author", "author")):
        if detail.get(key):
            value = str(detail[key])
            facts.append((label, value[:12] if key == "commit" else value))
    duration = _duration(detail.get("duration_seconds"))
    if duration:
        facts.append(("Duration", duration))
    message = str(detail.get("message") or "")
    cause = None
    if state == "failed":
        cause = message or f"{system} gave no reason; the run's log says which step failed."
    links = (Link(f"Open run in {system}", str(detail["url"])),) if detail.get("url") else ()
    return Message(
        title=f"Pipeline {pipeline} {shown_run}{where}: {state}",
        status=status,
        severity=severity,
        summary="" if state == "failed" else message,
        facts=tuple(facts),
        cause=cause,
        links=links,
        source=system,
        pipeline=pipeline,
        burst=Burst(
            # Each part quoted: a pipeline's name and a run's id may hold the separator.
            key=":".join(
                quote(str(part), safe="") for part in ("ci", detail.get("system", ""), pipeline, number)
            ),
            subject=f"Pipeline {pipeline} {shown_run}",
            state=state,
            closes=state != "started",
        ),
    )


def _duration(value: Any) -> str | None:
    try:
        seconds = int(float(value))
    except (TypeError, ValueError):
        return None
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s" if minutes else f"{secs} s"
