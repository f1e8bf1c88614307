"""A real HTTP server on 127.0.0.1 standing in for Slack and Teams webhooks, and for Slack's Web API
`chat.postMessage` (answering `{"ok": true, "ts": ...}` as Slack does) and `chat.update` (which edits a
message in place, keeping its ts; `message_not_found` for a ts the channel never had): it keeps every
message, so tests and the demo can read what a channel would have shown."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Notification:
    channel: str
    platform: str
    payload: dict[str, Any]
    ts: str | None = None  # for messages posted through Slack's Web API
    edits: int = 0  # how many times chat.update replaced it

    @property
    def thread_ts(self) -> str | None:
        value = self.payload.get("thread_ts")
        return str(value) if value else None

    @property
    def text(self) -> str:
        """What a person sees first: Slack's headline, or the card's title."""
        if self.platform == "slack":
            return str(self.payload.get("text", ""))
        body = self.payload["attachments"][0]["content"]["body"]
        return str(body[0].get("text", "")) if body else ""


class NotificationSink:
    def __init__(self) -> None:
        self.received: list[Notification] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length) or b"{}")
                if self.path.endswith("/chat.postMessage"):
                    self._slack_api(payload)
                    return
                if self.path.endswith("/chat.update"):
                    self._slack_update(payload)
                    return
                _, platform, channel = ([*self.path.split("/"), "", ""])[:3]
                with sink._lock:
                    sink.received.append(Notification(channel=channel, platform=platform, payload=payload))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def _slack_api(self, payload: dict[str, Any]) -> None:
                with sink._lock:
                    ts = f"1800000000.{len(sink.received) + 1:06d}"
                    posted = Notification(
                        channel=str(payload.get("channel")), platform="slack", payload=payload, ts=ts
                    )
                    sink.received.append(posted)
                self._answer({"ok": True, "channel": payload.get("channel"), "ts": ts})

            def _slack_update(self, payload: dict[str, Any]) -> None:
                channel, ts = str(payload.get("channel")), str(payload.get("ts"))
                with sink._lock:
                    found = next(
                        (i for i, n in enumerate(sink.received) if n.channel == channel and n.ts == ts), None
                    )
                    if found is not None:
                        old = sink.received[found]
                        edited = {**payload, "thread_ts": old.payload.get("thread_ts")}
                        edited.pop("ts", None)
                        sink.received[found] = Notification(
                            channel=channel, platform="slack", payload=edited, ts=ts, edits=old.edits + 1
                        )
                if found is None:
                    self._answer({"ok": False, "error": "message_not_found"})
                else:
                    self._answer({"ok": True, "channel": channel, "ts": ts})

            def _answer(self, answer: dict[str, Any]) -> None:
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll: stop() waits for the serving loop's next poll, once per runtime.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    def start(self) -> NotificationSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, platform: str, channel: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/{platform}/{channel}"
