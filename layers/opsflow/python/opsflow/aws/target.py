"""What a run acts on, named once: the kind of resource and its name (and, later, its account and region).

Its `key` is what the locks table and the run record hold, so it keeps the form records already carry
(`asg:web`, `env:staging`, `ecs:cluster/service`, `listener:<arn>`)."""

from __future__ import annotations

from dataclasses import dataclass

KIND_LABELS = {
    "asg": "Auto Scaling group",
    "env": "environment",
    "ecs": "ECS service",
    "listener": "listener",
}


@dataclass(frozen=True)
class Target:
    kind: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"

    @classmethod
    def from_key(cls, key: str) -> Target:
        kind, _, name = key.partition(":")
        return cls(kind, name) if name else cls("", key)

    def describe(self) -> str:
        """For people: `Auto Scaling group web`."""
        return f"{KIND_LABELS.get(self.kind, self.kind)} {self.name}".strip()
