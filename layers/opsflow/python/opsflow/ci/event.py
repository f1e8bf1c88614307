"""The event a CI server sends to `POST /events/ci` (or `/events/ci/hook`) about one run of a pipeline, and
the EventBridge event it becomes: source `opsflow.ci`, detail-type `CI Run State Change`, on the default
bus, where the notify function's rule picks it up."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, WithJsonSchema

from opsflow.runs.requests import REQUEST_CONFIG

SOURCE = "opsflow.ci"
DETAIL_TYPE = "CI Run State Change"

System = Literal["jenkins", "gitlab", "bitbucket", "other"]
RunStatus = Literal["started", "succeeded", "failed", "cancelled"]

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# A week: longer than any CI server lets a run go on.
MAX_DURATION_SECONDS = 7 * 24 * 3600


def _shown(text: str) -> str:
    """Text as a chat message may show it: without control characters, and with `<` and `>` replaced by
    look-alikes, so that a commit message cannot become a Slack mention (`<!channel>`) or a hidden link."""
    return _CONTROL.sub("", text).replace("<", "‹").replace(">", "›").strip()  # noqa: RUF001 - on purpose


def _one_line(text: str) -> str:
    shown = " ".join(_shown(text).split())
    if not shown:
        raise ValueError("must hold some text")
    return shown


def _run_as_text(value: Any) -> Any:
    """A run number (Jenkins' BUILD_NUMBER, GitLab's CI_PIPELINE_ID) or an id, kept as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("a run number is 0 or more")
        return str(value)
    if not isinstance(value, str):
        raise ValueError("must be the run's number (0 or more) or its id (text)")
    return value


def _web_address(url: str) -> str:
    if not re.fullmatch(r"https?://[^\s<>\"]+", url):
        raise ValueError("must be an http:// or https:// URL, without spaces")
    return url


_RUN_ID = r"^[A-Za-z0-9][A-Za-z0-9._:#/-]*$"
Name = Annotated[str, AfterValidator(_one_line), Field(min_length=1, max_length=200)]
RunId = Annotated[
    str,
    BeforeValidator(_run_as_text),
    Field(min_length=1, max_length=100, pattern=_RUN_ID),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "minLength": 1, "maxLength": 100, "pattern": _RUN_ID},
            ],
            "description": "The run's number or id: Jenkins' BUILD_NUMBER, GitLab's CI_PIPELINE_ID, "
            "Bitbucket's BITBUCKET_BUILD_NUMBER.",
        }
    ),
]


class CiEvent(BaseModel):
    """What a CI server reports about one run of a pipeline: it started, or how it ended."""

    model_config = REQUEST_CONFIG

    system: System = Field(description="The CI server: jenkins, gitlab, bitbucket or other.")
    pipeline: Name = Field(
        description="The job or pipeline (Jenkins' JOB_NAME, GitLab's CI_PROJECT_PATH). Channels whose "
        "`pipelines` filter names it get its messages."
    )
    run: RunId
    status: RunStatus = Field(description="started, succeeded, failed or cancelled.")
    commit: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")] | None = Field(
        default=None, description="The commit built (a SHA; a revision)."
    )
    branch: Name | None = None
    author: Name | None = Field(default=None, description="Who pushed or started the run.")
    url: Annotated[str, AfterValidator(_web_address), Field(max_length=2048)] | None = Field(
        default=None, description="The run's page on the CI server (http or https)."
    )
    duration_seconds: Annotated[float, Field(ge=0, le=MAX_DURATION_SECONDS)] | None = Field(
        default=None, description="How long the run took, once it has ended."
    )
    stage: Name | None = Field(default=None, description="The stage it is at, or failed at.")
    message: Annotated[str, AfterValidator(_shown), Field(max_length=2000)] | None = Field(
        default=None, description="Why it failed, or anything else to show with it."
    )

    def detail(self, reported_by: dict[str, str]) -> dict[str, Any]:
        """The EventBridge event's detail: the event's fields, and how its sender was authenticated."""
        return {**self.model_dump(exclude_none=True), "reported_by": reported_by}
