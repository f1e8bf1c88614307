"""A real HTTP server on 127.0.0.1 standing in for Slack and Teams webhooks, and for Slack's Web API
`chat.postMessage` (answering `{"ok": true, "ts": ...}` as Slack does): it keeps every message, so tests
and the demo can read what a channel would have shown."""

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
                answer = json.dumps({"ok": True, "channel": payload.get("channel"), "ts": ts}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(answer)

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
