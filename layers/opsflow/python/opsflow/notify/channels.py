"""Where messages go: channels with filters. Webhook URLs and tokens live in Secrets Manager; a channel
names its secret, never the URL."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from opsflow.notify.message import Message, Severity


class Channel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, max_length=64)]
    platform: Literal["slack", "teams"]
    webhook_secret: Annotated[
        str, Field(min_length=1, description="Secrets Manager name or ARN of the webhook URL")
    ]
    workflows: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()
    pipelines: tuple[str, ...] = ()
    min_severity: Severity = Severity.INFO

    def wants(self, message: Message) -> bool:
        """Every filter a channel sets narrows what it gets; a channel with none gets everything."""
        if message.severity.rank < self.min_severity.rank:
            return False
        if self.workflows and message.workflow not in self.workflows:
            return False
        if self.environments and message.environment not in self.environments:
            return False
        return not (self.pipelines and message.pipeline not in self.pipelines)


_channels: TypeAdapter[list[Channel]] = TypeAdapter(list[Channel])


def parse_channels(raw: str) -> list[Channel]:
    """The NOTIFY_CHANNELS setting: a JSON list of channels."""
    return _channels.validate_python(json.loads(raw or "[]"))


def routes(message: Message, channels: list[Channel]) -> list[Channel]:
    return [channel for channel in channels if channel.wants(message)]
