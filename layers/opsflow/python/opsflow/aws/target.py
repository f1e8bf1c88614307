"""What a run acts on, named once: the kind of resource, its name, and the account and region it is in
(None: the hub's own).

Its `key` is what the locks table and the run record hold. A target in the hub's own account and region
keeps the form records already carry (`asg:web`, `env:staging`, `ecs:cluster/service`, `listener:<arn>`);
one elsewhere adds `@account/region`, so the same group name in two accounts is two targets."""

from __future__ import annotations

import re
from dataclasses import dataclass

KIND_LABELS = {
    "asg": "Auto Scaling group",
    "env": "environment",
    "ecs": "ECS service",
    "listener": "listener",
    "record": "DNS record",
}


_LOCATED = re.compile(r"(?P<name>.+)@(?P<account>\d{12})?/(?P<region>[a-z]{2}(?:-[a-z]+)+-\d)?")


@dataclass(frozen=True)
class Target:
    kind: str
    name: str
    account: str | None = None
    region: str | None = None

    @property
    def key(self) -> str:
        where = f"@{self.account or ''}/{self.region or ''}" if self.account or self.region else ""
        return f"{self.kind}:{self.name}{where}"

    @classmethod
    def from_key(cls, key: str) -> Target:
        kind, _, rest = key.partition(":")
        if not rest:
            return cls("", key)
        # A group's name may hold "@": only an account id and a region's form make a location.
        located = _LOCATED.fullmatch(rest)
        if located is None:
            return cls(kind, rest)
        return cls(kind, located["name"], located["account"] or None, located["region"] or None)

    def beside(self, kind: str, name: str) -> Target:
        """Another resource in the same account and region (the image a bake of this group makes)."""
        return Target(kind, name, self.account, self.region)

    def at_home(self, account: str, region: str) -> Target:
        """The same target with the hub's own account and region left unsaid, as keys carry them."""
        return Target(
            self.kind,
            self.name,
            None if self.account == account else self.account,
            None if self.region == region else self.region,
        )

    @property
    def shown_name(self) -> str:
        """The name for people: a DNS record's without its hosted zone (`www.example.com`)."""
        if self.kind == "record" and "/" in self.name:
            return self.name.split("/", 1)[1]
        return self.name

    def describe(self) -> str:
        """For people: `Auto Scaling group web`, or `Auto Scaling group web in 111122223333/eu-west-1`."""
        where = "/".join(part for part in (self.account, self.region) if part)
        label = f"{KIND_LABELS.get(self.kind, self.kind)} {self.shown_name}".strip()
        return f"{label} in {where}" if where else label
