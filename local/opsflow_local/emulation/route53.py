"""Route 53 behaviours that moto 5.2.5 lacks or bends, emulated as the Route 53 API Reference
(ChangeResourceRecordSets, GetChange, ChangeInfo, GetHealthCheckStatus, HealthCheckObservation,
ResourceRecordSet) and the Developer Guide ("How Amazon Route 53 determines whether a health check is
healthy", "Weighted routing") document them.

What moto already does as AWS does, as probed: weighted record sets are kept per (name, type,
SetIdentifier), an UPSERT replaces the one set it names, ListResourceRecordSets lists them with their
Weight, TTL and HealthCheckId; hosted zones keep tags (ListTagsForResource); health checks are created and
described.

What is emulated:
- ChangeInfo: a change is `PENDING` when ChangeResourceRecordSets answers, and `INSYNC` once it has
  propagated to every Route 53 authoritative server, `propagation_seconds` later (the Developer Guide: "changes
  generally propagate to all Route 53 name servers within 60 seconds"); GetChange reports the status of the
  change asked for, and `NoSuchChange` for an id it never gave. moto: one fixed change id, always `INSYNC`.
  `hold_changes` (a test hook) keeps new changes `PENDING` until `release_changes`.
- ResourceRecordSet `Weight` must be 0..255 (`InvalidInput`), checked for the whole batch before any of it is
  applied, since Route 53 applies a batch all or nothing. moto takes any integer.
- GetHealthCheckStatus: one observation per health checker region (the eight default regions), each with
  a `Success: HTTP Status Code 200...` report, or a `Failure: ...` one for as many checkers as
  `set_unhealthy` (a test hook) says; `set_healthy` makes them pass again. moto: one observation, always
  success.

Not emulated: a batch that fails part-way in moto (a DELETE of a missing set after an UPSERT) still applies
its first changes; health checks' own request interval and failure threshold (a status set by a hook is
reported at once); calculated and CloudWatch-alarm health checks' status.
Durations are AWS seconds multiplied by `time_scale`.
"""

from __future__ import annotations

import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.route53.exceptions import InvalidInput, Route53ClientError
from moto.route53.responses import Route53 as Route53Response

# Route 53's default health checker regions (API Reference, HealthCheckConfig `Regions`).
CHECKER_REGIONS = (
    "us-east-1",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "sa-east-1",
)
MAX_WEIGHT = 255
HEALTHY_REPORT = "Success: HTTP Status Code 200. Resolved IP: 192.0.2.10. OK"
UNHEALTHY_REPORT = "Failure: HTTP Status Code 503, Service Unavailable. Resolved IP: 192.0.2.10."


class NoSuchChange(Route53ClientError):
    def __init__(self, change_id: str) -> None:
        super().__init__("NoSuchChange", f"A change with the specified change ID does not exist: {change_id}")


@dataclass
class Route53Emulation:
    time_scale: float = 1.0
    propagation_seconds: float = 30.0
    # Change id -> when (time.monotonic) it is INSYNC; None: held PENDING.
    _changes: dict[str, float | None] = field(default_factory=dict)
    _submitted: dict[str, Any] = field(default_factory=dict)
    # Health check id -> (failing checkers, their report).
    _failing: dict[str, tuple[int, str]] = field(default_factory=dict)
    _holding: bool = False
    _mutex: threading.Lock = field(default_factory=threading.Lock)

    def install(self, stack: ExitStack) -> None:
        emulation = self
        original_change = Route53Response.change_resource_record_sets
        original_status = Route53Response.get_health_check_status

        def change_resource_record_sets(response: Route53Response) -> ActionResult:
            emulation.check_weights(response._get_param("ChangeBatch.Changes") or [])
            original_change(response)
            return ActionResult({"ChangeInfo": emulation.submit()})

        def get_change(response: Route53Response) -> ActionResult:
            return ActionResult({"ChangeInfo": emulation.change_info(str(response._get_param("Id")))})

        def get_health_check_status(response: Route53Response) -> ActionResult:
            original_status(response)  # NoSuchHealthCheck, as moto raises it
            return ActionResult(
                {"HealthCheckObservations": emulation.observations(str(response._get_param("HealthCheckId")))}
            )

        for name, method in {
            "change_resource_record_sets": change_resource_record_sets,
            "get_change": get_change,
            "get_health_check_status": get_health_check_status,
        }.items():
            stack.enter_context(mock.patch.object(Route53Response, name, method))

    # Changes ---------------------------------------------------------------------------------------

    @staticmethod
    def check_weights(changes: list[dict[str, Any]]) -> None:
        for change in changes:
            record = change.get("ResourceRecordSet") or {}
            if "Weight" in record and not 0 <= int(record["Weight"]) <= MAX_WEIGHT:
                raise InvalidInput(
                    f"Invalid request: weight {record['Weight']} of {record.get('Name')} is not within "
                    f"0 and {MAX_WEIGHT}"
                )

    def submit(self) -> dict[str, Any]:
        change_id = "C" + uuid.uuid4().hex[:20].upper()
        with self._mutex:
            due = None if self._holding else time.monotonic() + self.propagation_seconds * self.time_scale
            self._changes[change_id] = due
            self._submitted[change_id] = utcnow()
        return {"Id": f"/change/{change_id}", "Status": "PENDING", "SubmittedAt": self._submitted[change_id]}

    def change_info(self, change_id: str) -> dict[str, Any]:
        short = change_id.rsplit("/", 1)[-1]
        with self._mutex:
            if short not in self._changes:
                raise NoSuchChange(short)
            due = self._changes[short]
            status = "INSYNC" if due is not None and time.monotonic() >= due else "PENDING"
            return {"Id": f"/change/{short}", "Status": status, "SubmittedAt": self._submitted[short]}

    def hold_changes(self) -> None:
        """New changes stay PENDING until `release_changes`."""
        with self._mutex:
            self._holding = True

    def release_changes(self) -> None:
        with self._mutex:
            self._holding = False
            now = time.monotonic()
            for change_id, due in self._changes.items():
                if due is None:
                    self._changes[change_id] = now + self.propagation_seconds * self.time_scale

    # Health checks ---------------------------------------------------------------------------------

    def set_unhealthy(
        self, health_check_id: str, failing: int = len(CHECKER_REGIONS), report: str = UNHEALTHY_REPORT
    ) -> None:
        """`failing` of the checkers report `report` from now on (all of them by default)."""
        with self._mutex:
            self._failing[health_check_id] = (min(failing, len(CHECKER_REGIONS)), report)

    def set_healthy(self, health_check_id: str) -> None:
        with self._mutex:
            self._failing.pop(health_check_id, None)

    def observations(self, health_check_id: str) -> list[dict[str, Any]]:
        with self._mutex:
            failing, report = self._failing.get(health_check_id, (0, UNHEALTHY_REPORT))
        checked = utcnow()
        return [
            {
                "Region": region,
                "IPAddress": f"198.51.100.{index + 1}",
                "StatusReport": {
                    "Status": report if index < failing else HEALTHY_REPORT,
                    "CheckedTime": checked,
                },
            }
            for index, region in enumerate(CHECKER_REGIONS)
        ]
