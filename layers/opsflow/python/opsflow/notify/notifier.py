"""From an event to delivered messages: build, route, render, deliver; park what cannot be delivered in
a dead-letter queue, from which `redrive` delivers it later. A delivery problem is never raised: a
notification must not fail or block anything."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from opsflow.errors import OpsflowError
from opsflow.notify import teams
from opsflow.notify.build import build_message
from opsflow.notify.channels import Channel, routes
from opsflow.notify.delivery import (
    DeliveryFailed,
    Poster,
    Publisher,
    deliver,
    publish,
    sns_publish,
    urllib_post,
)
from opsflow.notify.health import InstanceTags
from opsflow.notify.message import Message
from opsflow.runs.dead_letters import DeadLetters, redrive
from opsflow.store.runs import RunStore


def render(platform: str, message: Message) -> dict[str, Any]:
    """The message as the platform's payload. The Slack modules are imported when a message first goes to
    Slack: slack_sdk adds about 30 ms to a cold start, which a Teams-only deployment, and an invocation
    whose event sends nothing, need not pay."""
    if platform == "slack":
        from opsflow.notify import slack

        return slack.payload(message)
    if platform == "chatbot":
        from opsflow.notify import chatbot

        return chatbot.payload(message)
    return teams.payload(message)


class Threads(Protocol):
    """Where a run's Slack thread is kept: the ts of its first message, per channel."""

    def thread(self, run_id: str, channel: str) -> str | None: ...

    def set_thread(self, run_id: str, channel: str, ts: str) -> None: ...


@dataclass
class Notifier:
    channels: list[Channel]
    secret: Callable[[Channel], str]  # the webhook URL, or the bot token
    dead_letters: DeadLetters
    runs: RunStore | None = None
    threads: Threads | None = None
    instance_tags: InstanceTags | None = None  # for the instances an AWS Health event names
    post: Poster = urllib_post
    publisher: Publisher = sns_publish  # for chatbot channels: SNS Publish
    sleep: Callable[[float], None] = field(default=lambda seconds: None)

    def notify(self, event: dict[str, Any], deadline: float | None = None) -> list[dict[str, Any]]:
        """One outcome per channel the message went to: delivered, dead-lettered, or (if even the
        dead-letter queue failed) lost. Never raises: a failed invocation would be retried by Lambda and
        send the channels that already got the message a second copy."""
        message = build_message(event, run=self._run_of(event), instance_tags=self.instance_tags)
        if message is None:
            return []
        outcomes = []
        for channel in routes(message, self.channels):
            payload = render(channel.platform, message)
            outcomes.append(
                self._deliver(channel, payload, str(event.get("id", "")), message.run_id, deadline)
            )
        return outcomes

    def redrive(self) -> dict[str, int]:
        """Deliver what the dead-letter queue holds: messages this function parked, and events that
        EventBridge could not deliver or whose invocation failed. What fails again stays, for the next
        redrive."""
        by_name = {channel.name: channel for channel in self.channels}

        def deliver_again(body: dict[str, Any]) -> bool:
            if "detail-type" in body:  # an event: notify as if it had just arrived
                return all(o["outcome"] == "delivered" for o in self.notify(body))
            channel = by_name.get(body.get("channel", ""))
            return channel is not None and self._try_post(channel, body["payload"], body.get("run_id"))

        result = redrive(self.dead_letters, deliver_again)
        return {"delivered": result.handled, "failed": result.failed}

    def _try_post(self, channel: Channel, payload: dict[str, Any], run_id: str | None) -> bool:
        try:
            self._post(channel, payload, run_id, deadline=None)
        except OpsflowError:
            return False
        return True

    def _deliver(
        self,
        channel: Channel,
        payload: dict[str, Any],
        event_id: str,
        run_id: str | None,
        deadline: float | None,
    ) -> dict[str, Any]:
        try:
            attempts = self._post(channel, payload, run_id, deadline)
            return {"channel": channel.name, "outcome": "delivered", "attempts": attempts}
        except OpsflowError as error:
            problem = error.message
        except Exception as error:  # noqa: BLE001 - only its type: a message could quote a secret
            problem = f"unexpected {type(error).__name__}"
        parked = {
            "channel": channel.name,
            "platform": channel.platform,
            "event_id": event_id,
            "run_id": run_id,
            "error": problem,
            "payload": payload,
        }
        try:
            self.dead_letters.send(parked)
        except Exception as error:  # noqa: BLE001 - nothing left to try; say so in the outcome
            return {
                "channel": channel.name,
                "outcome": "lost",
                "error": f"{problem}; dead-letter queue: {type(error).__name__}",
            }
        return {"channel": channel.name, "outcome": "dead-lettered", "error": problem}

    def _post(
        self, channel: Channel, payload: dict[str, Any], run_id: str | None, deadline: float | None
    ) -> int:
        if channel.platform == "chatbot":
            return publish(
                str(channel.topic_arn),
                payload,
                publisher=self.publisher,
                sleep=self.sleep,
                deadline=deadline,
            )
        secret = self.secret(channel)
        if not secret or secret == "None":
            raise DeliveryFailed(f"secret {channel.secret} holds no webhook URL or token")
        if not channel.bot_token_secret:
            return deliver(secret, payload, post=self.post, sleep=self.sleep, deadline=deadline)
        from opsflow.notify import slack_api

        thread = self.threads.thread(run_id, channel.name) if self.threads and run_id else None
        ts = slack_api.post_message(
            api_url=channel.slack_api_url,
            token=secret,
            channel=str(channel.slack_channel),
            payload=payload,
            thread_ts=thread,
        )
        if self.threads and run_id and thread is None:
            # The message is out; failing to remember its thread must not send it again.
            with contextlib.suppress(Exception):
                self.threads.set_thread(run_id, channel.name, ts)
        return 1

    def _run_of(self, event: dict[str, Any]) -> dict[str, Any] | None:
        if self.runs is None or event.get("source") != "aws.states":
            return None
        run = self.runs.get(str((event.get("detail") or {}).get("name", "")))
        return run.as_dict() if run else None
