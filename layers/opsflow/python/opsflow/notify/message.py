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

    @property
    def headline(self) -> str:
        return f"{STATUS_EMOJI[self.status]} {self.title}"


def truncate(text: str, limit: int) -> str:
    """Cut to `limit` characters, marking the cut, so no platform rejects the message."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"
