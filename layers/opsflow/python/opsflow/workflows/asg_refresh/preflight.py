"""What an ASG refresh would do, read without changing anything; refuses a group it cannot refresh safely."""

from __future__ import annotations

from typing import Any

from opsflow.errors import NotOptedIn
from opsflow.runs.config import OptIn, StarterConfig
from opsflow.workflows.asg_refresh.refresh import RefreshAws, RefreshSpec, refresh_spec
from opsflow.workflows.asg_refresh.request import AsgRefreshRequest


def guarded_spec(request: AsgRefreshRequest, aws: RefreshAws, opt_in: OptIn) -> tuple[int, RefreshSpec]:
    """The group's desired capacity and what to start, once the group is opted in and safe to refresh."""
    group = aws.autoscaling.describe_group(request.asg_name)
    if not opt_in.allows(group.tags):
        raise NotOptedIn(
            f"Auto Scaling group {request.asg_name} does not carry the tag {opt_in.describe()}, so Opsflow will "
            "not refresh it. Tag the group to opt it in."
        )
    spec = refresh_spec(group, request.refresh_options(), aws, target_version=request.launch_template_version)
    return group.desired_capacity, spec


def preflight(request: AsgRefreshRequest, aws: RefreshAws, opt_in: OptIn) -> dict[str, Any]:
    capacity, spec = guarded_spec(request, aws, opt_in)
    return {
        "group": {"name": spec.group, "desired_capacity": capacity},
        "spec": spec.model_dump(mode="json"),
        "actions": spec.actions(),
    }


def preflight_run(request: AsgRefreshRequest, config: StarterConfig) -> dict[str, Any]:
    """The pre-flight the starter runs, with the AWS it reads."""
    return preflight(request, RefreshAws.at(request.target()), config.opt_in)
