"""AMI lifecycle: the guard settles each image's fate again at the start of the execution; apply carries it
out, checking once more that nothing has come to use an image it retires."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from opsflow.errors import NotFound, OpsflowError
from opsflow.runs.config import StepsConfig
from opsflow.runs.steps import (
    CaughtError,
    RunState,
    StepResult,
    StepRunner,
    StepTable,
    acted_on,
    steps_runner,
)
from opsflow.workflows.ami_bake.aws import BakeAws
from opsflow.workflows.ami_bake.prune import images_in_use
from opsflow.workflows.ami_lifecycle.request import AmiLifecycleRequest
from opsflow.workflows.ami_lifecycle.retention import DISABLED_AT, Decision, decide


class LifecycleIncomplete(OpsflowError):
    code = "LifecycleIncomplete"


class Planned(StepResult):
    decisions: list[Decision] = Field(default_factory=list)


class Applied(StepResult):
    done: list[str] = Field(default_factory=list)
    kept_now_in_use: list[str] = Field(default_factory=list)


class LifecycleState(RunState):
    guard: Planned | None = None
    apply: Applied | None = None


def guard(state: LifecycleState, aws: BakeAws) -> Planned:
    request = AmiLifecycleRequest.model_validate(state.request, strict=False)
    decisions = decide(request, aws, datetime.now(UTC))
    acting = [d for d in decisions if d.action != "keep"]
    return Planned(
        decisions=decisions,
        summary=f"{len(decisions)} image(s) baked for group {request.asg_name}; {len(acting)} to act on",
    )


def apply(state: LifecycleState, aws: BakeAws) -> Applied:
    decisions = state.guard.decisions if state.guard else []
    in_use = images_in_use(aws) if any(d.action in ("deregister", "disable") for d in decisions) else {}
    done: list[str] = []
    kept: list[str] = []
    problems: list[str] = []
    for decision in decisions:
        if decision.action == "keep":
            continue
        if decision.action in ("deregister", "disable") and decision.image_id in in_use:
            kept.append(f"{decision.image_id}: kept, used by {in_use[decision.image_id]} since the plan")
            continue
        try:
            done.append(act(decision, aws))
        except NotFound:
            done.append(f"{decision.image_id} was gone already")
        except OpsflowError as error:
            problems.append(f"{decision.image_id} ({decision.action}): {error}")
    if problems:
        raise LifecycleIncomplete(
            f"{len(problems)} image(s) could not be retired: {'; '.join(problems)}"
            + (f". Done: {'; '.join(done)}" if done else ". Nothing else was changed")
        )
    return Applied(done=done, kept_now_in_use=kept, summary="; ".join(done) or "nothing to do")


def act(decision: Decision, aws: BakeAws) -> str:
    image_id = decision.image_id
    if decision.action == "deregister":
        aws.ec2.deregister_image(image_id)
        for snapshot_id in decision.snapshots:
            aws.ec2.delete_snapshot(snapshot_id)
        return f"deregistered {image_id} and deleted {len(decision.snapshots)} snapshot(s)"
    if decision.action == "disable":
        # Tagged first: an image disabled without its date would wait for ever.
        aws.ec2.tag([image_id], {DISABLED_AT: datetime.now(UTC).isoformat(timespec="seconds")})
        aws.ec2.disable_image(image_id)
        return f"disabled {image_id}"
    aws.ec2.deprecate_image(image_id, decision.deprecate_at or "")
    return f"deprecated {image_id} from {decision.deprecate_at}"


def run_result(state: LifecycleState) -> dict[str, Any]:
    decisions = state.guard.decisions if state.guard else []
    applied = state.apply or Applied()
    counts = {
        a: sum(1 for d in decisions if d.action == a) for a in ("deregister", "disable", "deprecate", "keep")
    }
    return {
        "summary": f"{counts['deregister']} image(s) deregistered, {counts['disable']} disabled, "
        f"{counts['deprecate']} deprecated, {counts['keep']} kept.",
        "done": applied.done,
        "kept_now_in_use": applied.kept_now_in_use,
        "decisions": [d.model_dump(mode="json") for d in decisions],
    }


def run_error(state: LifecycleState) -> dict[str, Any]:
    error = state.error or CaughtError()
    step = state.failed_step or "unknown"
    return {
        "step": step,
        "error": error.error or "Error",
        "message": f"The {step} step failed: {error.describe() if state.error else 'unknown error'}",
        "rollback": {"undone": [], "problems": []},
    }


def build_runner(config: StepsConfig) -> StepRunner:
    def table(state: Mapping[str, Any]) -> StepTable:
        aws = BakeAws.at(acted_on(state), config.event_bus)
        return {
            "guard": lambda s: guard(s, aws),
            "apply": lambda s: apply(s, aws),
        }

    return steps_runner(config, table, run_result, run_error, state_model=LifecycleState)
