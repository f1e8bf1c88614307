"""SQS adapter: the notifications' dead-letter queue."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from opsflow.aws.errors import aws_call

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class Queue:
    def __init__(self, client: SQSClient, url: str) -> None:
        self._sqs = client
        self._url = url

    def send(self, body: dict[str, Any]) -> None:
        with aws_call("SendMessage"):
            self._sqs.send_message(QueueUrl=self._url, MessageBody=json.dumps(body))

    def receive(self) -> list[tuple[str, dict[str, Any]]]:
        with aws_call("ReceiveMessage"):
            messages = self._sqs.receive_message(
                QueueUrl=self._url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            )
        return [(m["ReceiptHandle"], json.loads(m["Body"])) for m in messages.get("Messages", [])]

    def delete(self, receipt: str) -> None:
        with aws_call("DeleteMessage"):
            self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=receipt)
