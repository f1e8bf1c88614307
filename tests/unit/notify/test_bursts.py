"""A summary instead of a flood, and each event once per channel: bursts.py and the notifier, with the
in-memory state store, fake webhooks and a fake Slack Web API."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from opsflow.notify import slack_api
from opsflow.notify.build import build_message
from opsflow.notify.bursts import Folded, fold, summarize, unsettled
from opsflow.notify.channels import Channel, parse_channels
from opsflow.notify.message import Message, Status
from opsflow.notify.notifier import Notifier
from opsflow.store.notify_state import InMemoryNotifyState
from tests.unit.notify.test_notifier import Queue, Webhooks

EVENTS = Path(__file__).resolve().parents[3] / "events"
PIPELINE = "web-deploy"
ACTION = {"stage": "Build", "action": "CodeBuild"}
BUILD_FAILED = {
    "external-execution-summary": "Build failed: npm test exited with 1",
    "external-execution-url": "https://console.aws.amazon.com/codebuild/home#/builds/web:42/view/new",
    "error-code": "JobFailed",
}


def pipeline_event(kind: str, state: str, second: int, **detail: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"{kind}-{state}-{second}",
        "detail-type": f"CodePipeline {kind} Execution State Change",
        "source": "aws.codepipeline",
        "account": "123456789012",
        "time": f"2026-12-03T10:00:{second:02d}Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"pipeline": PIPELINE, "execution-id": "e-1", "state": state} | detail,
    }


# The six events of a run failing in its build, in the order CodePipeline emits them.
FAILING_RUN = [
    pipeline_event("Pipeline", "STARTED", 0),
    pipeline_event("Stage", "STARTED", 1, stage="Build"),
    pipeline_event("Action", "STARTED", 1, **ACTION),
    pipeline_event("Action", "FAILED", 3, **ACTION, **{"execution-result": BUILD_FAILED}),
    pipeline_event("Stage", "FAILED", 3, stage="Build"),
    pipeline_event("Pipeline", "FAILED", 4),
]
FAILED_TITLE = "Pipeline web-deploy: failed at Build / CodeBuild"


def message_of(event: dict[str, Any]) -> Message:
    message = build_message(event)
    assert message is not None
    return message


def folded(events: list[dict[str, Any]]) -> list[Folded]:
    return [Folded.from_json(fold(message_of(e), e["time"]).to_json()) for e in events]


# The summary ---------------------------------------------------------------------------------------


def test_the_summary_of_a_run_under_way_says_where_it_is() -> None:
    summary = summarize(message_of(FAILING_RUN[2]), folded(FAILING_RUN[:3]))

    assert summary.title == "Pipeline web-deploy: in progress at Build / CodeBuild"
    assert summary.status == Status.IN_PROGRESS
    # A stage with actions is shown by its actions.
    assert dict(summary.facts)["Steps"] == "Build / CodeBuild ⏳"


def test_a_failed_action_is_the_summary_before_the_run_has_ended() -> None:
    summary = summarize(message_of(FAILING_RUN[3]), folded(FAILING_RUN[:4]))

    assert summary.title == "Pipeline web-deploy: Build / CodeBuild failed"
    assert summary.status == Status.FAILED
    assert summary.cause == "Build failed: npm test exited with 1"


def test_the_summary_of_a_failed_run_names_the_action_its_cause_error_code_and_links() -> None:
    summary = summarize(message_of(FAILING_RUN[-1]), folded(FAILING_RUN))

    assert summary.title == FAILED_TITLE
    assert summary.cause == "Build failed: npm test exited with 1"
    assert dict(summary.facts) == {
        "Execution": "e-1",
        "Steps": "Build / CodeBuild ❌",
        "Error code": "JobFailed",
    }
    assert [link.label for link in summary.links] == ["Open pipeline", "Open action details"]


def test_events_out_of_order_give_the_same_summary() -> None:
    in_order = summarize(message_of(FAILING_RUN[-1]), folded(FAILING_RUN))
    shuffled = summarize(message_of(FAILING_RUN[0]), folded(list(reversed(FAILING_RUN))))

    assert (shuffled.title, shuffled.status, shuffled.cause) == (
        in_order.title,
        in_order.status,
        in_order.cause,
    )


def test_a_run_that_ended_with_a_part_still_running_is_unsettled() -> None:
    assert unsettled(folded([*FAILING_RUN[:3], FAILING_RUN[-1]]))
    assert not unsettled(folded(FAILING_RUN))


def test_a_run_that_succeeded_lists_its_steps_in_the_order_they_began() -> None:
    run = [
        pipeline_event("Pipeline", "STARTED", 0),
        pipeline_event("Action", "STARTED", 1, stage="Source", action="Checkout"),
        pipeline_event("Action", "SUCCEEDED", 2, stage="Source", action="Checkout"),
        pipeline_event("Action", "STARTED", 3, **ACTION),
        pipeline_event("Action", "SUCCEEDED", 5, **ACTION),
        pipeline_event("Pipeline", "SUCCEEDED", 6),
    ]

    summary = summarize(message_of(run[-1]), folded(run))

    assert summary.title == "Pipeline web-deploy: succeeded"
    assert dict(summary.facts)["Steps"] == "Source / Checkout ✅ · Build / CodeBuild ✅"


# The notifier -------------------------------------------------------------------------------------

CHANNELS = parse_channels(
    json.dumps(
        [
            {"name": "hook", "platform": "slack", "webhook_secret": "opsflow/hook"},
            {"name": "cards", "platform": "teams", "webhook_secret": "opsflow/cards"},
            {
                "name": "oncall",
                "platform": "slack",
                "webhook_secret": "opsflow/oncall",
                "min_severity": "critical",
            },
            {
                "name": "bot",
                "platform": "slack",
                "bot_token_secret": "opsflow/bot",
                "slack_channel": "C0DEPLOYS",
            },
        ]
    )
)


def url(channel: Channel) -> str:
    return f"https://hooks.example/{channel.name}"


class SlackApi:
    """chat.postMessage and chat.update, as the notifier calls them through slack_api."""

    def __init__(self) -> None:
        self.messages: dict[str, dict[str, Any]] = {}  # ts -> payload and thread
        self.updates = 0
        self._lock = threading.Lock()

    def post(self, *, payload: dict[str, Any], thread_ts: str | None = None, **_: Any) -> str:
        with self._lock:
            ts = f"1800000000.{len(self.messages) + 1:06d}"
            self.messages[ts] = {"text": payload["text"], "thread_ts": thread_ts}
        return ts

    def update(self, *, ts: str, payload: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.messages[ts]["text"] = payload["text"]
            self.updates += 1


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> SlackApi:
    fake = SlackApi()
    monkeypatch.setattr(slack_api, "post_message", fake.post)
    monkeypatch.setattr(slack_api, "update_message", fake.update)
    return fake


def notifier(webhooks: Webhooks, state: Any, **options: Any) -> Notifier:
    return Notifier(
        channels=CHANNELS, secret=url, dead_letters=Queue(), post=webhooks, state=state, **options
    )


def texts(webhooks: Webhooks, channel: str) -> list[str]:
    found = webhooks.received.get(f"https://hooks.example/{channel}", [])
    return [m.get("text") or m["attachments"][0]["content"]["body"][0]["text"] for m in found]


def test_six_events_are_two_webhook_messages_and_one_slack_thread(slack: SlackApi) -> None:
    webhooks = Webhooks()
    notify = notifier(webhooks, InMemoryNotifyState())

    outcomes = [notify.notify(e) for e in FAILING_RUN]

    assert texts(webhooks, "hook") == ["⏳ Pipeline web-deploy: started", f"❌ {FAILED_TITLE}"]
    assert texts(webhooks, "cards") == ["⏳ Pipeline web-deploy: started", f"❌ {FAILED_TITLE}"]
    # On call wants failures only: the action's, as it happened, then the run's summary.
    assert texts(webhooks, "oncall") == [
        "❌ Pipeline web-deploy: Build / CodeBuild failed",
        f"❌ {FAILED_TITLE}",
    ]
    (parent, *replies) = slack.messages.items()
    assert parent[1] == {"text": f"❌ {FAILED_TITLE}", "thread_ts": None}
    assert [reply["thread_ts"] for _, reply in replies] == [parent[0], parent[0]]
    assert [reply["text"] for _, reply in replies] == [
        "❌ Pipeline web-deploy at Build / CodeBuild: failed",
        "❌ Pipeline web-deploy: failed",
    ]
    assert slack.updates == 5
    summarized = [o["channel"] for each in outcomes for o in each if o["outcome"] == "summarized"]
    assert sorted(summarized) == sorted(["hook", "cards"] * 4 + ["oncall"])


def test_an_event_delivered_again_is_not_sent_again(slack: SlackApi) -> None:
    webhooks = Webhooks()
    notify = notifier(webhooks, InMemoryNotifyState())
    alarm = {
        "id": "alarm-1",
        "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change",
        "region": "us-east-1",
        "detail": {"alarmName": "web-5xx", "state": {"value": "ALARM", "reason": "5xx above 1 %"}},
    }

    first, again = notify.notify(alarm), notify.notify(alarm)

    assert {o["outcome"] for o in first} == {"delivered"}
    assert again == [{"channel": o["channel"], "outcome": "duplicate"} for o in first]
    assert len(texts(webhooks, "hook")) == 1
    # Redrive counts a repeat as handled: the channel has the message.
    assert notify.redrive() == {"delivered": 0, "failed": 0}


def test_the_summary_waits_for_an_action_whose_event_comes_just_after_the_runs_end(slack: SlackApi) -> None:
    """Concurrent invocations, as Lambda runs them: the run's end is delivered while the action's
    failure is still on its way."""
    webhooks = Webhooks()
    notify = notifier(webhooks, InMemoryNotifyState(), sleep=time.sleep, settle_seconds=3.0)
    for e in FAILING_RUN[:3]:
        notify.notify(e)

    run_end = threading.Thread(target=notify.notify, args=(FAILING_RUN[-1],))
    run_end.start()
    time.sleep(0.3)
    notify.notify(FAILING_RUN[3])
    run_end.join(timeout=10)

    assert texts(webhooks, "hook") == ["⏳ Pipeline web-deploy: started", f"❌ {FAILED_TITLE}"]


def test_racing_invocations_still_send_a_webhook_at_most_two_messages(slack: SlackApi) -> None:
    webhooks = Webhooks()
    notify = notifier(webhooks, InMemoryNotifyState(), sleep=time.sleep, settle_seconds=1.0)
    threads = [threading.Thread(target=notify.notify, args=(e,)) for e in FAILING_RUN]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert 1 <= len(texts(webhooks, "hook")) <= 2
    assert texts(webhooks, "hook")[-1].startswith("❌ Pipeline web-deploy: failed")
    tops = [m for m in slack.messages.values() if m["thread_ts"] is None]
    assert len(tops) == 1


class BrokenState(InMemoryNotifyState):
    def delivered(self, event_id: str, channel: str) -> bool:
        raise OSError("DynamoDB is unreachable")

    def fold(self, key: str, entry_id: str, entry: str) -> list[str]:
        raise OSError("DynamoDB is unreachable")


def test_without_its_state_store_every_event_is_still_sent(slack: SlackApi) -> None:
    webhooks = Webhooks()
    notify = notifier(webhooks, BrokenState())

    for e in FAILING_RUN:
        notify.notify(e)

    assert len(texts(webhooks, "hook")) == 6


def test_a_builds_start_and_end_are_one_slack_message_and_its_outcome_in_the_thread(slack: SlackApi) -> None:
    succeeded = json.loads((EVENTS / "codebuild/build_succeeded.json").read_text())
    started, failed = (json.loads(json.dumps(succeeded)) for _ in range(2))
    started |= {"id": "build-started"}
    started["detail"]["build-status"] = "IN_PROGRESS"
    failed |= {"id": "build-failed"}
    failed["detail"]["build-status"] = "FAILED"
    webhooks = Webhooks()
    notify = notifier(webhooks, InMemoryNotifyState())

    notify.notify(started)
    notify.notify(failed)

    (parent_ts, parent), (_, reply) = slack.messages.items()
    assert parent["text"] == reply["text"]
    assert parent["text"].startswith("❌ Build ")
    assert parent["text"].endswith(": failed")
    assert reply["thread_ts"] == parent_ts
    assert len(texts(webhooks, "hook")) == 2


def test_a_chatbot_channel_threads_a_pipeline_runs_two_messages_by_its_execution() -> None:
    topic = "arn:aws:sns:us-east-1:123456789012:opsflow-chatbot"
    published: list[dict[str, Any]] = []
    notify = Notifier(
        channels=parse_channels(json.dumps([{"name": "q", "platform": "chatbot", "topic_arn": topic}])),
        secret=url,
        dead_letters=Queue(),
        publisher=lambda arn, body: published.append(json.loads(body)),
        state=InMemoryNotifyState(),
    )

    for e in FAILING_RUN:
        notify.notify(e)

    assert [p["content"]["title"] for p in published] == [
        "⏳ Pipeline web-deploy: started",
        f"❌ {FAILED_TITLE}",
    ]
    assert {p["metadata"]["threadId"] for p in published} == {
        "codepipeline:123456789012:us-east-1:web-deploy:e-1"
    }


def test_a_retried_invocation_sends_the_summary_the_one_that_died_had_claimed(slack: SlackApi) -> None:
    webhooks, state = Webhooks(), InMemoryNotifyState()
    notify = notifier(webhooks, state)
    for e in FAILING_RUN[:-1]:
        notify.notify(e)
    run_end = FAILING_RUN[-1]
    key = message_of(run_end).thread_key or ""
    state.claim(key, "hook", "last", run_end["id"])  # ... and the invocation timed out before sending

    notify.notify(run_end)  # Lambda's retry

    assert texts(webhooks, "hook")[-1] == f"❌ {FAILED_TITLE}"


class LosesTheThread(InMemoryNotifyState):
    def set_parent(self, key: str, channel: str, ts: str) -> None:
        raise OSError("DynamoDB is unreachable")


def test_without_the_threads_message_only_what_is_worth_telling_reaches_the_top_of_the_channel(
    slack: SlackApi,
) -> None:
    notify = notifier(Webhooks(), LosesTheThread())

    for e in FAILING_RUN:
        notify.notify(e)

    assert [m["text"] for m in slack.messages.values()] == [
        "⏳ Pipeline web-deploy: started",
        "❌ Pipeline web-deploy at Build / CodeBuild: failed",
        "❌ Pipeline web-deploy: failed",
    ]


def test_a_reply_that_failed_is_parked_and_redriven_into_its_thread(
    slack: SlackApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opsflow.notify.delivery import DeliveryFailed

    webhooks, queue = Webhooks(), Queue()
    notify = Notifier(
        channels=CHANNELS[3:], secret=url, dead_letters=queue, post=webhooks, state=InMemoryNotifyState()
    )
    for e in FAILING_RUN[:3]:
        notify.notify(e)

    def refused(**_: Any) -> str:
        raise DeliveryFailed("Slack refused the message: ratelimited")

    monkeypatch.setattr(slack_api, "post_message", refused)
    (outcome,) = notify.notify(FAILING_RUN[3])
    monkeypatch.setattr(slack_api, "post_message", slack.post)

    assert outcome["outcome"] == "dead-lettered"
    assert notify.redrive() == {"delivered": 1, "failed": 0}
    (parent_ts, _), *_, (_, redriven) = slack.messages.items()
    assert redriven == {"text": "❌ Pipeline web-deploy at Build / CodeBuild: failed", "thread_ts": parent_ts}


def test_a_retried_stage_is_a_new_attempt_whose_end_is_told_too(slack: SlackApi) -> None:
    webhooks = Webhooks()
    notify = notifier(webhooks, InMemoryNotifyState())
    retry = [
        pipeline_event("Pipeline", "RESUMED", 30, **{"pipeline-execution-attempt": 2}),
        pipeline_event("Action", "STARTED", 31, **ACTION, **{"pipeline-execution-attempt": 2}),
        pipeline_event("Action", "SUCCEEDED", 40, **ACTION, **{"pipeline-execution-attempt": 2}),
        pipeline_event("Pipeline", "SUCCEEDED", 41, **{"pipeline-execution-attempt": 2}),
    ]

    for e in FAILING_RUN + retry:
        notify.notify(e)

    assert texts(webhooks, "hook")[-2:] == [
        "⏳ Pipeline web-deploy: resumed",
        "✅ Pipeline web-deploy: succeeded",
    ]


def test_ci_runs_whose_names_hold_the_separator_are_bursts_of_their_own() -> None:
    def ci(pipeline: str, run: str) -> Message:
        return message_of(
            {
                "source": "opsflow.ci",
                "detail-type": "CI Run State Change",
                "detail": {"system": "jenkins", "pipeline": pipeline, "run": run, "status": "failed"},
            }
        )

    assert ci("web:1", "2").thread_key != ci("web", "1:2").thread_key


def test_a_repeat_of_the_runs_end_is_found_before_any_wait(slack: SlackApi) -> None:
    slept: list[float] = []
    notify = notifier(Webhooks(), InMemoryNotifyState(), sleep=slept.append, settle_seconds=1.0)
    for e in FAILING_RUN[:3]:  # the action never says how it ended: the end waits for it
        notify.notify(e)
    notify.notify(FAILING_RUN[-1])
    waited = len(slept)

    again = notify.notify(FAILING_RUN[-1])

    assert waited > 0
    assert len(slept) == waited
    assert {o["outcome"] for o in again} == {"duplicate"}
