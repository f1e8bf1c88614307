"""What the notify function remembers between invocations: which event each channel was already sent
(EventBridge delivers at least once), and the events of a burst with what each channel was sent of it.

Kept in the idempotency table (key `id`, time to live `expiration`) under prefixes of its own, beside the
Powertools records. Every burst decision is one conditional write, so two invocations racing on the same
burst never both send what only one may."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol

from botocore.exceptions import ClientError

from opsflow.aws.errors import aws_call, error_code, from_client_error

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# EventBridge retries a delivery for up to 24 hours; a pipeline run waiting on an approval lasts up to 7 days.
EVENT_SECONDS = 24 * 3600
BURST_SECONDS = 8 * 24 * 3600

Slot = Literal["first", "last"]


class NotifyState(Protocol):
    def delivered(self, event_id: str, channel: str) -> bool:
        """Whether the channel was already sent the event."""

    def remember(self, event_id: str, channel: str) -> None:
        """The channel was sent the event. Recorded after the send: an invocation that dies before it is
        retried and sends again, where recording first would have lost the message."""

    def fold(self, key: str, entry_id: str, entry: str) -> list[str]:
        """Record an event of the burst `key` (once per `entry_id`); returns all its entries so far."""

    def entries(self, key: str) -> list[str]: ...

    def claim(self, key: str, channel: str, slot: Slot, event_id: str) -> bool:
        """Whether the channel may be sent this message of the burst. `first` is granted once, and not
        after `last`; `last` is granted once, and takes `first` with it. Granted again to the same event:
        a retried invocation must be able to finish what the failed one claimed."""

    def set_parent(self, key: str, channel: str, ts: str) -> None:
        """The Slack message that shows the burst in the channel."""

    def parent(self, key: str, channel: str) -> str | None: ...


class InMemoryNotifyState:
    def __init__(self) -> None:
        self._seen: set[tuple[str, str]] = set()
        self._entries: dict[str, dict[str, str]] = {}
        self._slots: dict[tuple[str, str], dict[str, str]] = {}  # slot -> the event that took it
        self._parents: dict[tuple[str, str], str] = {}
        self._mutex = threading.Lock()

    def delivered(self, event_id: str, channel: str) -> bool:
        return (event_id, channel) in self._seen

    def remember(self, event_id: str, channel: str) -> None:
        self._seen.add((event_id, channel))

    def fold(self, key: str, entry_id: str, entry: str) -> list[str]:
        with self._mutex:
            self._entries.setdefault(key, {}).setdefault(entry_id, entry)
            return list(self._entries[key].values())

    def entries(self, key: str) -> list[str]:
        return list(self._entries.get(key, {}).values())

    def claim(self, key: str, channel: str, slot: Slot, event_id: str) -> bool:
        with self._mutex:
            taken = self._slots.setdefault((key, channel), {})
            if taken.get(slot, event_id) != event_id:
                return False
            if slot == "first" and "last" in taken:
                return False
            taken[slot] = event_id
            taken.setdefault("first", event_id)
            return True

    def set_parent(self, key: str, channel: str, ts: str) -> None:
        self._parents[(key, channel)] = ts

    def parent(self, key: str, channel: str) -> str | None:
        return self._parents.get((key, channel))


class DynamoNotifyState:
    EVENT = "notify-event#"
    BURST = "notify-burst#"

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._ddb = client
        self._table = table_name

    def delivered(self, event_id: str, channel: str) -> bool:
        with aws_call("GetItem"):
            item = self._ddb.get_item(
                TableName=self._table,
                Key={"id": {"S": self._event_key(event_id, channel)}},
                ConsistentRead=True,
            ).get("Item")
        # DynamoDB deletes expired items up to days late: an expired one counts as gone.
        return item is not None and int(item["expiration"]["N"]) > int(time.time())

    def remember(self, event_id: str, channel: str) -> None:
        with aws_call("PutItem"):
            self._ddb.put_item(
                TableName=self._table,
                Item={
                    "id": {"S": self._event_key(event_id, channel)},
                    "expiration": {"N": str(int(time.time()) + EVENT_SECONDS)},
                },
            )

    def _event_key(self, event_id: str, channel: str) -> str:
        return f"{self.EVENT}{event_id}#{channel}"

    def fold(self, key: str, entry_id: str, entry: str) -> list[str]:
        with aws_call("UpdateItem"):
            item = self._ddb.update_item(
                TableName=self._table,
                Key={"id": {"S": self.BURST + key}},
                UpdateExpression="SET #entry = if_not_exists(#entry, :entry), expiration = :expiration",
                ExpressionAttributeNames={"#entry": f"entry:{entry_id}"},
                ExpressionAttributeValues={
                    ":entry": {"S": entry},
                    ":expiration": {"N": str(int(time.time()) + BURST_SECONDS)},
                },
                ReturnValues="ALL_NEW",
            )["Attributes"]
        return _entries(item)

    def entries(self, key: str) -> list[str]:
        with aws_call("GetItem"):
            item = self._ddb.get_item(
                TableName=self._table, Key={"id": {"S": self.BURST + key}}, ConsistentRead=True
            ).get("Item")
        return _entries(item or {})

    def claim(self, key: str, channel: str, slot: Slot, event_id: str) -> bool:
        if slot == "first":
            update = "SET #first = :event, expiration = :expiration"
            condition = "(attribute_not_exists(#first) OR #first = :event) AND attribute_not_exists(#last)"
        else:
            update = "SET #last = :event, #first = if_not_exists(#first, :event), expiration = :expiration"
            condition = "attribute_not_exists(#last) OR #last = :event"
        now = int(time.time())
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"id": {"S": f"{self.BURST}{key}#{channel}"}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#first": "first_sent", "#last": "last_sent"},
                ExpressionAttributeValues={
                    ":event": {"S": event_id or "-"},
                    ":expiration": {"N": str(now + BURST_SECONDS)},
                },
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise from_client_error("UpdateItem", error) from error
        return True

    def set_parent(self, key: str, channel: str, ts: str) -> None:
        with aws_call("UpdateItem"):
            self._ddb.update_item(
                TableName=self._table,
                Key={"id": {"S": f"{self.BURST}{key}#{channel}"}},
                UpdateExpression="SET slack_ts = :ts",
                ExpressionAttributeValues={":ts": {"S": ts}},
            )

    def parent(self, key: str, channel: str) -> str | None:
        with aws_call("GetItem"):
            item = self._ddb.get_item(
                TableName=self._table,
                Key={"id": {"S": f"{self.BURST}{key}#{channel}"}},
                ConsistentRead=True,
                ProjectionExpression="slack_ts",
            ).get("Item")
        return item["slack_ts"]["S"] if item and "slack_ts" in item else None


def _entries(item: Mapping[str, Mapping[str, Any]]) -> list[str]:
    return [str(value["S"]) for name, value in item.items() if name.startswith("entry:")]
