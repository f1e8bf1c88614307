"""Resume the executions waiting on what an event is about (functions/resume): each waiter's task token is sent
success (or, for an alarm gone to ALARM, failure) once, and forgotten. Events come at least once and waits
also end by their timeout, so a token Step Functions no longer knows is dropped, not an error."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from opsflow.store.runs import RunStore, StepOutcome, now_iso
from opsflow.store.waiters import Waiter, WaiterStore
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
    # Where a wait that an event fails is recorded as its step's failure (the rollback reads it there).
    runs: RunStore | None = None

    def __call__(self, event: Mapping[str, Any]) -> dict[str, Any]:
        resumed, stale = [], 0
        for wake in wakes(event, self.home_account, self.home_region):
            for waiter in self.waiters.waiting_on(wake.awaited.key):
                if wake.failure is not None:
                    self._record(waiter, "failed", f"{wake.failure}: {wake.what}")
                if self._send(waiter.token, wake, event):
                    resumed.append(waiter.run_id)
                else:
                    stale += 1
                    if wake.failure is not None:
                        self._record(
                            waiter, "milestone", "(that came after the wait had ended; the run went on)"
                        )
                self.waiters.forget(waiter)
        return {"resumed": resumed, "stale": stale}

    def _record(self, waiter: Waiter, status: str, summary: str) -> None:
        # A failure is recorded before its token is sent: once it is, the rollback may be reading the record.
        if self.runs is not None:
            self.runs.record_step(waiter.run_id, StepOutcome(waiter.step, status, now_iso(), summary))

    def _send(self, token: str, wake: Wake, event: Mapping[str, Any]) -> bool:
        if wake.failure is not None:
            return self.tokens.fail(token, wake.failure, wake.what)
        woken = {"by": event.get("detail-type"), "at": event.get("time"), "what": wake.what}
        return self.tokens.succeed(token, json.dumps(woken))
