"""What a cutover says when it ends: its result, its error, and what a put-back did."""

from __future__ import annotations

from typing import Any

from opsflow.aws import clients
from opsflow.aws.target import Target
from opsflow.errors import OpsflowError
from opsflow.runs.steps import CaughtError
from opsflow.store.runs import Run
from opsflow.workflows.dns_shift.deps import CutoverAws
from opsflow.workflows.dns_shift.errors import GATE_ERRORS, GATES
from opsflow.workflows.dns_shift.state import CutoverSpec, CutoverState, PutBack


def put_back(aws: CutoverAws, spec: CutoverSpec) -> PutBack:
    """The weights as they were when the run began (or, had the new set a share then, none on it). Raises
    when they could not be put back."""
    shifter = aws.shifter(spec)
    before = shifter.restore_all("blue")
    if before.green == 0:
        return PutBack(summary=f"the weights stayed as they began ({spec.describe_start()})")
    return PutBack(
        undone=[f"{shifter.describe()} back to {spec.describe_start()} from {before.green}% on {spec.green}"],
        summary=f"{shifter.describe()} back to {spec.describe_start()}",
    )


def run_result(state: CutoverState) -> dict[str, Any]:
    spec = state.spec
    history = state.traffic.history if state.traffic else []
    weights = [shifted.percent for shifted in history]
    return {
        "summary": f"{spec.name.rstrip('.')} sends all its traffic to {spec.green}: shifted "
        f"{' -> '.join(f'{w}%' for w in weights)}, each step INSYNC and held at least the {spec.ttl} s TTL; "
        f"held {spec.bake_seconds} s at 100%.",
        "record": {"hosted_zone_id": spec.hosted_zone_id, "name": spec.name, "type": spec.type},
        "to": spec.green,
        "from": spec.blue,
        "weights": weights,
        "history": [shifted.model_dump(mode="json") for shifted in history],
    }


def run_error(state: CutoverState) -> dict[str, Any]:
    error = state.error or CaughtError()
    step = state.failed_step or "unknown"
    gate = GATES.get(error.error, GATES.get(step, step))
    traffic = state.traffic
    weight = traffic.weight if traffic else 0
    position = _position(state)
    reason = error.describe() if state.error else "unknown error"
    if error.error in GATE_ERRORS:
        reason = reason.removeprefix(f"{error.error}: ")
        what = "abort" if error.error == "RunEnded" else f"{gate} gate"
    else:
        what = f"{gate} step"
    rollback = state.rollback
    problems = list(rollback.problems) if rollback else []
    if state.rollback_error is not None:
        problems.append(f"putting the weights back: {state.rollback_error.describe()}")
    after = (rollback.put_back if rollback else "") or (
        "nothing was put back" if problems else "nothing had changed"
    )
    return {
        "step": step,
        "gate": gate,
        "weight": weight,
        "to": state.spec.green if state.guard else None,
        "error": error.error or "Error",
        "message": f"The {what} failed {position}: {reason.rstrip('.')}. Then: {after}.",
        "weights": [shifted.percent for shifted in traffic.history] if traffic else [],
        "rollback": {"undone": rollback.undone if rollback else [], "problems": problems},
    }


def _position(state: CutoverState) -> str:
    traffic = state.traffic
    if traffic is None or state.guard is None:
        return "before any weight changed"
    if traffic.baking:
        return f"while holding all traffic on {state.spec.green}"
    return f"at {traffic.weight}% on {state.spec.green} (step {traffic.index + 1} of {traffic.steps})"


def put_back_ended_run(run: Run, aws: CutoverAws) -> dict[str, Any] | None:
    """For a cutover whose execution ended without its own rollback (aborted, timed out)."""
    stored = (run.plan or {}).get("spec")
    if not stored:
        return None
    try:
        done = put_back(aws, CutoverSpec.model_validate(stored, strict=False))
    except OpsflowError as error:
        return {
            "undone": [],
            "problems": [str(error)],
            "summary": f"the weights could not be put back: {error}",
        }
    return {**done.model_dump(mode="json", exclude={"put_back"}), "summary": done.summary}


def put_back_run(run: Run) -> dict[str, Any] | None:
    """`put_back_ended_run` with the AWS it acts on: what run_ended calls."""
    with clients.acting_for(run.run_id):
        return put_back_ended_run(run, CutoverAws.at(Target.from_key(run.target)))
