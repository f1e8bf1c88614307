"""The pre-flight: every check that the deploy can run safely, read without changing anything, and the spec
and plan of actions it settles. The guard step runs it again at the start of the execution."""

from __future__ import annotations

from typing import Any

from opsflow.aws.cloudwatch import ensure_quiet
from opsflow.aws.ecs import ServiceDetail
from opsflow.aws.elbv2 import Listener
from opsflow.aws.elbv2 import display_name as short
from opsflow.errors import NotFound, NotOptedIn, Refused
from opsflow.runs.config import OptIn, StarterConfig
from opsflow.workflows.ecs_blue_green.deps import DeployAws
from opsflow.workflows.ecs_blue_green.request import EcsBlueGreenRequest
from opsflow.workflows.ecs_blue_green.state import BlueSpec, DeploySpec, GreenSpec, SmokeTestSpec

GREEN_SUFFIX = "-green"
# Targets still in a target group: a service's tasks are registered there.
REGISTERED = frozenset({"initial", "healthy", "unhealthy", "unavailable"})


def preflight(request: EcsBlueGreenRequest, aws: DeployAws, opt_in: OptIn) -> dict[str, Any]:
    """The run's plan: its spec, and the actions for people."""
    spec = check_deploy(request, aws, opt_in)
    return {"spec": spec.model_dump(mode="json"), "actions": plan_actions(spec)}


def check_deploy(request: EcsBlueGreenRequest, aws: DeployAws, opt_in: OptIn) -> DeploySpec:
    """Refuse a deploy that cannot run safely; otherwise settle which side is blue and what green will be."""
    listener = forwarding_listener(request.listener_arn, "listener_arn", aws)
    check_target_groups_exist(request.target_groups, aws)
    check_listener_forwards_to_the_pair(listener, request.target_groups)
    check_no_rule_forwards_to_the_pair(listener, request.target_groups, aws)
    blue_tg, green_tg = live_and_idle(listener, request.target_groups)

    services = active_services(request.cluster, aws)
    blue, green = services_of_the_pair(request, services, blue_tg, green_tg)
    check_opted_in([side for side in (blue, green) if side is not None], opt_in)
    check_blue(blue)
    check_idle_side_unused(request.cluster, green, green_tg, aws)
    container, version_arn = new_version(request, blue, aws)
    test_listener = check_test_listener(request.test_listener_arn, listener, aws)
    ensure_quiet(request.alarms, aws.cloudwatch, "the deploy would roll back at once")
    green_name = green.name if green else green_service_name(request.cluster, blue, services)

    smoke = request.smoke_test
    return DeploySpec(
        cluster=blue.cluster_arn,
        listener_arn=listener.arn,
        test_listener_arn=test_listener.arn if test_listener else None,
        blue=BlueSpec(
            service=blue.name,
            service_arn=blue.service_arn,
            target_group=blue_tg,
            task_definition=blue.task_definition,
            desired=blue.desired_count,
        ),
        green=GreenSpec(
            service=green_name,
            exists=green is not None,
            service_arn=green.service_arn if green else None,
            target_group=green_tg,
            # ECS names task definitions by ARN in its answers, whichever way they were asked for.
            task_definition=version_arn if request.task_definition else None,
            image=request.image,
            container=container,
        ),
        traffic=request.traffic_steps(),
        bake_seconds=request.bake_seconds,
        alarms=request.alarms,
        smoke_test=(
            SmokeTestSpec(
                url=smoke.url, lambda_function=smoke.lambda_function, timeout_seconds=smoke.timeout_seconds
            )
            if smoke
            else None
        ),
    )


def forwarding_listener(arn: str, field_name: str, aws: DeployAws) -> Listener:
    try:
        listener = aws.elbv2.listener(arn)
    except NotFound as error:
        raise Refused(f"listener {arn} does not exist: check {field_name}") from error
    if not listener.forwards_only:
        raise Refused(
            f"listener {short(arn)}'s default action is not a single forward: Opsflow only shifts traffic on a "
            "listener that just forwards (an authenticate or redirect action would be lost)"
        )
    return listener


def check_target_groups_exist(target_groups: list[str], aws: DeployAws) -> None:
    for arn in target_groups:
        try:
            aws.elbv2.target_group(arn)
        except NotFound as error:
            raise Refused(f"target group {arn} does not exist: check target_groups") from error


def check_listener_forwards_to_the_pair(listener: Listener, target_groups: list[str]) -> None:
    for arn in target_groups:
        if arn not in listener.weights:
            raise Refused(
                f"target group {short(arn)} is not attached to listener {short(listener.arn)}: add it to the "
                "listener's forward action with weight 0, beside the live one (aws elbv2 modify-listener "
                f"--listener-arn {listener.arn} --default-actions "
                "'Type=forward,ForwardConfig={TargetGroups=[{TargetGroupArn=<live>,Weight=100},"
                "{TargetGroupArn=<idle>,Weight=0}]}')"
            )
    strangers = sorted(set(listener.weights) - set(target_groups))
    if strangers:
        raise Refused(
            f"listener {short(listener.arn)} also forwards to {', '.join(short(s) for s in strangers)}, which is "
            "not one of target_groups: Opsflow shifts traffic only on a listener that forwards to the two"
        )


def check_no_rule_forwards_to_the_pair(listener: Listener, target_groups: list[str], aws: DeployAws) -> None:
    for priority, groups in aws.elbv2.rules_forwarding(listener.arn).items():
        shared = [short(arn) for arn in groups if arn in target_groups]
        if shared:
            raise Refused(
                f"listener {short(listener.arn)} has a rule (priority {priority}) forwarding to "
                f"{', '.join(shared)}: Opsflow shifts only the listener's default action, so that rule's "
                "traffic would not follow. Point the rule at another target group or remove it"
            )


def live_and_idle(listener: Listener, target_groups: list[str]) -> tuple[str, str]:
    """The target group taking all the listener's traffic (blue's), and the other (green's)."""
    live = [arn for arn in target_groups if listener.weights[arn] > 0]
    if len(live) != 1:
        split = ", ".join(f"{short(arn)} {listener.weights[arn]}" for arn in target_groups)
        if not live:
            raise Refused(f"listener {short(listener.arn)} sends no traffic to either target group ({split})")
        raise Refused(
            f"both target groups are busy: listener {short(listener.arn)} splits traffic ({split}). A shift did "
            "not finish; send all traffic to one side first, then deploy again"
        )
    return live[0], next(arn for arn in target_groups if arn != live[0])


def active_services(cluster: str, aws: DeployAws) -> list[ServiceDetail]:
    try:
        return [s for s in aws.ecs.services_of(cluster) if s.status == "ACTIVE"]
    except NotFound as error:
        raise Refused(f"{error}: check cluster") from error


def services_of_the_pair(
    request: EcsBlueGreenRequest, services: list[ServiceDetail], blue_tg: str, green_tg: str
) -> tuple[ServiceDetail, ServiceDetail | None]:
    """Blue, the service on the live target group, and green's service if one is on the idle group; the
    request may name either."""
    named = next((s for s in services if s.name == request.service), None)
    if named is None:
        raise Refused(
            f"ECS service {request.service} does not exist in cluster {request.cluster}: check service"
        )
    blue = _only_service_on(blue_tg, services, "the live target group")
    if blue is None:
        raise Refused(
            f"no ECS service of cluster {request.cluster} registers its tasks in the live target group "
            f"{short(blue_tg)}: check target_groups and cluster"
        )
    green = _only_service_on(green_tg, services, "the idle target group")
    if named.name not in (blue.name, green.name if green else None):
        raise Refused(
            f"ECS service {named.name} is not behind target group {short(blue_tg)} or {short(green_tg)}: "
            f"the live service there is {blue.name}"
        )
    return blue, green


def _only_service_on(target_group: str, services: list[ServiceDetail], what: str) -> ServiceDetail | None:
    on = [s for s in services if target_group in s.target_group_arns]
    if len(on) > 1:
        raise Refused(
            f"services {', '.join(s.name for s in on)} all register tasks in {what} {short(target_group)}: "
            "Opsflow cannot tell which one is the deploy's side"
        )
    return on[0] if on else None


def check_opted_in(sides: list[ServiceDetail], opt_in: OptIn) -> None:
    for side in sides:
        if not opt_in.allows(side.tags):
            raise NotOptedIn(
                f"ECS service {side.name} does not carry the tag {opt_in.describe()}, so Opsflow will not deploy "
                "to it. Tag the service to opt it in."
            )


def check_blue(blue: ServiceDetail) -> None:
    if blue.deployment_controller != "ECS":
        raise Refused(
            f"ECS service {blue.name} uses the {blue.deployment_controller} deployment controller; Opsflow "
            "deploys services that use the rolling (ECS) one"
        )
    if len(blue.load_balancers) != 1:
        raise Refused(
            f"ECS service {blue.name} registers in {len(blue.load_balancers)} target groups; Opsflow deploys "
            "services behind exactly one"
        )
    if blue.discovery:
        raise Refused(
            f"ECS service {blue.name} uses {', '.join(blue.discovery)}: its clients would keep calling it once "
            "it is retired, so Opsflow does not deploy it blue/green"
        )
    if blue.desired_count < 1:
        raise Refused(
            f"ECS service {blue.name} has desired count 0: there is no live version to deploy beside"
        )
    busy = [d for d in blue.deployments if d.rollout_state not in ("COMPLETED", "")]
    if len(blue.deployments) > 1 or busy:
        raise Refused(
            f"ECS service {blue.name} has a deployment in progress; wait until it is steady, then deploy again"
        )


def check_idle_side_unused(cluster: str, green: ServiceDetail | None, green_tg: str, aws: DeployAws) -> None:
    if green is not None and (green.desired_count or green.running_count or green.pending_count):
        raise Refused(
            f"both target groups are busy: ECS service {green.name} runs {green.running_count} task(s) "
            f"(desired {green.desired_count}) on the idle target group {short(green_tg)}. If nothing should run "
            f"there, scale it to 0 (aws ecs update-service --cluster {cluster} --service {green.name} "
            "--desired-count 0), then deploy again"
        )
    registered = [t for t, state in aws.elbv2.target_health(green_tg).items() if state in REGISTERED]
    if registered:
        raise Refused(
            f"both target groups are busy: the idle target group {short(green_tg)} has {len(registered)} "
            "registered target(s). Deregister them, then deploy again"
        )


def new_version(request: EcsBlueGreenRequest, blue: ServiceDetail, aws: DeployAws) -> tuple[str, str]:
    """The container the new version changes or must have, and the ARN of the task definition it comes
    from (the one asked for, or blue's when an image replaces a container)."""
    container = request.container or blue.load_balancers[0].container_name
    source = request.task_definition or blue.task_definition
    try:
        arn, containers = aws.ecs.task_definition(source)
    except NotFound as error:
        raise Refused(f"task definition {source} does not exist: check task_definition") from error
    if container not in containers:
        raise Refused(
            f"task definition {source} has no container {container} (it has {', '.join(containers)})"
            + (
                ": check container"
                if request.image
                else ": the load balancer sends traffic to that container"
            )
        )
    return container, arn


def check_test_listener(test_listener_arn: str | None, listener: Listener, aws: DeployAws) -> Listener | None:
    if not test_listener_arn:
        return None
    test_listener = forwarding_listener(test_listener_arn, "test_listener_arn", aws)
    if test_listener.load_balancer_arn != listener.load_balancer_arn:
        raise Refused(
            "test_listener_arn must be a listener of the same load balancer as listener_arn: a target "
            "group can be used by one load balancer only"
        )
    return test_listener


def green_service_name(cluster: str, blue: ServiceDetail, services: list[ServiceDetail]) -> str:
    """The name of the service green creates: blue's partner, by the `-green` suffix."""
    name = blue.name[: -len(GREEN_SUFFIX)] if blue.name.endswith(GREEN_SUFFIX) else blue.name + GREEN_SUFFIX
    if any(s.name == name for s in services):
        raise Refused(f"ECS service {name} exists already in cluster {cluster}, on no target group")
    return name


def plan_actions(spec: DeploySpec) -> list[str]:
    blue, green = spec.blue, spec.green
    version = green.task_definition or (
        f"a new revision of {blue.task_definition.split('/')[-1]} with container {green.container} "
        f"running {green.image}"
    )
    start = "Scale up" if green.exists else "Create"
    actions = [
        f"{start} ECS service {green.service} with {blue.desired} task(s) of {version}, registered in "
        f"target group {short(green.target_group)}, and wait until it is steady and its targets are healthy"
    ]
    if spec.test_listener_arn:
        actions.append(f"Point test listener {short(spec.test_listener_arn)} at {short(green.target_group)}")
    smoke = spec.smoke_test
    if smoke:
        actions.append(
            f"Smoke test: {f'GET {smoke.url} expecting 2xx' if smoke.url else f'Lambda {smoke.lambda_function}'}"
        )
    steps = ", ".join(
        f"{s.percent}%" + (f" for {s.hold_seconds} s" if s.hold_seconds else "") for s in spec.traffic
    )
    watched = f"watching alarm(s) {', '.join(spec.alarms)}" if spec.alarms else "watching green's health"
    actions.append(f"Shift listener {short(spec.listener_arn)} to green: {steps}, {watched}")
    actions.append(f"Bake {spec.bake_seconds} s at 100% green, then scale {blue.service} to 0")
    actions.append("On any failed gate: listener back to 100% blue, green scaled to 0")
    return actions


def preflight_run(request: EcsBlueGreenRequest, config: StarterConfig) -> dict[str, Any]:
    """The pre-flight the starter runs, with the AWS it reads."""
    return preflight(request, DeployAws.at(request.target()), config.opt_in)
