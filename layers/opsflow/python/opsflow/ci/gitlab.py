"""A GitLab webhook's pipeline event (`X-Gitlab-Event: Pipeline Hook`) read as a CI event, so that a project's
webhook can point at `POST /events/ci/hook` with the shared secret as its secret token and no job sends
anything.

Only the fields used here are read; GitLab's others are ignored. A pipeline that is running is `started`;
`success`, `failed` and `canceled` end it; the other statuses (created, pending, manual, ...) are not
reported."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from opsflow.ci.event import CiEvent

PIPELINE_HOOK = "Pipeline Hook"
STATUSES = {"running": "started", "success": "succeeded", "failed": "failed", "canceled": "cancelled"}


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Attributes(_Loose):
    id: int
    ref: str | None = None
    sha: str | None = None
    status: str
    duration: float | None = None
    url: str | None = None


class _Project(_Loose):
    path_with_namespace: str
    web_url: str | None = None


class _User(_Loose):
    username: str | None = None
    name: str | None = None


class _Author(_Loose):
    name: str | None = None


class _Commit(_Loose):
    title: str | None = None
    author: _Author | None = None


class _Build(_Loose):
    stage: str | None = None
    name: str | None = None
    status: str | None = None


class PipelineHook(_Loose):
    object_kind: str
    object_attributes: _Attributes
    project: _Project
    user: _User | None = None
    commit: _Commit | None = None
    builds: list[_Build] = []


def ci_event(body: dict[str, Any]) -> CiEvent | str:
    """The CI event of a pipeline hook, or why the hook reports none (a status that is not reported).

    Raises pydantic's ValidationError for a body that is not a pipeline event, or whose fields the CI
    event refuses."""
    hook = PipelineHook.model_validate(body)
    pipeline = hook.object_attributes
    status = STATUSES.get(pipeline.status)
    if hook.object_kind != "pipeline" or status is None:
        return (
            f"GitLab pipeline {pipeline.id} is {pipeline.status}: only running, success, failed and canceled "
            "pipelines are reported"
        )
    failed = [build for build in hook.builds if build.status == "failed"]
    stage = failed[0].stage if status == "failed" and failed else None
    url = pipeline.url or (
        f"{hook.project.web_url}/-/pipelines/{pipeline.id}" if hook.project.web_url else None
    )
    fields: dict[str, Any] = {
        "system": "gitlab",
        "pipeline": hook.project.path_with_namespace,
        "run": pipeline.id,
        "status": status,
        "commit": pipeline.sha,
        "branch": pipeline.ref,
        "author": (hook.user.username or hook.user.name) if hook.user else None,
        "url": url,
        "duration_seconds": pipeline.duration if status != "started" else None,
        "stage": stage,
        "message": (
            f"Failed: {', '.join(str(build.name) for build in failed[:5])}"
            if status == "failed" and failed
            else (hook.commit.title if hook.commit else None)
        ),
    }
    return CiEvent.model_validate({key: value for key, value in fields.items() if value is not None})
