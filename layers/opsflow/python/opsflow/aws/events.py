"""EventBridge adapter: Opsflow's own progress events (source `opsflow`), for notifications to react to."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from opsflow.aws.errors import aws_call, call_failed

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

SOURCE = "opsflow"
PROGRESS = "Opsflow Run Progress"


class Events:
    def __init__(self, client: EventBridgeClient, bus_name: str = "default") -> None:
        self._events = client
        self._bus = bus_name

    def progress(
        self, run_id: str, workflow: str, target: str, kind: str, message: str, **detail: Any
    ) -> None:
        with aws_call("PutEvents"):
            response = self._events.put_events(
                Entries=[
                    {
                        "Source": SOURCE,
                        "DetailType": PROGRESS,
                        "EventBusName": self._bus,
                        "Detail": json.dumps(
                            {
                                "run_id": run_id,
                                "workflow": workflow,
                                "target": target,
                                "kind": kind,
                                "message": message,
                                **detail,
                            }
                        ),
                    }
                ]
            )
        if response.get("FailedEntryCount"):
            entry = response["Entries"][0]
            raise call_failed(
                "PutEvents", entry.get("ErrorCode", "FailedEntry"), entry.get("ErrorMessage", "")
            )

    def put(self, source: str, detail_type: str, detail: dict[str, Any]) -> str:
        """Put one event on the bus; its event id."""
        with aws_call("PutEvents"):
            response = self._events.put_events(
                Entries=[
                    {
                        "Source": source,
                        "DetailType": detail_type,
                        "EventBusName": self._bus,
                        "Detail": json.dumps(detail),
                    }
                ]
            )
        entry = response["Entries"][0]
        if response.get("FailedEntryCount") or not entry.get("EventId"):
            raise call_failed(
                "PutEvents", entry.get("ErrorCode", "FailedEntry"), entry.get("ErrorMessage", "")
            )
        return str(entry["EventId"])

    def admit_account(self, account: str, statement_id: str) -> None:
        """Let `account` put events on this bus (its spoke stack forwards to it); idempotent by statement id."""
        with aws_call("PutPermission"):
            self._events.put_permission(
                EventBusName=self._bus,
                Action="events:PutEvents",
                Principal=account,
                StatementId=statement_id[:64],
            )
