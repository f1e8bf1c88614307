"""What a run says when it ends: its result, its error, and what an abort put back."""

from __future__ import annotations

from typing import Any

from opsflow.aws import clients
from opsflow.aws.target import Target
from opsflow.runs.steps import CaughtError
from opsflow.store.runs import Run
from opsflow.traffic.position import TrafficPosition
from opsflow.workflows.ecs_blue_green.deps import DeployAws
from opsflow.workflows.ecs_blue_green.errors import GATE_ERRORS, GATES
from opsflow.workflows.ecs_blue_green.rollback import RETIRING_BLUE, put_back
from opsflow.workflows.ecs_blue_green.state import DeploySpec, DeployState


def run_result(state: DeployState) -> dict[str, Any]:
    spec, green = state.spec, state.started_green
    history = state.traffic.history if state.traffic else []
    weights = [shifted.percent for shifted in history]
    return {
        "summary": f"{green.service} is live with {green.task_definition.split('/')[-1]}: "
        f"traffic shifted {' -> '.join(f'{w}%' for w in weights)}, baked {spec.bake_seconds} s; "
        f"{spec.blue.service} scaled to 0.",
        "weights": weights,
        "history": [shifted.model_dump(mode="json") for shifted in history],
        "live": {"service": green.service, "target_group": spec.green.target_group},
        "idle": {"service": spec.blue.service, "target_group": spec.blue.target_group},
        "task_definition": green.task_definition,
        "problems": state.retire_blue.problems if state.retire_blue else [],
    }


def _failed_at(state: DeployState, step: str) -> tuple[int, str]:
    """The weight the failure left, and where in the plan it was, for people."""
    traffic = state.traffic
    if step == "shift":
        # The step failed on its way to the plan's next share; its change may or may not have been made.
        if traffic is None and state.guard is not None:
            traffic = TrafficPosition.before(state.spec.traffic, state.spec.bake_seconds)
        next_step = traffic.next_step() if traffic else None
        described = traffic.describe_next() if traffic else None
        if next_step is not None and described is not None:
            return next_step.percent, described
    if traffic is None:
        return 0, "before any production traffic reached green"
    return traffic.weight, traffic.describe()


def run_error(state: DeployState) -> dict[str, Any]:
    error = state.error or CaughtError()
    step = state.failed_step or "unknown"
    gate = GATES.get(error.error, GATES.get(step, step))
    weight, position = _failed_at(state, step)
    reason = error.describe() if state.error else "unknown error"
    if error.error in GATE_ERRORS:
        # The gate's own words; its name is the gate.
        reason = reason.removeprefix(f"{error.error}: ")
        what = "abort" if error.error == "RunEnded" else f"{gate} gate"
    else:
        what = f"{gate} step"
    rollback = state.rollback
    problems = list(rollback.problems) if rollback else []
    if state.rollback_error is not None:
        problems.append(f"putting things back: {state.rollback_error.describe()}")
    after = (rollback.put_back if rollback else "") or (
        "nothing was put back" if problems else "nothing had changed"
    )
    history = state.traffic.history if state.traffic else []
    return {
        "step": step,
        "gate": gate,
        "weight": weight,
        "error": error.error or "Error",
        "message": f"The {what} failed {position}: {reason.rstrip('.')}. Then: {after}.",
        "weights": [shifted.percent for shifted in history],
        "rollback": {"undone": rollback.undone if rollback else [], "problems": problems},
        "live": rollback.live if rollback else None,
    }


def put_back_ended_run(run: Run, aws: DeployAws) -> dict[str, Any] | None:
    """For a deploy whose execution ended without its own rollback (aborted, timed out)."""
    stored = (run.plan or {}).get("spec")
    if not stored:
        return None
    spec = DeploySpec.model_validate(stored, strict=False)
    done = put_back(aws, spec, retiring=run.mark == RETIRING_BLUE)
    return {**done.model_dump(mode="json", exclude={"put_back"}), "summary": done.summary}


def put_back_run(run: Run) -> dict[str, Any] | None:
    """`put_back_ended_run` with the AWS it acts on: what run_ended calls."""
    with clients.acting_for(run.run_id):
        return put_back_ended_run(run, DeployAws.at(Target.from_key(run.target)))
