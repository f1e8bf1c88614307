"""The end of a run: what it did to its save, the run's result for the run record, and its error.

A stop keeps its save whatever happened, noting the databases it could not stop. A start-up marks the
save restored once it has been through every step, listing what it could not restore: the next shutdown
saves those as this save had them, so their capacity is never lost, and the nightly stops go on (a save
left unrestored would make every night look "already down"). Any failed resource ends the run FAILED.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opsflow.runs.steps import CaughtError
from opsflow.store.capacity import ResourceKind, ResourceRef, SavedCapacity
from opsflow.workflows.env_power.inventory import KIND_NAMES, PowerAws, describe_counts
from opsflow.workflows.env_power.request import Place
from opsflow.workflows.env_power.start import saved_for_start
from opsflow.workflows.env_power.state import (
    MAX_LISTED_FAILURES,
    DatabaseProgress,
    EnvPowerState,
    FailedResource,
    KindOutcome,
    PlaceResult,
    Settled,
)

# How much of a list a run's summary shows; the rest is counted.
LISTED = 25
STOP_STEPS = ("services", "groups", "instances", "databases")
START_STEPS = ("databases", "instances", "groups", "services")
KINDS_OF = {"stop": STOP_STEPS, "start": START_STEPS, "restop_databases": ("databases",)}
REF_KINDS: dict[str, ResourceKind] = {
    "services": "service",
    "groups": "group",
    "instances": "instance",
    "databases": "database",
}
AFTER_FAILURE = {
    "stop": "The saved capacity is kept, so the next start-up restores everything this stop changed; "
    "stop the failed resources by hand if they must not run tonight.",
    "start": "What failed is kept in the save: the next shutdown keeps its earlier capacity, and the next "
    "start-up restores it. Fix the cause, or restore it by hand now.",
    "restop_databases": "The save is kept; the next daily check tries again.",
}
STEP_PREFIX = {"stop": "stop", "start": "restore", "restop_databases": "restop"}
VERBS = {"stop": "Stopped", "start": "Started", "restop_databases": "Stopped again"}


@dataclass(frozen=True)
class KindResult:
    """What the run did to one kind of resource."""

    kind: str
    done: int = 0
    failed: list[FailedResource] = field(default_factory=list)
    failed_count: int = 0
    gone: list[ResourceRef] = field(default_factory=list)
    # Set when the step failed as a whole (its Catch put the error in its place): it failed for all.
    step_error: str | None = None
    counted_as: str = "changed"

    @classmethod
    def of(cls, kind: str, result: KindOutcome | DatabaseProgress | CaughtError | None) -> KindResult:
        if result is None:
            return cls(kind)
        if isinstance(result, CaughtError):
            return cls(kind, failed_count=1, step_error=result.describe())
        if isinstance(result, DatabaseProgress):
            return cls(
                kind, result.started, result.failed, result.failed_count, result.gone, counted_as="started"
            )
        return cls(kind, result.changed, result.failed, result.failed_count, result.gone)

    def failed_records(self) -> list[dict[str, str]]:
        if self.step_error is not None:
            return [
                {"resource": f"every {KIND_NAMES[self.kind][0]} (the step failed)", "error": self.step_error}
            ]
        return [f.as_record() for f in self.failed]

    def as_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            self.counted_as: self.done,
            "failed": self.failed_records(),
            "failed_count": self.failed_count,
            "gone": [ref.describe() for ref in self.gone],
        }
        if self.step_error is not None:
            record["step_failed"] = True
        return record

    def not_restored(self, saved: SavedCapacity) -> list[ResourceRef]:
        if self.step_error is not None or self.failed_count > len(self.failed):
            # Not every failure is listed: count them all as not restored.
            kind = REF_KINDS[self.kind]
            if kind == "service":
                return [s.ref for s in saved.services]
            if kind == "group":
                return [g.ref for g in saved.groups]
            return [
                ResourceRef(kind, id_) for id_ in (saved.instances if kind == "instance" else saved.databases)
            ]
        return [f.ref for f in self.failed]


@dataclass(frozen=True)
class RunOutcome:
    environment: str
    action: str
    kinds: list[KindResult]
    summary: str
    already_down: bool = False
    nothing_to_restore: bool = False

    @property
    def failed_count(self) -> int:
        return sum(k.failed_count for k in self.kinds)

    def failed_records(self) -> list[dict[str, str]]:
        return [record for k in self.kinds for record in k.failed_records()]

    def gone_records(self) -> list[str]:
        return [ref.describe() for k in self.kinds for ref in k.gone]


def run_outcome(state: EnvPowerState) -> RunOutcome:
    """Per kind of resource what changed and what failed, and a summary."""
    action, environment = state.power_request.action, state.environment
    if action == "stop" and state.save is not None and state.save.already_down:
        summary = (
            f"{environment} was already down (since {state.save.since}, run {state.save.saved_by}); "
            "nothing changed and the first save is kept."
        )
        return RunOutcome(environment, action, [], summary, already_down=True)
    if action == "start" and state.load is not None and state.load.nothing_to_restore:
        summary = f"{environment}: {state.load.note}; nothing changed."
        return RunOutcome(environment, action, [], summary, nothing_to_restore=True)
    results = state.by_kind()
    kinds = [KindResult.of(kind, results[kind]) for kind in KINDS_OF[action]]
    summary = f"{VERBS[action]} {environment}: {describe_counts({k.kind: k.done for k in kinds})}."
    gone = [ref.describe() for k in kinds for ref in k.gone]
    if gone:
        summary += (
            f" {len(gone)} saved resource(s) no longer exist or no longer carry the tags: "
            + ", ".join(gone[:LISTED])
            + "."
        )
    failed_count = sum(k.failed_count for k in kinds)
    if failed_count:
        failed = [f"{r['resource']}: {r['error']}" for k in kinds for r in k.failed_records()]
        summary += (
            f" {failed_count} resource{'s' if failed_count != 1 else ''} failed: "
            + "; ".join(failed[:LISTED])
            + " "
            + AFTER_FAILURE[action]
        )
    return RunOutcome(environment, action, kinds, summary)


def settle_save(state: EnvPowerState, aws: PowerAws) -> Settled:
    outcome = run_outcome(state)
    not_restored: list[ResourceRef] = []
    if outcome.action == "stop" and not outcome.already_down and state.save is not None:
        databases = next(k for k in outcome.kinds if k.kind == "databases")
        not_stopped = tuple(f.ref.id for f in databases.failed)
        if not_stopped and state.save.save_run_id is not None:
            aws.capacity.note_not_stopped(state.save_key, state.save.save_run_id, not_stopped)
    if outcome.action == "start" and not outcome.nothing_to_restore and state.load is not None:
        saved = saved_for_start(state, aws)
        not_restored = list(dict.fromkeys(ref for k in outcome.kinds for ref in k.not_restored(saved)))
        aws.capacity.mark_restored(state.save_key, saved.run_id, state.run_id, tuple(not_restored))
    settled = Settled(
        failed_count=outcome.failed_count,
        not_restored=not_restored[:MAX_LISTED_FAILURES],
        summary=outcome.summary,
    )
    # What this account and region reports to the run's end (the Map hands back only this).
    with_outcome = state.model_copy(update={"outcome": settled})
    return settled.model_copy(
        update={
            "failed": bool(outcome.failed_count),
            "report": place_result(with_outcome),
            "error_report": place_error(with_outcome) if outcome.failed_count else None,
        }
    )


def place_failed(state: EnvPowerState) -> Settled:
    """An account and region whose save, load or settling failed as a whole (its spoke role missing, say):
    named in the run's outcome, while the others go on."""
    return Settled(
        failed=True,
        failed_count=0,
        error_report=place_error(state),
        summary=f"{state.environment}{state.where_label}: {state.error.describe() if state.error else 'failed'}",
    )


def place_result(state: EnvPowerState) -> dict[str, Any]:
    """One account and region's result, as a run over that one alone records it."""
    outcome = run_outcome(state)
    result: dict[str, Any] = {"environment": outcome.environment, "action": outcome.action}
    if outcome.already_down:
        result["already_down"] = True
    elif outcome.nothing_to_restore:
        result["nothing_to_restore"] = True
    else:
        result["outcome"] = {k.kind: k.as_record() for k in outcome.kinds}
    result.update(
        failed=outcome.failed_records(),
        failed_count=outcome.failed_count,
        gone=outcome.gone_records(),
        summary=outcome.summary,
    )
    if outcome.action == "stop" and not outcome.already_down and state.save is not None:
        result["saved"] = state.save.saved
        if state.save.resumed:
            result["resumed"] = state.save.resumed
    elif outcome.action == "start" and not outcome.nothing_to_restore and state.load is not None:
        result["restored_from"] = {"run_id": state.load.saved_by, "saved_at": state.load.saved_at}
        if state.outcome is not None and state.outcome.not_restored:
            result["not_restored"] = [ref.describe() for ref in state.outcome.not_restored]
    return result


def place_error(state: EnvPowerState) -> dict[str, Any]:
    """Resources that failed once every step has run; or a step that failed as a whole (not one
    resource): what is known, and that the save is kept."""
    if state.outcome is not None and state.outcome.failed_count:
        outcome = run_outcome(state)
        return {
            "step": ", ".join(
                f"{STEP_PREFIX[outcome.action]}_{k.kind}" for k in outcome.kinds if k.failed_count
            ),
            "message": outcome.summary,
            "next_step": AFTER_FAILURE[outcome.action],
            "outcome": {k.kind: k.as_record() for k in outcome.kinds},
            "failed": outcome.failed_records(),
            "gone": outcome.gone_records(),
            "rollback": {"undone": [], "problems": []},
        }
    kept = (
        "Its saved capacity is kept: start-up restores what was stopped."
        if state.power_request.action == "stop"
        else "The save is kept: start the environment again to finish restoring it."
    )
    return {
        "step": state.failed_step or "unknown",
        "message": f"{state.error.describe() if state.error else 'unknown error'}. {kept}",
        "rollback": {"undone": [], "problems": []},
    }


def conclude(state: EnvPowerState) -> Settled:
    """What the run did in all its accounts and regions, from what each iteration of the Map reported."""
    places = state.places or []
    failed = [p for p in places if p.outcome.failed]
    if len(places) == 1:
        only = places[0].outcome
        return only.model_copy(update={"summary": str(only.report.get("summary") or only.summary)})
    report = _across(state, places)
    error_report = None
    if failed:
        error_report = {
            "step": "places",
            "message": report["summary"],
            "next_step": AFTER_FAILURE[state.power_request.action],
            "places": report["places"],
            "failed": [
                {
                    "resource": _label(p),
                    "error": str((p.outcome.error_report or {}).get("message") or "failed"),
                }
                for p in failed
            ],
            "rollback": {"undone": [], "problems": []},
        }
    return Settled(
        failed=bool(failed),
        failed_count=sum(max(p.outcome.failed_count, 1 if p.outcome.failed else 0) for p in places),
        report=report,
        error_report=error_report,
        summary=report["summary"],
    )


def _label(place: PlaceResult) -> str:
    return (place.place or Place()).describe()


def _across(state: EnvPowerState, places: list[PlaceResult]) -> dict[str, Any]:
    action, environment = state.power_request.action, state.environment
    rows = []
    saved: dict[str, int] = {}
    for place in places:
        outcome = place.outcome
        report = outcome.report if not outcome.failed or outcome.report else (outcome.error_report or {})
        for kind, count in (report.get("saved") or {}).items():
            saved[kind] = saved.get(kind, 0) + int(count)
        rows.append(
            {
                **(place.place or Place()).shown(),
                "status": "FAILED" if outcome.failed else "SUCCEEDED",
                "summary": str(report.get("summary") or report.get("message") or outcome.summary),
            }
        )
    failed = [row for row in rows if row["status"] == "FAILED"]
    done = len(rows) - len(failed)
    summary = f"{VERBS[action]} {environment} in {done} of {len(rows)} account-regions."
    if failed:
        summary += " Failed: " + "; ".join(
            f"{row['account']}/{row['region']}: {row['summary']}" for row in failed[:LISTED]
        )
    result: dict[str, Any] = {
        "environment": environment,
        "action": action,
        "places": rows,
        "failed_count": len(failed),
        "summary": summary,
    }
    if saved:
        result["saved"] = saved
    return result


def run_result(state: EnvPowerState) -> dict[str, Any]:
    """The run's result as the run record keeps it: one account and region's, or all of theirs."""
    if state.outcome is not None and state.outcome.report:
        return dict(state.outcome.report)
    return place_result(state)


def run_error(state: EnvPowerState) -> dict[str, Any]:
    if state.outcome is not None and state.outcome.error_report:
        return dict(state.outcome.error_report)
    return place_error(state)
