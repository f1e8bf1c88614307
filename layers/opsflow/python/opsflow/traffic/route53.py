"""The second shifter: a name's Route 53 weighted record sets. Green is one set; blue is every other weighted
set of the name and type, which share blue's part in the proportions they had when the run began.

Weights are written as shares of 100, so a record's weight reads as its percentage. Each change is one
batch (Route 53 applies a batch all or nothing) and returns its change id: a share counts only once the
change is INSYNC on every Route 53 name server, and resolvers may keep the old answer for the record's TTL."""

from __future__ import annotations

from dataclasses import dataclass

from opsflow.aws.route53 import Route53, WeightedSet
from opsflow.errors import Refused
from opsflow.traffic.shifter import Side, Weights


def split(total: int, proportions: dict[str, int]) -> dict[str, int]:
    """`total` shared in whole numbers in these proportions (largest remainder first); equally when they are
    all zero."""
    if not proportions:
        return {}
    basis = proportions if any(proportions.values()) else dict.fromkeys(proportions, 1)
    whole = sum(basis.values())
    exact = {key: total * weight / whole for key, weight in basis.items()}
    shares = {key: int(value) for key, value in exact.items()}
    left = total - sum(shares.values())
    for key in sorted(exact, key=lambda k: (-(exact[k] - shares[k]), k))[:left]:
        shares[key] += 1
    return shares


@dataclass(frozen=True)
class WeightedRecordShifter:
    route53: Route53
    hosted_zone_id: str
    name: str
    type: str
    green: str  # the set identifier traffic moves to
    # Every set's weight when the run began: blue's proportions, and what a put-back restores.
    start: dict[str, int]

    @property
    def sides(self) -> tuple[str, str]:
        return ", ".join(sorted(k for k in self.start if k != self.green)), self.green

    def describe(self) -> str:
        return f"record {self.name.rstrip('.')} {self.type}"

    def _sets(self) -> dict[str, WeightedSet]:
        found = self.route53.record_sets(self.hosted_zone_id, self.name)
        return {s.set_identifier: s for s in found if s.type == self.type and s.set_identifier in self.start}

    def weights(self) -> Weights:
        """Blue's and green's shares now, in percent of the name's weight."""
        sets = self._sets()
        total = sum(s.weight for s in sets.values())
        green = sets[self.green].weight if self.green in sets else 0
        if total == 0:
            # All weights zero: Route 53 answers with every set equally.
            return Weights(100 - 100 // max(len(sets), 1), 100 // max(len(sets), 1))
        green_share = round(100 * green / total)
        return Weights(100 - green_share, green_share)

    def shift(self, to_green_percent: int) -> str:
        blue = {key: weight for key, weight in self.start.items() if key != self.green}
        wanted = {**split(100 - to_green_percent, blue), self.green: to_green_percent}
        return self._set(wanted)

    def restore_all(self, to: Side) -> Weights:
        before = self.weights()
        if not before.all_on(to):
            if to == "blue" and self.start.get(self.green, 0) == 0:
                self._set(dict(self.start))  # the weights exactly as they were
            else:
                self.shift(100 if to == "green" else 0)
        return before

    def _set(self, weights: dict[str, int]) -> str:
        sets = self._sets()
        missing = sorted(set(weights) - set(sets))
        if missing:
            raise Refused(
                f"{self.describe()} has no weighted set {', '.join(missing)} any more: someone changed it"
            )
        return self.route53.set_weights(
            self.hosted_zone_id, [sets[key].with_weight(weight) for key, weight in sorted(weights.items())]
        )
