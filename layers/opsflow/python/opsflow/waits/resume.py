"""Resume the executions waiting on what an event is about (functions/resume): each waiter's task token is sent
success (or, for an alarm gone to ALARM, failure) once, and forgotten. Events come at least once and waits
also end by their timeout, so a token Step Functions no longer knows is dropped, not an error."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from opsflow.store.waiters import WaiterStore
from opsflow.waits.events import Wake, wakes


class Tokens(Protocol):
    def succeed(self, token: str, output: str = "{}") -> bool: ...

    def fail(self, token: str, error: str, cause: str) -> bool: ...


@dataclass
class Resumer:
    waiters: WaiterStore
    tokens: Tokens
    home_account: str
    home_region: str

    def __call__(self, event: Mapping[str, Any]) -> dict[str, Any]:
        resumed, stale = [], 0
        for wake in wakes(event, self.home_account, self.home_region):
            for waiter in self.waiters.waiting_on(wake.awaited.key):
                if self._send(waiter.token, wake, event):
                    resumed.append(waiter.run_id)
                else:
                    stale += 1
                self.waiters.forget(waiter)
        return {"resumed": resumed, "stale": stale}

    def _send(self, token: str, wake: Wake, event: Mapping[str, Any]) -> bool:
        if wake.failure is not None:
            return self.tokens.fail(token, wake.failure, wake.what)
        woken = {"by": event.get("detail-type"), "at": event.get("time"), "what": wake.what}
        return self.tokens.succeed(token, json.dumps(woken))
