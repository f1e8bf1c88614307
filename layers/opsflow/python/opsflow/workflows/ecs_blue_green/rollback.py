"""Putting a deploy back on one side, after a failure (the rollback step) or an abort or a timeout
(`put_back` for a run that ended without its rollback)."""

from __future__ import annotations

from opsflow.aws.ecs import ServiceDetail
from opsflow.aws.elbv2 import display_name as short
from opsflow.errors import NotFound, OpsflowError
from opsflow.workflows.ecs_blue_green.deps import DeployAws
from opsflow.workflows.ecs_blue_green.state import DeploySpec, PutBack

# The run's mark while blue is being retired: an abort settled after it keeps green live.
RETIRING_BLUE = "retiring_blue"


def green_service(aws: DeployAws, spec: DeploySpec) -> ServiceDetail | None:
    try:
        found = aws.ecs.describe_service(spec.cluster, spec.green.service)
    except NotFound:
        return None
    return found if found.status == "ACTIVE" else None


def put_back(aws: DeployAws, spec: DeploySpec, retiring: bool = False) -> PutBack:
    """All traffic to blue and green scaled to zero; or, if blue was retired already or is being retired
    (`retiring`: the deploy had succeeded but for its last word), all traffic to green. Raises when the
    traffic could not be put back, after trying the rest."""
    blue, green = spec.blue, spec.green
    traffic = aws.production_traffic(spec)
    if retiring or aws.ecs.describe_service(spec.cluster, blue.service).desired_count == 0:
        traffic.restore_all("green")
        return PutBack(
            live="green",
            summary=f"blue {blue.service} was retired already or being retired: green {green.service} stays live",
        )
    undone: list[str] = []
    problems: list[str] = []
    traffic_error: OpsflowError | None = None
    try:
        before = traffic.restore_all("blue")
        if before.green:
            undone.append(
                f"{traffic.describe()} back to 100% blue ({short(blue.target_group)}) from {before.green}% green"
            )
    except OpsflowError as error:
        traffic_error = error
        problems.append(f"setting {traffic.describe()} to 100% blue: {error}")
    green_now = green_service(aws, spec)
    # While the listener may still send green a share, green keeps its tasks to serve it.
    if traffic_error is None and green_now is not None and green_now.desired_count > 0:
        try:
            aws.ecs.update_service(spec.cluster, green.service, desired_count=0)
            undone.append(f"green service {green.service} scaled to 0")
        except OpsflowError as error:
            problems.append(f"scaling green service {green.service} to 0: {error}")
    if traffic_error is not None:
        raise traffic_error
    summary = "; ".join(undone) if undone else "the listener still sent 100% to blue; green was not running"
    return PutBack(undone=undone, problems=problems, live="blue", summary=summary)
