"""A real HTTP server on 127.0.0.1 standing in for Slack and Teams webhooks: it answers 200 and keeps
every message, so tests and the demo can read what a channel would have shown."""

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
                _, platform, channel = ([*self.path.split("/"), "", ""])[:3]
                with sink._lock:
                    sink.received.append(Notification(channel=channel, platform=platform, payload=payload))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> NotificationSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, platform: str, channel: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/{platform}/{channel}"
