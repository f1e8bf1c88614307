"""The DNS cutover request."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from opsflow.aws.route53 import record_name, zone_id
from opsflow.aws.target import Target
from opsflow.runs.requests import RunRequest
from opsflow.traffic.plan import (
    MAX_TRAFFIC_SECONDS,
    CanaryTraffic,
    Seconds,
    StrictModel,
    TrafficPlan,
    TrafficStep,
)

HOSTED_ZONE_ID = r"^(/hostedzone/)?[A-Z0-9]{1,32}$"
# A domain name as Route 53 takes it: labels of letters, digits, hyphens and underscores, a leading `*.`
# for a wildcard, and an optional final dot.
RECORD_NAME = r"^(\*\.)?([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)+[A-Za-z0-9-]{1,63}\.?$"
RecordType = Literal[
    "A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA", "NAPTR", "PTR", "SPF", "DS", "HTTPS", "SVCB"
]


class UrlSmokeTest(StrictModel):
    """A GET of `url` at every check of every step, expecting a 2xx (redirects count as failures)."""

    url: Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=2048)]
    # Well inside the steps Lambda's own 60-second timeout.
    timeout_seconds: Annotated[int, Field(ge=1, le=30)] = 10


class DnsShiftRequest(RunRequest):
    """Move a name's traffic to one of its Route 53 weighted record sets step by step, each step gated by
    Route 53 health checks and CloudWatch alarms; any failed gate puts the weights back as they were."""

    workflow: Literal["dns_shift"]
    hosted_zone_id: Annotated[str, Field(pattern=HOSTED_ZONE_ID, description="The hosted zone (Z...).")]
    record_name: Annotated[
        str,
        Field(
            max_length=1024, pattern=RECORD_NAME, description="The name whose weighted sets share traffic."
        ),
    ]
    record_type: RecordType | None = Field(
        default=None, description="The type of the weighted sets; default: the one type the name has them of."
    )
    to: Annotated[
        str,
        Field(
            min_length=1,
            max_length=128,
            description="The SetIdentifier traffic moves to; every other weighted set of the name gives it up.",
        ),
    ]
    traffic: TrafficPlan = Field(
        default_factory=lambda: CanaryTraffic(type="canary"),
        description="canary {percent, hold_seconds}, linear {step_percent, interval_seconds} or "
        "steps {steps: [{percent, hold_seconds}]}. Each hold lasts at least the record's TTL.",
    )
    health_checks: (
        Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=10)] | None
    ) = Field(
        default=None,
        description="Route 53 health checks that must stay healthy; default: the health check of the set "
        "traffic moves to, if it has one.",
    )
    alarms: Annotated[list[Annotated[str, Field(min_length=1, max_length=255)]], Field(max_length=10)] = (
        Field(default_factory=list, description="CloudWatch alarms; one in ALARM puts the weights back.")
    )
    smoke_test: UrlSmokeTest | None = Field(
        default=None,
        description="{url, timeout_seconds}: a GET (of the new set's endpoint, say) that must answer 2xx at "
        "every check; any other answer puts the weights back.",
    )
    bake_seconds: Seconds = Field(
        default=300,
        description="How long all traffic is held on the new set, watched, before the run succeeds "
        "(at least the record's TTL).",
    )

    @model_validator(mode="after")
    def _within_limits(self) -> DnsShiftRequest:
        held = sum(step.hold_seconds for step in self.traffic.expand()) + self.bake_seconds
        if held > MAX_TRAFFIC_SECONDS:
            raise ValueError(
                f"holds and bake_seconds add up to {held} s; at most {MAX_TRAFFIC_SECONDS} s (12 hours) in all"
            )
        return self

    def target(self) -> Target:
        # One run per record name: Route 53 is global, so the name in its zone is the whole address.
        return self.located(
            "record", f"{zone_id(self.hosted_zone_id)}/{record_name(self.record_name).rstrip('.')}"
        )

    def traffic_steps(self) -> list[TrafficStep]:
        return self.traffic.expand()
