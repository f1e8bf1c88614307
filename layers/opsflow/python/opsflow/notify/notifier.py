"""From an event to delivered messages: build, route, render, deliver; park what cannot be delivered in
a dead-letter queue, from which `redrive` delivers it later. A delivery problem is never raised: a
notification must not fail or block anything.

With a state store, an event already sent to a channel is not sent again, and the events of a burst (a
pipeline run's) are folded into one summary per channel (bursts.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from opsflow.errors import OpsflowError
from opsflow.notify import teams
from opsflow.notify.build import build_message
from opsflow.notify.bursts import Folded, fold, summarize, unsettled, worth_a_reply
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
from opsflow.notify.message import Burst, Message
from opsflow.runs.dead_letters import DeadLetters, redrive
from opsflow.store.notify_state import NotifyState
from opsflow.store.runs import RunStore

# Outcomes that need no redrive: sent, or deliberately not sent.
HANDLED = frozenset({"delivered", "duplicate", "summarized"})
# How long a summary waits for a burst's events still on their way, and a reply for its thread to start.
SETTLE_SECONDS = 4.0
_POLL_SECONDS = 0.25


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
    state: NotifyState | None = None  # de-duplication and bursts; without it, every event is sent
    settle_seconds: float = SETTLE_SECONDS

    def notify(self, event: dict[str, Any], deadline: float | None = None) -> list[dict[str, Any]]:
        """One outcome per channel the message is for: delivered, dead-lettered, or (if even the
        dead-letter queue failed) lost; duplicate (the channel had it already) or summarized (a burst's
        event, shown in its summary). Never raises: a failed invocation would be retried by Lambda and
        send the channels that already got the message a second copy."""
        message = build_message(event, run=self._run_of(event), instance_tags=self.instance_tags)
        if message is None:
            return []
        event_id = str(event.get("id", ""))
        entries = self._fold(message, str(event.get("time", "")))
        burst = message.burst
        if entries is not None and burst is not None and burst.part is None and burst.closes:
            entries = self._settled(burst.key, entries)
        outcomes = []
        for channel in routes(message, self.channels):
            if event_id and not self._first_delivery(event_id, channel):
                outcomes.append({"channel": channel.name, "outcome": "duplicate"})
            elif entries is not None and message.burst is not None and self.state is not None:
                outcomes.append(
                    self._burst(channel, message, message.burst, self.state, entries, event_id, deadline)
                )
            else:
                payload = render(channel.platform, message)
                outcomes.append(self._deliver(channel, payload, event_id, message.run_id, deadline))
        return outcomes

    # De-duplication and bursts: a state store that fails costs the quiet, never the message. -----------

    def _first_delivery(self, event_id: str, channel: Channel) -> bool:
        if self.state is None:
            return True
        try:
            return self.state.first_delivery(event_id, channel.name)
        except Exception:  # noqa: BLE001 - better a second copy than none
            return True

    def _fold(self, message: Message, time: str) -> list[Folded] | None:
        if message.burst is None or self.state is None or not self.channels:
            return None
        folded = fold(message, time)
        try:
            return [
                Folded.from_json(entry)
                for entry in self.state.fold(message.burst.key, folded.entry_id, folded.to_json())
            ]
        except Exception:  # noqa: BLE001 - the event is then sent on its own
            return None

    def _entries(self, key: str, known: list[Folded]) -> list[Folded]:
        try:
            return [Folded.from_json(entry) for entry in self.state.entries(key)] if self.state else known
        except Exception:  # noqa: BLE001
            return known

    def _burst(
        self,
        channel: Channel,
        message: Message,
        burst: Burst,
        state: NotifyState,
        entries: list[Folded],
        event_id: str,
        deadline: float | None,
    ) -> dict[str, Any]:
        """A channel that can update a message keeps one per burst up to date, and replies in its thread
        when a part fails or the run ends; any other gets the first event that reaches it and, at the
        end, the summary."""
        if channel.bot_token_secret:
            return self._deliver(
                channel,
                render(channel.platform, summarize(message, entries)),
                event_id,
                None,
                deadline,
                send=lambda: self._keep_up_to_date(channel, message, burst.key, state, entries),
            )
        last = burst.part is None and burst.closes
        try:
            claimed = state.claim(burst.key, channel.name, "last" if last else "first")
        except Exception:  # noqa: BLE001 - unsure whether it was sent: send it
            claimed = True
        if not claimed:
            return {"channel": channel.name, "outcome": "summarized"}
        summary = summarize(message, entries)
        return self._deliver(channel, render(channel.platform, summary), event_id, None, deadline)

    def _settled(self, key: str, entries: list[Folded]) -> list[Folded]:
        """The run is over: wait a moment for its parts' last events, so the summary says how they
        ended."""
        for _ in range(int(self.settle_seconds / _POLL_SECONDS)):
            if not unsettled(entries):
                break
            self.sleep(_POLL_SECONDS)
            entries = self._entries(key, entries)
        return entries

    def _keep_up_to_date(
        self, channel: Channel, message: Message, key: str, state: NotifyState, entries: list[Folded]
    ) -> int:
        from opsflow.notify import slack, slack_api

        token = self._secret_of(channel)
        where = {"api_url": channel.slack_api_url, "token": token, "channel": str(channel.slack_channel)}
        if state.claim(key, channel.name, "first"):
            ts = slack_api.post_message(**where, payload=slack.payload(summarize(message, entries)))
            with contextlib.suppress(Exception):  # the message is out; a lost ts only costs the updates
                state.set_parent(key, channel.name, ts)
            return 1
        parent = self._parent(key, channel, state)
        entries = self._entries(key, entries)
        summary = slack.payload(summarize(message, entries))
        if parent is None:  # the first message never got out: this one starts the burst's thread
            ts = slack_api.post_message(**where, payload=summary)
            with contextlib.suppress(Exception):
                state.set_parent(key, channel.name, ts)
            return 1
        slack_api.update_message(**where, ts=parent, payload=summary)
        if worth_a_reply(message, entries):
            slack_api.post_message(**where, payload=slack.payload(message), thread_ts=parent)
        return 1

    def _parent(self, key: str, channel: Channel, state: NotifyState) -> str | None:
        """The burst's message in the channel; a moment's wait if another invocation is posting it."""
        for attempt in range(int(self.settle_seconds / _POLL_SECONDS) + 1):
            try:
                ts = state.parent(key, channel.name)
            except Exception:  # noqa: BLE001
                return None
            if ts is not None:
                return ts
            if attempt < int(self.settle_seconds / _POLL_SECONDS):
                self.sleep(_POLL_SECONDS)
        return None

    def redrive(self) -> dict[str, int]:
        """Deliver what the dead-letter queue holds: messages this function parked, and events that
        EventBridge could not deliver or whose invocation failed. What fails again stays, for the next
        redrive."""
        by_name = {channel.name: channel for channel in self.channels}

        def deliver_again(body: dict[str, Any]) -> bool:
            if "detail-type" in body:  # an event: notify as if it had just arrived
                return all(o["outcome"] in HANDLED for o in self.notify(body))
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
        send: Callable[[], int] | None = None,
    ) -> dict[str, Any]:
        """Send (by default, post `payload`); what fails is parked with `payload` for the redrive."""
        try:
            attempts = send() if send else self._post(channel, payload, run_id, deadline)
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
        secret = self._secret_of(channel)
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

    def _secret_of(self, channel: Channel) -> str:
        secret = self.secret(channel)
        if not secret or secret == "None":
            raise DeliveryFailed(f"secret {channel.secret} holds no webhook URL or token")
        return secret

    def _run_of(self, event: dict[str, Any]) -> dict[str, Any] | None:
        if self.runs is None or event.get("source") != "aws.states":
            return None
        run = self.runs.get(str((event.get("detail") or {}).get("name", "")))
        return run.as_dict() if run else None
