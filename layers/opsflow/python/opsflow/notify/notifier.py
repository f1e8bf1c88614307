"""From an event to delivered messages: build, route, render, deliver; park what cannot be delivered in
a dead-letter queue, from which `redrive` delivers it later. A delivery problem is never raised: a
notification must not fail or block anything."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from opsflow.errors import OpsflowError
from opsflow.notify import slack, slack_api, teams
from opsflow.notify.build import build_message
from opsflow.notify.channels import Channel, routes
from opsflow.notify.delivery import Poster, deliver, urllib_post
from opsflow.store.runs import RunStore

RENDERERS: dict[str, Callable[[Any], dict[str, Any]]] = {"slack": slack.payload, "teams": teams.payload}


class Threads(Protocol):
    """Where a run's Slack thread is kept: the ts of its first message, per channel."""

    def thread(self, run_id: str, channel: str) -> str | None: ...

    def set_thread(self, run_id: str, channel: str, ts: str) -> None: ...


class DeadLetters(Protocol):
    def send(self, body: dict[str, Any]) -> None: ...

    def receive(self) -> list[tuple[str, dict[str, Any]]]:
        """Up to a batch of (receipt, body)."""

    def delete(self, receipt: str) -> None: ...


@dataclass
class Notifier:
    channels: list[Channel]
    secret: Callable[[Channel], str]  # the webhook URL, or the bot token
    dead_letters: DeadLetters
    runs: RunStore | None = None
    threads: Threads | None = None
    post: Poster = urllib_post
    sleep: Callable[[float], None] = field(default=lambda seconds: None)

    def notify(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """One outcome per channel the message went to: delivered (with attempts) or dead-lettered."""
        message = build_message(event, run=self._run_of(event))
        if message is None:
            return []
        outcomes = []
        for channel in routes(message, self.channels):
            payload = RENDERERS[channel.platform](message)
            outcomes.append(
                self._deliver(channel, payload, event_id=str(event.get("id", "")), run_id=message.run_id)
            )
        return outcomes

    def redrive(self) -> dict[str, int]:
        """Deliver what the dead-letter queue holds; what fails again stays there."""
        delivered = failed = 0
        by_name = {channel.name: channel for channel in self.channels}
        while batch := self.dead_letters.receive():
            for receipt, body in batch:
                channel = by_name.get(body.get("channel", ""))
                if channel is None:
                    failed += 1
                    continue
                try:
                    self._post(channel, body["payload"], body.get("run_id"))
                except OpsflowError:
                    failed += 1
                    continue
                self.dead_letters.delete(receipt)
                delivered += 1
            if failed:
                break  # what is left failed again now; leave it for the next redrive
        return {"delivered": delivered, "failed": failed}

    def _deliver(
        self, channel: Channel, payload: dict[str, Any], event_id: str, run_id: str | None
    ) -> dict[str, Any]:
        try:
            attempts = self._post(channel, payload, run_id)
            return {"channel": channel.name, "outcome": "delivered", "attempts": attempts}
        except OpsflowError as error:
            self.dead_letters.send(
                {
                    "channel": channel.name,
                    "platform": channel.platform,
                    "event_id": event_id,
                    "run_id": run_id,
                    "error": error.message,
                    "payload": payload,
                }
            )
            return {"channel": channel.name, "outcome": "dead-lettered", "error": error.message}

    def _post(self, channel: Channel, payload: dict[str, Any], run_id: str | None) -> int:
        if not channel.bot_token_secret:
            return deliver(self.secret(channel), payload, post=self.post, sleep=self.sleep)
        thread = self.threads.thread(run_id, channel.name) if self.threads and run_id else None
        ts = slack_api.post_message(
            api_url=channel.slack_api_url,
            token=self.secret(channel),
            channel=str(channel.slack_channel),
            payload=payload,
            thread_ts=thread,
        )
        if self.threads and run_id and thread is None:
            self.threads.set_thread(run_id, channel.name, ts)
        return 1

    def _run_of(self, event: dict[str, Any]) -> dict[str, Any] | None:
        if self.runs is None or event.get("source") != "aws.states":
            return None
        run = self.runs.get(str((event.get("detail") or {}).get("name", "")))
        return run.as_dict() if run else None
