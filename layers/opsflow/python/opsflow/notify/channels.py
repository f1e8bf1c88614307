"""Where messages go: channels with filters. Webhook URLs and tokens live in Secrets Manager; a channel
names its secret, never the URL."""

from __future__ import annotations

import json
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from opsflow.notify.message import Message, Severity

# arn:partition:sns:region:account:topic; a FIFO topic (".fifo") cannot be a Chatbot subscription's.
_TOPIC_ARN = re.compile(r"^arn:aws(-[a-z]+)*:sns:[a-z]{2}(-[a-z]+)+-\d:\d{12}:[A-Za-z0-9_-]{1,256}$")


class Channel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, max_length=64)]
    platform: Literal["slack", "teams", "chatbot"]
    webhook_secret: str | None = Field(
        default=None, description="Secrets Manager secret holding the webhook URL"
    )
    bot_token_secret: str | None = Field(
        default=None,
        description="Slack only: secret holding a bot token; messages of a run then share a thread",
    )
    slack_channel: str | None = Field(default=None, description="Slack channel id, with bot_token_secret")
    slack_api_url: str = "https://slack.com/api/"
    topic_arn: str | None = Field(
        default=None,
        description="Chatbot only: the SNS topic a Chatbot channel configuration subscribes to",
    )
    workflows: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()
    pipelines: tuple[str, ...] = ()
    projects: tuple[str, ...] = Field(default=(), description="CodeBuild projects")
    applications: tuple[str, ...] = Field(default=(), description="CodeDeploy applications")
    repositories: tuple[str, ...] = Field(default=(), description="ECR repositories")
    min_severity: Severity = Severity.INFO

    @model_validator(mode="after")
    def _one_way_to_post(self) -> Channel:
        if self.platform == "chatbot":
            if not self.topic_arn:
                raise ValueError(f"channel {self.name}: a chatbot channel needs topic_arn")
            if not _TOPIC_ARN.match(self.topic_arn):
                raise ValueError(
                    f"channel {self.name}: topic_arn {self.topic_arn!r} is not an SNS topic ARN "
                    "(arn:<partition>:sns:<region>:<account>:<topic>)"
                )
            if self.webhook_secret or self.bot_token_secret:
                raise ValueError(f"channel {self.name}: a chatbot channel takes topic_arn, not a secret")
            return self
        if self.topic_arn:
            raise ValueError(f"channel {self.name}: topic_arn is for platform chatbot")
        if bool(self.webhook_secret) == bool(self.bot_token_secret):
            raise ValueError(f"channel {self.name}: give either webhook_secret or bot_token_secret")
        if self.bot_token_secret and (self.platform != "slack" or not self.slack_channel):
            raise ValueError(f"channel {self.name}: a bot token is for Slack, with slack_channel set")
        return self

    @property
    def secret(self) -> str:
        return str(self.webhook_secret or self.bot_token_secret)

    def wants(self, message: Message) -> bool:
        """Every filter a channel sets narrows what it gets; a channel with none gets everything.
        `min_severity` applies to every message; the others let through only messages about what they name
        (a channel with `projects` gets no alarm, say)."""
        if message.severity.rank < self.min_severity.rank:
            return False
        named = (
            (self.workflows, message.workflow),
            (self.environments, message.environment),
            (self.pipelines, message.pipeline),
            (self.projects, message.project),
            (self.applications, message.application),
            (self.repositories, message.repository),
        )
        return all(not wanted or value in wanted for wanted, value in named)


_channels: TypeAdapter[list[Channel]] = TypeAdapter(list[Channel])


def parse_channels(raw: str) -> list[Channel]:
    """The NOTIFY_CHANNELS setting: a JSON list of channels."""
    return _channels.validate_python(json.loads(raw or "[]"))


def routes(message: Message, channels: list[Channel]) -> list[Channel]:
    return [channel for channel in channels if channel.wants(message)]
