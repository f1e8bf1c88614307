"""A spoke's forwarding rule sends the events the hub listens to to the hub's default bus as they are: their
`account` and `region` stay the spoke's, and another account's event is taken only if the hub bus's policy
admits that account (EventBridge User Guide, "Sending and receiving events between AWS accounts")."""

from __future__ import annotations

import json
import time
from typing import Any

from opsflow_local import EmbeddedAws

HUB, SPOKE = "111111111111", "222222222222"
HOME, AWAY = "us-east-1", "eu-west-1"
ALARM_CHANGE = "CloudWatch Alarm State Change"
HUB_BUS = f"arn:aws:events:{HOME}:{HUB}:event-bus/default"


def organization(**kwargs: Any) -> EmbeddedAws:
    return EmbeddedAws(accounts=[HUB, SPOKE], regions=[HOME, AWAY], **kwargs)


def watch_the_hubs_bus(aws: EmbeddedAws) -> str:
    """A rule on the hub's default bus for every CloudWatch event, delivering each whole to a queue (moto's
    default SQS body leaves `account` out; `<aws.events.event.json>` is the event as the rule matched it)."""
    sqs = aws.client("sqs")
    queue_url = str(sqs.create_queue(QueueName="hub-cloudwatch-events")["QueueUrl"])
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events = aws.client("events")
    events.put_rule(Name="watch-cloudwatch", EventPattern=json.dumps({"source": ["aws.cloudwatch"]}))
    events.put_targets(
        Rule="watch-cloudwatch",
        Targets=[
            {
                "Id": "queue",
                "Arn": queue_arn,
                "InputTransformer": {"InputTemplate": "<aws.events.event.json>"},
            }
        ],
    )
    return queue_url


def put_event(aws: EmbeddedAws, account: str, region: str, name: str, detail_type: str = ALARM_CHANGE) -> str:
    answer = aws.client("events", account=account, region=region).put_events(
        Entries=[
            {
                "Source": "aws.cloudwatch",
                "DetailType": detail_type,
                "Detail": json.dumps({"alarmName": name, "state": {"value": "ALARM"}}),
                "Resources": [f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"],
            }
        ]
    )
    assert answer["FailedEntryCount"] == 0, answer
    return str(answer["Entries"][0]["EventId"])


def received(aws: EmbeddedAws, queue_url: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The first `count` events the hub's rule matched (a loaded machine can stall a thread for seconds)."""
    sqs = aws.client("sqs")
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(events) < count:
        assert time.monotonic() < deadline, f"{len(events)} of {count} events arrived: {events}"
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        events += [json.loads(m["Body"]) for m in messages]
        for message in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        if not messages:
            time.sleep(0.01)
    return events


def nothing_more(aws: EmbeddedAws, queue_url: str) -> bool:
    # Delivery is synchronous with PutEvents: whatever was to arrive is in the queue already.
    return not aws.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages")


def test_events_from_other_accounts_and_regions_reach_the_hubs_rules_with_their_own_account_and_region() -> (
    None
):
    with organization() as aws:
        queue_url = watch_the_hubs_bus(aws)

        event_id = put_event(aws, SPOKE, AWAY, "web-5xx")
        (event,) = received(aws, queue_url, 1)

        assert (event["account"], event["region"]) == (SPOKE, AWAY)
        assert event["id"] == event_id
        assert (event["source"], event["detail-type"]) == ("aws.cloudwatch", ALARM_CHANGE)
        assert event["detail"] == {"alarmName": "web-5xx", "state": {"value": "ALARM"}}
        assert event["resources"] == [f"arn:aws:cloudwatch:{AWAY}:{SPOKE}:alarm:web-5xx"]

        # The spoke account in the hub's region, and the hub's own account elsewhere, forward too.
        put_event(aws, SPOKE, HOME, "api-latency")
        put_event(aws, HUB, AWAY, "db-cpu")
        origins = {(e["account"], e["region"], e["detail"]["alarmName"]) for e in received(aws, queue_url, 2)}
        assert origins == {(SPOKE, HOME, "api-latency"), (HUB, AWAY, "db-cpu")}

        # What the hub does not listen to stays in the spoke.
        put_event(aws, SPOKE, AWAY, "web-5xx", detail_type="CloudWatch Metric Stream State Change")
        assert nothing_more(aws, queue_url)
        assert aws.events.refused == []


def test_an_event_the_hubs_bus_policy_does_not_admit_is_refused_and_kept() -> None:
    # No organization: the hub's bus gets no policy until an account is admitted one by one.
    with organization(parameters={"OrganizationId": ""}) as aws:
        queue_url = watch_the_hubs_bus(aws)
        assert "Policy" not in aws.client("events").describe_event_bus()

        refused_id = put_event(aws, SPOKE, AWAY, "web-5xx")
        put_event(aws, HUB, AWAY, "db-cpu")  # the hub's own account needs no policy

        (arrived,) = received(aws, queue_url, 1)
        assert (arrived["account"], arrived["region"]) == (HUB, AWAY)
        assert nothing_more(aws, queue_url)
        ((rule_arn, bus_arn, event),) = aws.events.refused
        assert rule_arn == f"arn:aws:events:{AWAY}:{SPOKE}:rule/{aws.template.stack_name}-forward-to-hub"
        assert bus_arn == HUB_BUS
        assert (event["id"], event["account"], event["region"]) == (refused_id, SPOKE, AWAY)

        # Admitted as PUT /accounts does without an organization: the next one arrives.
        aws.client("events").put_permission(
            EventBusName="default", Action="events:PutEvents", Principal=SPOKE, StatementId=f"spoke-{SPOKE}"
        )
        admitted_id = put_event(aws, SPOKE, AWAY, "web-5xx")
        (event,) = received(aws, queue_url, 1)
        assert (event["id"], event["account"], event["region"]) == (admitted_id, SPOKE, AWAY)
        assert len(aws.events.refused) == 1
