"""The message model: what a person needs to know about an event, independent of where it is shown."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Status(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    IN_PROGRESS = "in_progress"
    WARNING = "warning"
    INFO = "info"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return {"info": 0, "warning": 1, "critical": 2}[self.value]


# How a status reads at a glance on every platform.
STATUS_EMOJI = {
    Status.SUCCEEDED: "✅",
    Status.FAILED: "❌",
    Status.IN_PROGRESS: "⏳",
    Status.WARNING: "⚠️",
    Status.INFO: "ℹ️",  # noqa: RUF001 - the information emoji, on purpose
}


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class Burst:
    """Where a message sits among the events of one execution (a pipeline's run, a CI run), which arrive
    within seconds of each other: a channel is sent a summary of them, not each one (bursts.py)."""

    key: str  # the execution: all its events share it, and a thread per channel
    subject: str  # what the summary is about: "Pipeline web-deploy"
    part: str | None = None  # a stage ("Build") or an action ("Build / CodeBuild"); None: the execution
    state: str = ""  # the event's state, as its source names it: "FAILED"
    closes: bool = False  # the part (or, with part None, the execution) is over


@dataclass(frozen=True)
class Message:
    """title: one line, what happened to what. summary: a sentence or two. facts: label/value pairs.
    cause: why it failed, when it did. links: where to look. The routing fields say who wants it."""

    title: str
    status: Status
    severity: Severity
    summary: str = ""
    facts: tuple[tuple[str, str], ...] = ()
    cause: str | None = None
    next_step: str | None = None
    links: tuple[Link, ...] = ()
    run_id: str | None = None
    source: str = ""
    workflow: str | None = None
    environment: str | None = None
    pipeline: str | None = None
    project: str | None = None  # a CodeBuild project
    application: str | None = None  # a CodeDeploy application
    repository: str | None = None  # an ECR repository
    extra: dict[str, str] = field(default_factory=dict)
    burst: Burst | None = None

    @property
    def thread_key(self) -> str | None:
        """What the message's thread is kept by: its run, or the execution of its burst."""
        return self.run_id or (self.burst.key if self.burst else None)

    @property
    def headline(self) -> str:
        return f"{STATUS_EMOJI[self.status]} {self.title}"


def truncate(text: str, limit: int) -> str:
    """Cut to `limit` characters, marking the cut, so no platform rejects the message."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"
