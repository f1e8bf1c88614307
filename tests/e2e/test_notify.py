"""The notify function from the template, on the embedded runtime, posting to real HTTP webhooks on
127.0.0.1: retries that honour Retry-After, the dead-letter queue and redrive, and no secret in logs."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from opsflow_local import EmbeddedAws, seed

EVENTS = Path(__file__).resolve().parents[2] / "events"
FUNCTION = "opsflow-NotifyFunction"


class Hook:
    """A webhook on 127.0.0.1 that answers with the statuses it is given, then 200."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str]]] = []
        self.requests: list[tuple[float, dict[str, Any]]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.requests.append((time.monotonic(), body))
                status, headers = hook.script.pop(0) if hook.script else (200, {})
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"try later")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T0/B0/secret-token-1234"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.server.shutdown()


@pytest.fixture
def aws(hook: Hook) -> Iterator[EmbeddedAws]:
    channels = [{"name": "ops", "platform": "slack", "webhook_secret": "opsflow/slack-ops"}]
    with EmbeddedAws(
        parameters={"NotifyChannels": json.dumps(channels)}, function_log_level="INFO"
    ) as embedded:
        embedded.client("secretsmanager").create_secret(Name="opsflow/slack-ops", SecretString=hook.url)
        yield embedded


def notify(aws: EmbeddedAws, name: str) -> dict[str, Any]:
    return dict(aws.lambdas.invoke(FUNCTION, json.loads((EVENTS / name).read_text())))


def test_429_then_200_gets_one_message_after_the_wait_it_asked_for(aws: EmbeddedAws, hook: Hook) -> None:
    hook.script = [(429, {"Retry-After": "1"})]
    result = notify(aws, "cloudwatch/alarm_state_change.json")
    assert result["outcomes"] == [{"channel": "ops", "outcome": "delivered", "attempts": 2}]
    (refused_at, _), (delivered_at, message) = hook.requests
    assert delivered_at - refused_at >= 0.95
    assert message["text"].startswith("❌ ALARM: ServerCpuTooHigh")


def test_a_webhook_that_always_fails_ends_in_the_dead_letter_queue_and_redrive_delivers(
    aws: EmbeddedAws, hook: Hook, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # as the function runs: Powertools at INFO, botocore at its default
    hook.script = [(500, {"Retry-After": "0"})] * 4
    result = notify(aws, "ecs/deployment_failed.json")
    assert result["outcomes"][0]["outcome"] == "dead-lettered"
    sqs = aws.client("sqs")
    queue_url = sqs.get_queue_url(QueueName=aws.resource_name("NotifyDeadLetterQueue"))["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "1"

    assert aws.lambdas.invoke(FUNCTION, {"redrive": True}) == {"delivered": 1, "failed": 0}
    assert len(hook.requests) == 5
    assert hook.requests[-1][1]["text"].startswith("❌ ECS service servicetest")

    logged = [json.dumps(record.__dict__, default=str) for record in caplog.records]
    assert any(
        '"notified"' in line and "dead-lettered" in line for line in logged
    )  # it logged the outcome...
    assert not [line for line in logged if "secret-token-1234" in line]  # ...never the webhook URL


def test_a_failed_bake_is_announced_in_slack_and_teams_naming_the_step_and_error() -> None:
    with EmbeddedAws() as aws:
        net = seed.network(aws)
        seed.launch_template_group(aws, net, "web")
        instance_id = seed.instance(aws, net, "app-1")
        aws.emulation.ec2.fail_next_image("Snapshot of /dev/sdc failed: the volume was detached")
        response = aws.api.post(
            "/runs", json={"workflow": "ami_bake", "instance_id": instance_id, "asg_name": "web"}
        )
        run = aws.wait_for_run(response.json()["run_id"])
        notifications = aws.notifications

    assert run["status"] == "FAILED"
    by_platform = {n.platform: n for n in notifications}
    assert set(by_platform) == {"slack", "teams"}
    for notification in by_platform.values():
        rendered = json.dumps(notification.payload)
        assert notification.text.endswith("AMI bake failed: web")
        assert "check_image" in rendered
        assert "Snapshot of /dev/sdc failed: the volume was detached" in rendered
        assert run["run_id"] in rendered


def test_with_a_bot_token_the_messages_of_a_run_share_one_thread() -> None:
    channels = [
        {
            "name": "ops-bot",
            "platform": "slack",
            "bot_token_secret": "opsflow/slack-bot",
            "slack_channel": "C0OPS",
            "slack_api_url": "{local_sink}/api/",
        }
    ]
    aws = EmbeddedAws(parameters={"NotifyChannels": json.dumps(channels)})
    with aws:
        aws.client("secretsmanager").create_secret(
            Name="opsflow/slack-bot", SecretString="xoxb-0000-test-token"
        )
        net = seed.network(aws)
        seed.launch_template_group(aws, net, "web", capacity=2)
        run_id = aws.api.post(
            "/runs", json={"workflow": "asg_refresh", "asg_name": "web", "instance_warmup": 30}
        ).json()["run_id"]
        run = aws.wait_for_run(run_id, timeout=60)
        posted = [n for n in aws.notifications if n.channel == "C0OPS"]

    assert run["status"] == "SUCCEEDED", run["error"]
    of_run = [n for n in posted if run_id in json.dumps(n.payload)]
    assert len(of_run) >= 3  # progress at 25/50/.../100 % and the end of the run
    first, *replies = of_run
    assert first.thread_ts is None
    assert all(reply.thread_ts == first.ts for reply in replies)
    assert of_run[-1].payload["text"].startswith("✅ ASG refresh succeeded: web")


def test_opsflow_alarms_on_its_own_dead_letters_reach_the_team(aws: EmbeddedAws, hook: Hook) -> None:
    (alarm,) = aws.client("cloudwatch").describe_alarms(AlarmNames=["opsflow-run-ended-dead-letters"])[
        "MetricAlarms"
    ]
    # It watches the very queue run_ended's failed invocations are parked in.
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": aws.resource_name("RunEndedDeadLetterQueue")}
    ]
    assert alarm["TreatMissingData"] == "notBreaching"

    # moto sends no alarm state change events: send the one CloudWatch would, as its user guide shows it.
    event = json.loads((EVENTS / "cloudwatch/alarm_state_change.json").read_text())
    event["detail"] |= {
        "alarmName": alarm["AlarmName"],
        "configuration": {"description": alarm["AlarmDescription"]},
    }
    aws.client("events").put_events(
        Entries=[
            {
                "Source": "aws.cloudwatch",
                "DetailType": "CloudWatch Alarm State Change",
                "Resources": [alarm["AlarmArn"]],
                "Detail": json.dumps(event["detail"]),
            }
        ]
    )
    aws.events.wait(timeout=10)

    ((_, message),) = hook.requests
    assert message["text"] == "❌ ALARM: opsflow-run-ended-dead-letters (was OK)"
    assert '{\\"redrive\\": true}' in json.dumps(message)


def test_a_health_event_names_the_group_of_the_managed_instance_it_affects(
    aws: EmbeddedAws, hook: Hook
) -> None:
    """Through the template's rule to notify, whose role reads the instance's tags (ec2:DescribeInstances)."""
    seed.instance_retirement_scheduled(aws, "web", "staging")
    aws.events.wait(timeout=10)

    ((_, message),) = hook.requests
    assert message["text"] == (
        "⚠️ AWS Health: EC2 instance retirement scheduled for group web (environment staging)"
    )


def test_a_chatbot_channel_publishes_custom_notifications_that_thread_by_run() -> None:
    topic_arn = "arn:aws:sns:us-east-1:123456789012:opsflow-chatbot"
    channels = [{"name": "q", "platform": "chatbot", "topic_arn": topic_arn}]
    aws = EmbeddedAws(parameters={"NotifyChannels": json.dumps(channels), "ChatbotTopicArns": topic_arn})
    with aws:
        sns, sqs = aws.client("sns"), aws.client("sqs")
        assert sns.create_topic(Name="opsflow-chatbot")["TopicArn"] == topic_arn
        queue_url = sqs.create_queue(QueueName="chatbot-subscriber")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(
            TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
        )
        outcomes = [
            notify(aws, name)["outcomes"]
            for name in ("opsflow/run_progress_checkpoint.json", "stepfunctions/execution_failed.json")
        ]
        received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]

    assert outcomes == [[{"channel": "q", "outcome": "delivered", "attempts": 1}]] * 2
    progress, failed = (json.loads(m["Body"]) for m in received)
    assert {progress["version"], progress["source"]} == {"1.0", "custom"}
    assert progress["metadata"]["threadId"] == failed["metadata"]["threadId"]
    assert progress["id"] != failed["id"]
    assert failed["content"]["textType"] == "client-markdown"
    assert failed["content"]["title"].startswith("❌ AMI bake failed")
