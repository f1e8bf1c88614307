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


class InThreadFailed(DeliveryFailed):
    """A reply in a burst's thread (or the update of its message) that failed: parked as a reply there."""

    def __init__(self, message: str, payload: dict[str, Any], thread_ts: str) -> None:
        super().__init__(message)
        self.payload = payload
        self.thread_ts = thread_ts


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
        outcomes = []
        pending = []
        for channel in routes(message, self.channels):
            if event_id and self._already_sent(event_id, channel):
                outcomes.append({"channel": channel.name, "outcome": "duplicate"})
            else:
                pending.append(channel)
        burst = message.burst
        if pending and entries is not None and burst is not None and burst.part is None and burst.closes:
            entries = self._settled(burst.key, entries)
        for channel in pending:
            outcome = None
            if entries is not None and burst is not None and self.state is not None:
                try:
                    outcome = self._burst(channel, message, burst, self.state, entries, event_id, deadline)
                except Exception:  # noqa: BLE001 - a fault in the summary: send the event as it is
                    outcome = None
            if outcome is None:
                payload = render(channel.platform, message)
                outcome = self._deliver(channel, payload, event_id, message.run_id, deadline)
            if event_id and outcome["outcome"] == "delivered":
                self._remember(event_id, channel)
            outcomes.append(outcome)
        return outcomes

    # De-duplication and bursts: a state store that fails costs the quiet, never the message. -----------

    def _already_sent(self, event_id: str, channel: Channel) -> bool:
        if self.state is None:
            return False
        try:
            return self.state.delivered(event_id, channel.name)
        except Exception:  # noqa: BLE001 - better a second copy than none
            return False

    def _remember(self, event_id: str, channel: Channel) -> None:
        if self.state is not None:
            with contextlib.suppress(Exception):  # the message is out; a repeat would be sent again
                self.state.remember(event_id, channel.name)

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
                send=lambda: self._keep_up_to_date(channel, message, burst.key, state, entries, event_id),
            )
        last = burst.part is None and burst.closes
        try:
            claimed = state.claim(burst.key, channel.name, "last" if last else "first", event_id)
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
        self,
        channel: Channel,
        message: Message,
        key: str,
        state: NotifyState,
        entries: list[Folded],
        event_id: str,
    ) -> int:
        """Post the burst's message, or update it and reply in its thread. Returns 0 when nothing was
        sent (the event is shown by the summary); a failed update or reply is parked as a reply in the
        thread, for the redrive."""
        from opsflow.notify import slack, slack_api

        token = self._secret_of(channel)
        where = {"api_url": channel.slack_api_url, "token": token, "channel": str(channel.slack_channel)}
        if state.claim(key, channel.name, "first", event_id):
            ts = slack_api.post_message(**where, payload=slack.payload(summarize(message, entries)))
            with contextlib.suppress(Exception):  # the message is out; a lost ts only costs the updates
                state.set_parent(key, channel.name, ts)
            return 1
        parent = self._parent(key, channel, state)
        replies = worth_a_reply(message, entries)
        if parent is None:
            # Another invocation took the first message but its ts is not known (yet): no second message
            # at the top of the channel, unless this one is worth telling on its own.
            if not replies:
                return 0
            slack_api.post_message(**where, payload=slack.payload(message))
            return 1
        summary = slack.payload(summarize(message, self._entries(key, entries)))
        try:
            slack_api.update_message(**where, ts=parent, payload=summary)
            if replies:
                slack_api.post_message(**where, payload=slack.payload(message), thread_ts=parent)
        except DeliveryFailed as error:
            raise InThreadFailed(
                error.message, slack.payload(message) if replies else summary, parent
            ) from None
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
            return channel is not None and self._try_post(
                channel, body["payload"], body.get("run_id"), body.get("thread_ts")
            )

        result = redrive(self.dead_letters, deliver_again)
        return {"delivered": result.handled, "failed": result.failed}

    def _try_post(
        self, channel: Channel, payload: dict[str, Any], run_id: str | None, thread_ts: str | None = None
    ) -> bool:
        try:
            self._post(channel, payload, run_id, deadline=None, thread_ts=thread_ts)
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
        thread_ts = None
        try:
            attempts = send() if send else self._post(channel, payload, run_id, deadline)
            if attempts == 0:
                return {"channel": channel.name, "outcome": "summarized"}
            return {"channel": channel.name, "outcome": "delivered", "attempts": attempts}
        except InThreadFailed as error:
            problem, payload, thread_ts = error.message, error.payload, error.thread_ts
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
        if thread_ts:
            parked["thread_ts"] = thread_ts
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
        self,
        channel: Channel,
        payload: dict[str, Any],
        run_id: str | None,
        deadline: float | None,
        thread_ts: str | None = None,
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

        thread = thread_ts or (self.threads.thread(run_id, channel.name) if self.threads and run_id else None)
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
