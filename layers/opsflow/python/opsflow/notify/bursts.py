"""A summary instead of a flood. One pipeline run emits an event for itself, for each stage and for each
action, a failing one six or more within seconds. Each event is folded into the run's record; a channel
is sent the summary of the record so far, not the event:

- a Slack channel with a bot token gets one message, updated as events arrive (`chat.update`), with the
  failures and the end in its thread;
- a channel that can neither update nor reply (a webhook; AWS Chatbot's, which threads by the run but
  cannot update) gets at most two: the first event that reaches it, and the summary at the end.

A part is recorded once per state, so a duplicate event changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from opsflow.notify.message import STATUS_EMOJI, Link, Message, Severity, Status


@dataclass(frozen=True)
class Folded:
    """What the summary needs of one event of a burst."""

    part: str | None
    state: str
    closes: bool
    title: str
    status: Status
    severity: Severity
    time: str
    cause: str | None = None
    facts: tuple[tuple[str, str], ...] = ()
    links: tuple[Link, ...] = ()

    @property
    def entry_id(self) -> str:
        """One entry per part and state: the same event twice is folded once."""
        return f"{self.part or ''}#{self.state}"

    def to_json(self) -> str:
        return json.dumps(
            {
                "part": self.part,
                "state": self.state,
                "closes": self.closes,
                "title": self.title,
                "status": self.status.value,
                "severity": self.severity.value,
                "time": self.time,
                "cause": self.cause,
                "facts": [list(fact) for fact in self.facts],
                "links": [[link.label, link.url] for link in self.links],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Folded:
        data: dict[str, Any] = json.loads(text)
        return cls(
            part=data["part"],
            state=data["state"],
            closes=bool(data["closes"]),
            title=data["title"],
            status=Status(data["status"]),
            severity=Severity(data["severity"]),
            time=data["time"],
            cause=data.get("cause"),
            facts=tuple((str(label), str(value)) for label, value in data.get("facts", [])),
            links=tuple(Link(str(label), str(url)) for label, url in data.get("links", [])),
        )


def fold(message: Message, time: str) -> Folded:
    if message.burst is None:
        raise ValueError("only a message of a burst is folded")
    return Folded(
        part=message.burst.part,
        state=message.burst.state,
        closes=message.burst.closes,
        title=message.title,
        status=message.status,
        severity=message.severity,
        time=time,
        cause=message.cause,
        facts=message.facts,
        links=message.links,
    )


def _latest(entries: list[Folded]) -> Folded:
    """A part's (or the execution's) state now: the newest, and of two in the same second (EventBridge's
    `time` has seconds) the one that ends it."""
    return max(entries, key=lambda entry: (entry.time, entry.closes))


def current(entries: list[Folded]) -> tuple[Folded | None, dict[str, Folded]]:
    """The execution's own latest entry, and each part's latest, in the order the parts began."""
    whole = [entry for entry in entries if entry.part is None]
    by_part: dict[str, list[Folded]] = {}
    for entry in sorted(entries, key=lambda e: e.time):
        if entry.part is not None:
            by_part.setdefault(entry.part, []).append(entry)
    return (_latest(whole) if whole else None), {part: _latest(seen) for part, seen in by_part.items()}


def unsettled(entries: list[Folded]) -> bool:
    """The execution is over but a part it started has not said how it ended: that event is on its way
    (EventBridge does not keep order), and the summary should wait a moment for it."""
    _, parts = current(entries)
    return any(not entry.closes for entry in parts.values())


def _shown_parts(parts: dict[str, Folded]) -> dict[str, Folded]:
    """Actions, and the stages that have none: a stage's outcome is its actions'."""
    return {
        name: entry
        for name, entry in parts.items()
        if " / " in name or not any(other.startswith(f"{name} / ") for other in parts)
    }


def summarize(latest: Message, entries: list[Folded]) -> Message:
    """The message a channel is shown for the burst so far. `latest` (the event just folded) gives the
    routing fields and the subject."""
    if latest.burst is None:
        return latest
    subject = latest.burst.subject
    whole, parts = current(entries)
    if not parts and (whole is None or whole.entry_id == fold(latest, "").entry_id):
        return latest  # a burst of the execution's own events only: the latest says it all
    shown = _shown_parts(parts)
    failed = [(name, entry) for name, entry in shown.items() if entry.status == Status.FAILED]
    over = whole is not None and whole.closes
    severities = [entry.severity for entry in entries] or [latest.severity]
    if over and whole is not None:
        status, severity = whole.status, whole.severity
        title = whole.title
        if failed and status == Status.FAILED:
            title = f"{subject}: {whole.state.lower()} at {failed[0][0]}"
    elif failed:
        status, severity = Status.FAILED, max(severities, key=lambda s: s.rank)
        title = f"{subject}: {failed[0][0]} failed"
    else:
        status, severity = Status.IN_PROGRESS, max(severities, key=lambda s: s.rank)
        running = [name for name, entry in shown.items() if not entry.closes]
        if running:
            title = f"{subject}: in progress at {running[-1]}"
        elif whole is not None and not shown:
            title = whole.title
        else:
            title = f"{subject}: in progress"
    base = whole or (_latest(entries) if entries else None)
    facts = list((base or latest).facts)
    if shown:
        facts.append(
            ("Steps", " · ".join(f"{name} {STATUS_EMOJI[entry.status]}" for name, entry in shown.items()))
        )
    cause = None
    links = list(whole.links if whole else latest.links[:1])
    if failed:
        entry = failed[0][1]
        cause = entry.cause or (whole.cause if whole else None)
        labels = {label for label, _ in facts}
        facts += [fact for fact in entry.facts if fact[0] not in labels]
        links += [link for link in entry.links if link not in links]
    elif whole is not None:
        cause = whole.cause
    return replace(
        latest,
        title=title,
        status=status,
        severity=severity,
        summary="",
        facts=tuple(facts),
        cause=cause,
        links=tuple(links),
    )


def worth_a_reply(message: Message, entries: list[Folded]) -> bool:
    """In a thread under the summary, what someone should be told of: the run's end, and a part that
    failed (an action, or a stage without actions: a stage's failure is its action's)."""
    burst = message.burst
    if burst is None or not burst.closes:
        return False
    if burst.part is None:
        return True
    _, parts = current(entries)
    return message.status == Status.FAILED and burst.part in _shown_parts(parts)
