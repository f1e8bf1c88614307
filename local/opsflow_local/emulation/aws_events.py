"""The one way every emulated AWS service event takes to EventBridge, and the clock that sends it on time.

- Delivery level (EventBridge Events Reference, "Delivery level for AWS service events" and each service's
  page): "Best effort delivery means that the service attempts to send all events to EventBridge, but in
  some rare cases an event might not be delivered"; durable delivery means the service "will successfully
  attempt to deliver events to EventBridge at least once". Amazon ECS ("Delivery type: Durable") and
  CloudWatch ("Delivery type: Durable"; CloudWatch User Guide: "CloudWatch guarantees the delivery of alarm
  state change events to EventBridge") are durable. EC2 (User Guide, "Monitor AMI events using Amazon
  EventBridge": "Events are generated on a best effort basis"), EC2 Auto Scaling, RDS ("Amazon RDS emits
  events on a best effort basis ... they might be out of sequence or missing") and Step Functions are best
  effort, as is any service the reference does not list. `AwsEvents.drop_best_effort(share, seed)` loses
  that share of the best-effort events, for tests of a design that must not hang when one is lost; a
  durable event is never dropped. `sent` and `dropped` record what went to the bus and what was lost.
- Timing: an emulation completes a transition (an image available, a database stopped) when its state is
  next read. AWS sends the event when the transition completes, whether anyone looks or not, so an
  emulation asks `wake_at(due, advance)` to complete it at its deadline: one thread, started by
  `AwsEvents.install`, runs those calls. Without an installed `AwsEvents` (an emulation tested on its own)
  events go straight to the bus, unrecorded, and transitions complete when next read.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moto.events.models import events_backends

LOG = logging.getLogger(__name__)

DURABLE_SOURCES = frozenset({"aws.ecs", "aws.cloudwatch"})


@dataclass(frozen=True)
class ServiceEvent:
    """An event an emulated AWS service sent (or lost) on its way to the account's default event bus."""

    account: str
    region: str
    source: str
    detail_type: str
    resources: tuple[str, ...]
    detail: dict[str, Any]
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def durable(self) -> bool:
        return self.source in DURABLE_SOURCES


class AwsEvents:
    """What the emulated services sent to EventBridge, and a share of best-effort events to lose."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._share = 0.0
        self._seed: int | None = None
        self._sources: frozenset[str] | None = None
        self._random = random.Random()
        self._occurrences: Counter[tuple[str, str, tuple[str, ...]]] = Counter()
        self._sent: list[ServiceEvent] = []
        self._dropped: list[ServiceEvent] = []
        self._clock = _Clock()

    def drop_best_effort(self, share: float, seed: int | None = None, *, sources: Iterable[str] = ()) -> None:
        """From now on lose `share` (0 to 1) of the best-effort events, of every source or of `sources`
        only ("aws.ec2", "aws.rds", ...); 0 loses none. With a seed the same events are lost in every run,
        whatever the order threads send them in: whether an event is lost depends on the seed, its source,
        detail-type and resources, and how many such events came before it."""
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"share must be between 0 and 1, not {share}")
        chosen = frozenset(sources)
        if chosen & DURABLE_SOURCES:
            raise ValueError(
                f"{', '.join(sorted(chosen & DURABLE_SOURCES))} deliver durably: AWS does not lose their events"
            )
        with self._mutex:
            self._share, self._seed, self._sources = share, seed, chosen or None
            self._random = random.Random(seed)
            self._occurrences.clear()

    @property
    def sent(self) -> list[ServiceEvent]:
        """The events that reached the bus, oldest first."""
        with self._mutex:
            return list(self._sent)

    @property
    def dropped(self) -> list[ServiceEvent]:
        """The best-effort events that were lost, oldest first."""
        with self._mutex:
            return list(self._dropped)

    def send(self, event: ServiceEvent) -> bool:
        """Put `event` on its account's default bus unless it is to be lost; True when it was sent."""
        with self._mutex:
            lost = self._loses(event)
            (self._dropped if lost else self._sent).append(event)
        if lost:
            LOG.info("dropped best-effort event %s %s", event.source, event.detail_type)
            return False
        _put(event)
        return True

    def _loses(self, event: ServiceEvent) -> bool:
        if event.durable or self._share == 0.0:
            return False
        if self._sources is not None and event.source not in self._sources:
            return False
        key = (event.source, event.detail_type, event.resources)
        occurrence = self._occurrences[key]
        self._occurrences[key] += 1
        if self._seed is None:
            return self._random.random() < self._share
        digest = hashlib.sha256(
            json.dumps([self._seed, *key[:2], list(key[2]), occurrence]).encode()
        ).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self._share

    def install(self, stack: ExitStack) -> None:
        """Make this the recorder every emulated event goes through, and start the clock, until `stack`
        closes."""
        previous = _installed.events
        _installed.events = self
        self._clock.start()

        def uninstall() -> None:
            self._clock.stop()
            _installed.events = previous

        stack.callback(uninstall)


class _Installed:
    events: AwsEvents | None = None


_installed = _Installed()


def send(
    account: str,
    region: str,
    source: str,
    detail_type: str,
    resources: Iterable[str],
    detail: dict[str, Any],
) -> bool:
    """Send an AWS service event to the default bus of `account` in `region`, as the service does (see the
    module docstring for when it is lost instead); True when it was sent."""
    event = ServiceEvent(account, region, source, detail_type, tuple(resources), detail)
    events = _installed.events
    if events is None:
        _put(event)
        return True
    return events.send(event)


def wake_at(due: float, advance: Callable[[], None]) -> None:
    """Call `advance` at `due` (a time.monotonic() instant) on the clock's thread, so that a transition
    completes, and its event is sent, when AWS would; nothing happens without an installed AwsEvents."""
    events = _installed.events
    if events is not None:
        events._clock.at(due, advance)


def _put(event: ServiceEvent) -> None:
    events_backends[event.account][event.region].put_events(
        [
            {
                "Source": event.source,
                "DetailType": event.detail_type,
                "Resources": list(event.resources),
                "Detail": json.dumps(event.detail),
            }
        ]
    )


class _Clock:
    """Calls due callbacks in deadline order on one daemon thread."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._changed:
            self._stopping = False
            self._due = []
        self._thread = threading.Thread(target=self._run, name="emulated-aws-clock", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._due = []
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def at(self, due: float, callback: Callable[[], None]) -> None:
        with self._changed:
            if self._thread is None or self._stopping:
                return
            heapq.heappush(self._due, (due, next(self._order), callback))
            self._changed.notify_all()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._stopping and (not self._due or self._due[0][0] > time.monotonic()):
                    self._changed.wait(self._due[0][0] - time.monotonic() if self._due else None)
                if self._stopping:
                    return
                _, _, callback = heapq.heappop(self._due)
            try:
                callback()
            except Exception:  # one emulation's failure must not stop the others' clock: logged, not raised
                LOG.exception("an emulated transition failed on the clock's thread")


class HeldEvents:
    """An emulation's lock, re-entrant, and the events its transitions send while it is held. They leave in
    the order they happened, once the outermost holder lets go: a rule's Lambda target runs in the sending
    thread (the clock's, or a caller's) and may call the same service, or wait for a thread that does."""

    def __init__(self) -> None:
        self.mutex = threading.RLock()
        self._outbox: list[Callable[[], None]] = []
        self._depth = threading.local()

    @contextmanager
    def held(self) -> Iterator[None]:
        try:
            with self.mutex:
                self._depth.held = getattr(self._depth, "held", 0) + 1
                try:
                    yield
                finally:
                    self._depth.held -= 1
        finally:
            if not self._depth.held:
                self._flush()

    def later(self, send: Callable[[], None]) -> None:
        """Send once the lock is let go (call with it held)."""
        self._outbox.append(send)

    def forget(self) -> None:
        with self.mutex:
            self._outbox = []

    def _flush(self) -> None:
        # One at a time, so that events leave in the order they happened whichever thread sends them.
        while True:
            with self.mutex:
                if not self._outbox:
                    return
                send = self._outbox.pop(0)
            send()


# A wake asked for this long ago (real seconds) that has not come is taken as lost (no clock was running).
STALE_WAKE_SECONDS = 1.0


class Wakes:
    """The clock's wakes an emulation asked for, by key (an emulated backend): one before each moment is
    enough, since advancing the backend when it comes plans the next one."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, str], set[float]] = {}
        self._mutex = threading.Lock()

    def ask(self, key: tuple[str, str], due: float, advance: Callable[[], None]) -> None:
        horizon = time.monotonic() - STALE_WAKE_SECONDS
        with self._mutex:
            pending = {at for at in self._pending.get(key, set()) if at > horizon}
            self._pending[key] = pending
            if pending and min(pending) <= due:
                return
            pending.add(due)
        wake_at(due, lambda: self._woken(key, due, advance))

    def _woken(self, key: tuple[str, str], due: float, advance: Callable[[], None]) -> None:
        with self._mutex:
            self._pending.get(key, set()).discard(due)
        advance()
