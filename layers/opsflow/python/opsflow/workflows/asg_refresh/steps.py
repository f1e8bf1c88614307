"""ASG refresh: roll a group's instances onto a launch template version with EC2 instance refresh.

Opsflow starts the refresh with a *pinned* desired configuration (template id and version number), so
an automatic rollback returns to the version the group used before, never to the new one. It watches
the refresh with Wait and Choice states, reports each checkpoint and each quarter of progress, and makes
the new version the template's default only once the refresh has succeeded. Used on its own
(`statemachines/asg_refresh.asl.json`) and chained after an AMI bake.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opsflow.aws import clients
from opsflow.aws.autoscaling import AutoScaling, Group, InstanceRefresh
from opsflow.aws.cloudwatch import CloudWatch, ensure_quiet
from opsflow.aws.ec2 import Ec2
from opsflow.aws.events import Events
from opsflow.errors import Busy, NotOptedIn, OpsflowError, Refused
from opsflow.runs.config import OptIn, StepsConfig
from opsflow.runs.steps import StepRunner, describe_failure, steps_runner
from opsflow.workflows.asg_refresh.request import AsgRefreshRequest, RefreshOptions

SUCCESSFUL = "Successful"
ACTIVE = frozenset({"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"})
UNSUCCESSFUL = frozenset({"Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed"})
QUARTERS = (25, 50, 75, 100)


class RefreshFailed(OpsflowError):
    code = "RefreshFailed"


@dataclass(frozen=True)
class RefreshAws:
    autoscaling: AutoScaling
    ec2: Ec2
    cloudwatch: CloudWatch
    events: Events

    @classmethod
    def from_default_clients(cls, event_bus: str = "default") -> RefreshAws:
        return cls(
            autoscaling=AutoScaling(clients.client("autoscaling")),
            ec2=Ec2(clients.client("ec2")),
            cloudwatch=CloudWatch(clients.client("cloudwatch")),
            events=Events(clients.client("events"), event_bus),
        )


# Pre-flight ---------------------------------------------------------------------------------------


def preflight(request: AsgRefreshRequest, aws: RefreshAws, opt_in: OptIn) -> dict[str, Any]:
    group = aws.autoscaling.describe_group(request.asg_name)
    if not opt_in.allows(group.tags):
        raise NotOptedIn(
            f"Auto Scaling group {request.asg_name} does not carry the tag {opt_in.describe()}, so Opsflow will "
            "not refresh it. Tag the group to opt it in."
        )
    options = request.refresh_options()
    spec = refresh_spec(group, options, aws, target_version=request.launch_template_version)
    return {
        "group": {"name": group.name, "desired_capacity": group.desired_capacity},
        "spec": spec,
        "actions": plan_actions(spec),
    }


def refresh_spec(
    group: Group, options: RefreshOptions, aws: RefreshAws, target_version: int | None
) -> dict[str, Any]:
    """Check that the group can be refreshed safely with these options, and return what to start.
    `target_version` None means the version the group uses now (for an AMI bake: filled in later)."""
    if group.uses_mixed_instances_policy:
        raise Refused(
            f"Auto Scaling group {group.name} uses a mixed instances policy; Opsflow refreshes only "
            "groups with a plain launch template"
        )
    if group.launch_template is None:
        raise Refused(
            f"Auto Scaling group {group.name} uses a launch configuration; instance refresh can pin and roll back "
            "only a launch template. Move the group to a launch template first."
        )
    ref = group.launch_template
    if options.auto_rollback and ref.version.lower() in ("$latest", "$default"):
        raise Refused(
            f"Auto Scaling group {group.name} uses launch template {ref.template_name or ref.template_id} version "
            f"{ref.version}; AWS cannot roll an instance refresh back to $Latest or $Default. Pin the group to a "
            f"version number (aws autoscaling update-auto-scaling-group --auto-scaling-group-name {group.name} "
            f"--launch-template LaunchTemplateId={ref.template_id},Version=<number>) or set auto_rollback to false."
        )
    current = aws.ec2.launch_template_version(ref.template_id, ref.version)
    if options.auto_rollback and (current.image_id or "").startswith("resolve:ssm:"):
        raise Refused(
            f"launch template {ref.template_id} version {current.version} takes its image from an SSM parameter "
            f"({current.image_id}); AWS cannot roll back to it. Use an image id, or set auto_rollback to false."
        )
    if target_version is not None:
        target = aws.ec2.launch_template_version(ref.template_id, str(target_version))
        if options.auto_rollback and (target.image_id or "").startswith("resolve:ssm:"):
            raise Refused(
                f"launch template version {target.version} takes its image from an SSM parameter; "
                "set auto_rollback to false to refresh onto it"
            )
    ensure_no_refresh_running(group.name, aws)
    check_alarms(options.alarms, aws)
    return {
        "group": group.name,
        "template_id": ref.template_id,
        "template_name": ref.template_name,
        "previous_version": current.version,
        "target_version": target_version if target_version is not None else current.version,
        "capacity": group.desired_capacity,
        "options": options.model_dump(mode="json"),
    }


def ensure_no_refresh_running(group_name: str, aws: RefreshAws) -> None:
    running = next((r for r in aws.autoscaling.instance_refreshes(group_name) if r.active), None)
    if running:
        raise Busy(
            f"Auto Scaling group {group_name} already has instance refresh {running.refresh_id} "
            f"{running.status} ({running.percentage_complete}% complete). Wait for it to end, or cancel it first: "
            f"aws autoscaling cancel-instance-refresh --auto-scaling-group-name {group_name}"
        )


def check_alarms(names: list[str], aws: RefreshAws) -> None:
    ensure_quiet(names, aws.cloudwatch, "the refresh would fail at once")


def plan_actions(spec: dict[str, Any]) -> list[str]:
    options = spec["options"]
    actions = [
        f"Start an instance refresh of group {spec['group']} ({spec['capacity']} instance(s)) onto launch template "
        f"{spec['template_name'] or spec['template_id']} version {spec['target_version']}, keeping at least "
        f"{options['min_healthy_percentage']}% healthy"
    ]
    if options.get("checkpoints"):
        checkpoints = options["checkpoints"]
        actions.append(
            f"Pause at {', '.join(f'{p}%' for p in checkpoints['percentages'])} for "
            f"{checkpoints['delay_seconds']} s each"
        )
    if options["alarms"]:
        actions.append(f"Watch alarm(s) {', '.join(options['alarms'])}: one in ALARM fails the refresh")
    if options["auto_rollback"]:
        actions.append(f"On failure, AWS rolls the instances back to version {spec['previous_version']}")
    actions.append(f"On success, make version {spec['target_version']} the template's default")
    return actions


# Run --------------------------------------------------------------------------------------------


def preferences(options: dict[str, Any]) -> dict[str, Any]:
    prefs: dict[str, Any] = {
        "MinHealthyPercentage": options["min_healthy_percentage"],
        "SkipMatching": options["skip_matching"],
        "AutoRollback": options["auto_rollback"],
    }
    if options.get("max_healthy_percentage") is not None:
        prefs["MaxHealthyPercentage"] = options["max_healthy_percentage"]
    if options.get("instance_warmup") is not None:
        prefs["InstanceWarmup"] = options["instance_warmup"]
    if options.get("checkpoints"):
        prefs["CheckpointPercentages"] = options["checkpoints"]["percentages"]
        prefs["CheckpointDelay"] = options["checkpoints"]["delay_seconds"]
    if options["alarms"]:
        prefs["AlarmSpecification"] = {"Alarms": options["alarms"]}
    return prefs


def start(spec: dict[str, Any], aws: RefreshAws) -> dict[str, Any]:
    # A retried start (its first answer lost) adopts the refresh it already started; any other running
    # refresh is someone else's, and is refused.
    mine = running_refresh_of(spec, aws)
    if mine is not None:
        refresh_id = mine.refresh_id
    else:
        ensure_no_refresh_running(spec["group"], aws)
        desired = {
            "LaunchTemplate": {
                "LaunchTemplateId": spec["template_id"],
                "Version": str(spec["target_version"]),
            }
        }
        refresh_id = aws.autoscaling.start_instance_refresh(
            spec["group"], preferences(spec["options"]), desired
        )
    return {
        **spec,
        "refresh_id": refresh_id,
        "status": "Pending",
        "percentage": 0,
        "checkpoints_reached": [],
        "quarters_reported": [],
        "started_at": datetime.now(UTC).isoformat(),
    }


def check(refresh: dict[str, Any], run: dict[str, str], aws: RefreshAws) -> dict[str, Any]:
    """Read the refresh's progress; publish each checkpoint and quarter reached once. Raises RefreshFailed
    when the refresh ended any way but successfully, saying why and what the group runs now."""
    found = aws.autoscaling.instance_refreshes(refresh["group"], refresh["refresh_id"])
    if not found:
        raise RefreshFailed(f"instance refresh {refresh['refresh_id']} of group {refresh['group']} is gone")
    current = found[0]
    updated = {
        **refresh,
        "status": current.status,
        "percentage": current.percentage_complete,
        "status_reason": current.status_reason,
    }
    milestones: list[str] = []

    def publish(kind: str, message: str, **detail: Any) -> None:
        # Progress events feed notifications; losing one must never fail or roll back the refresh.
        try:
            aws.events.progress(run["run_id"], run["workflow"], run["target"], kind, message, **detail)
        except Exception as error:  # noqa: BLE001 - whatever breaks, the refresh goes on
            milestones.append(f"(progress event not sent: {error})")

    checkpoints = (refresh["options"].get("checkpoints") or {}).get("percentages", [])
    for checkpoint in checkpoints:
        if current.percentage_complete >= checkpoint and checkpoint not in updated["checkpoints_reached"]:
            updated["checkpoints_reached"] = [*updated["checkpoints_reached"], checkpoint]
            message = (
                f"checkpoint {checkpoint}% reached: {current.percentage_complete}% of instances replaced"
            )
            publish("checkpoint", message, checkpoint=checkpoint, percentage=current.percentage_complete)
            milestones.append(message)
    for quarter in QUARTERS:
        if current.percentage_complete >= quarter and quarter not in updated["quarters_reported"]:
            updated["quarters_reported"] = [*updated["quarters_reported"], quarter]
            message = f"{quarter}% of instances replaced"
            publish("progress", message, percentage=quarter)
            milestones.append(message)
    if current.status in UNSUCCESSFUL:
        reason = (current.rollback_reason or current.status_reason or "no reason given").rstrip(".")
        raise RefreshFailed(
            f"instance refresh {current.refresh_id} ended {current.status}: {reason}. "
            f"The group now runs {group_now(refresh['group'], aws)}."
        )
    return {**updated, "milestones": milestones, "waiting": current.status != SUCCESSFUL}


def make_default(refresh: dict[str, Any], aws: RefreshAws) -> dict[str, Any]:
    aws.ec2.set_default_version(refresh["template_id"], int(refresh["target_version"]))
    return {**refresh, "default_version": refresh["target_version"]}


def running_refresh_of(spec: dict[str, Any], aws: RefreshAws) -> InstanceRefresh | None:
    """The active refresh of the group that moves it onto this spec's template version, if any."""
    for refresh in aws.autoscaling.instance_refreshes(spec["group"]):
        if (
            refresh.active
            and refresh.desired_template_id == spec["template_id"]
            and str(refresh.desired_version) == str(spec["target_version"])
        ):
            return refresh
    return None


def current_status(group_name: str, refresh_id: str, aws: RefreshAws) -> str | None:
    found = aws.autoscaling.instance_refreshes(group_name, refresh_id)
    return found[0].status if found else None


def settle(group_name: str, refresh: dict[str, Any] | None, aws: RefreshAws) -> str | None:
    """After a failure elsewhere, never leave a refresh running unattended: roll it back (or, where AWS
    cannot, cancel it). `refresh` is the run's refresh state, or the spec it was about to start (a
    start whose answer was lost is found by its desired configuration). Returns what was done, or None
    if no refresh of this run was active."""
    if not refresh:
        return None
    if refresh.get("refresh_id"):
        found = aws.autoscaling.instance_refreshes(group_name, refresh["refresh_id"])
        active = found[0] if found and found[0].active else None
    elif refresh.get("template_id") and refresh.get("target_version") is not None:
        active = running_refresh_of({**refresh, "group": group_name}, aws)
    else:
        active = None
    if active is None or active.status in ("Cancelling", "RollbackInProgress"):
        return None
    try:
        aws.autoscaling.rollback_instance_refresh(group_name)
        return f"rolled back instance refresh {active.refresh_id}"
    except OpsflowError:
        aws.autoscaling.cancel_instance_refresh(group_name)
        return f"cancelled instance refresh {active.refresh_id} (AWS could not roll it back)"


def group_now(group_name: str, aws: RefreshAws) -> str:
    """What the group runs: its launch template version and the images of its instances."""
    group = aws.autoscaling.describe_group(group_name)
    if group.launch_template:
        config = (
            f"launch template {group.launch_template.template_id} version {group.launch_template.version}"
        )
    else:
        config = f"launch configuration {group.launch_configuration_name}"
    images = aws.ec2.instance_images(group.instance_ids)
    counts: dict[str, int] = {}
    for image_id in images.values():
        counts[image_id] = counts.get(image_id, 0) + 1
    running = ", ".join(f"{image_id} on {n} of {len(images)}" for image_id, n in sorted(counts.items()))
    return f"{config} ({running or 'no instances'})"


def result_of(refresh: dict[str, Any]) -> dict[str, Any]:
    return {
        "refresh_id": refresh.get("refresh_id"),
        "status": refresh.get("status"),
        "template_id": refresh.get("template_id"),
        "previous_version": refresh.get("previous_version"),
        "version": refresh.get("target_version"),
        "default_version": refresh.get("default_version"),
        "checkpoints_reached": refresh.get("checkpoints_reached", []),
    }


# Step tables ------------------------------------------------------------------------------------


def run_context(state: dict[str, Any]) -> dict[str, str]:
    return {
        "run_id": state["run_id"],
        "workflow": state.get("workflow", ""),
        "target": state.get("target", ""),
    }


def watch_steps(aws: RefreshAws) -> dict[str, Any]:
    """The steps that follow a started refresh: shared by this workflow and the AMI bake."""

    def check_step(state: dict[str, Any]) -> dict[str, Any]:
        refresh = check(state["refresh"], run_context(state), aws)
        summary = f"instance refresh {refresh['status']}, {refresh['percentage']}% of instances replaced"
        return {**refresh, "summary": summary}

    def make_default_step(state: dict[str, Any]) -> dict[str, Any]:
        refresh = make_default(state["refresh"], aws)
        return {
            **refresh,
            "summary": f"launch template {refresh['template_id']} default version is now "
            f"{refresh['target_version']}",
        }

    return {"check_refresh": check_step, "make_default": make_default_step}


def step_table(aws: RefreshAws, opt_in: OptIn) -> dict[str, Any]:
    def request_of(state: dict[str, Any]) -> AsgRefreshRequest:
        return AsgRefreshRequest.model_validate(state["request"], strict=False)

    def guard(state: dict[str, Any]) -> dict[str, Any]:
        plan = preflight(request_of(state), aws, opt_in)
        spec = plan["spec"]
        return {
            "spec": spec,
            "summary": f"group {spec['group']} on version {spec['previous_version']}; "
            f"refreshing onto version {spec['target_version']}",
        }

    def start_step(state: dict[str, Any]) -> dict[str, Any]:
        refresh = start(state["guard"]["spec"], aws)
        return {**refresh, "summary": f"started instance refresh {refresh['refresh_id']}"}

    def rollback_step(state: dict[str, Any]) -> dict[str, Any]:
        group = request_of(state).asg_name
        refresh = state.get("refresh") or (state.get("guard") or {}).get("spec")
        try:
            done = settle(group, refresh, aws)
        except OpsflowError as error:
            return {
                "undone": [],
                "problems": [f"stopping the instance refresh: {error}"],
                "group_now": None,
                "summary": "could not stop the instance refresh",
            }
        return {
            "undone": [done] if done else [],
            "problems": [],
            "group_now": group_now(group, aws),
            "summary": done or "no instance refresh left running",
        }

    return {"guard": guard, "start_refresh": start_step, **watch_steps(aws), "rollback": rollback_step}


def run_result(state: dict[str, Any], aws: RefreshAws) -> dict[str, Any]:
    group = state["request"]["asg_name"]
    try:
        now = group_now(group, aws)
    except OpsflowError as error:  # a report, not a reason to fail a refresh that succeeded
        now = f"unknown ({error})"
    refresh = result_of(state.get("refresh") or {})
    return {
        "summary": f"Every instance of {group} was replaced (launch template version "
        f"{refresh.get('previous_version')} -> {refresh.get('version')}); it now runs {now}.",
        "refresh": refresh,
        "group_now": now,
    }


def run_error(state: dict[str, Any]) -> dict[str, Any]:
    rollback = state.get("rollback") or {}
    if state.get("rollback_error"):
        rollback = {"undone": [], "problems": [describe_failure(state["rollback_error"])]}
    return {
        "step": state.get("failed_step", "unknown"),
        "error": (state.get("error") or {}).get("Error", "Error"),
        "message": describe_failure(state.get("error")),
        "rollback": {"undone": rollback.get("undone", []), "problems": rollback.get("problems", [])},
        "group_now": rollback.get("group_now"),
        "refresh": result_of(state.get("refresh") or {}),
    }


def build_runner(config: StepsConfig) -> StepRunner:
    aws = RefreshAws.from_default_clients(config.event_bus)
    return steps_runner(
        config, step_table(aws, config.opt_in), lambda state: run_result(state, aws), run_error
    )
