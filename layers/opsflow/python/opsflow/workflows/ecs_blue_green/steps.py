"""ECS blue/green: run the new version (green) beside the live service (blue), each behind its own target
group of one ALB listener, and shift the listener's weighted forward action to green step by step.

Every step is gated: green must be steady, pass an optional smoke test through the test listener, and keep
the alarms quiet while each share of traffic is held; a failed gate (or any error) puts the listener back to
100 % blue and scales green to zero. Blue is scaled to zero only after green has held all traffic for the
bake time. Whatever ends a run - success, a failed gate, an abort, a timeout - the listener forwards 100 %
to one side: `rollback` and `put_back` (for runs that end without their rollback, see functions/run_ended)
both restore it, and a step that changed the listener re-reads the run afterwards, so a run aborted while
the step was in flight is put back by the step itself.

The two sides alternate: after a deploy, green is the live service, and the next deploy starts the other
one (blue, scaled to zero) again on the idle target group.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opsflow.aws import clients
from opsflow.aws.cloudwatch import CloudWatch, ensure_quiet
from opsflow.aws.ecs import Ecs, ServiceDetail
from opsflow.aws.elbv2 import Elbv2, Listener
from opsflow.aws.events import Events
from opsflow.aws.lambda_functions import LambdaFunctions
from opsflow.errors import NotFound, NotOptedIn, OpsflowError, Refused
from opsflow.runs.config import OptIn, StepsConfig
from opsflow.runs.steps import StepRunner, describe_failure, steps_runner
from opsflow.store.runs import RUNNING, Run
from opsflow.workflows.ecs_blue_green.request import EcsBlueGreenRequest

GREEN_SUFFIX = "-green"
# Which side takes production traffic, kept on both services for people and the next deploy to read.
ROLE_TAG = "opsflow:blue-green"
# Targets still in a target group: a service's tasks are registered there.
REGISTERED = frozenset({"initial", "healthy", "unhealthy", "unavailable"})
DEFAULT_POLL_SECONDS = 30
MAX_WATCHES = 2000
DEFAULT_GREEN_MAX_WAIT_SECONDS = 1800


class GreenNotSteady(OpsflowError):
    code = "GreenNotSteady"


class SmokeTestFailed(OpsflowError):
    code = "SmokeTestFailed"


class AlarmFired(OpsflowError):
    code = "AlarmFired"


class GreenUnhealthy(OpsflowError):
    code = "GreenUnhealthy"


class RunEnded(OpsflowError):
    """The run was aborted (or ended otherwise) while a step was acting; the step put things back."""

    code = "RunEnded"


# What failed, for people: the failed step, or the gate the error names.
GATES = {
    "guard": "pre-flight",
    "start_green": "starting green",
    "check_green": "green stability",
    "smoke_test": "smoke test",
    "shift": "traffic shift",
    "watch": "traffic watch",
    "retire_blue": "retiring blue",
    "AlarmFired": "alarm",
    "GreenUnhealthy": "green health",
    "GreenNotSteady": "green stability",
    "SmokeTestFailed": "smoke test",
    "RunEnded": "abort",
}

GATE_ERRORS = frozenset({"AlarmFired", "GreenUnhealthy", "GreenNotSteady", "SmokeTestFailed", "RunEnded"})

HttpGet = Callable[[str, float], int]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect (to HTTPS, or to the production host) would test something other than green: it counts as
    # an answer that is not 2xx.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def http_status(url: str, timeout: float) -> int:
    """The status of a GET of `url`, redirects not followed; raises OSError when there is no answer."""
    request = urllib.request.Request(url, headers={"User-Agent": "opsflow-smoke-test"})
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


@dataclass(frozen=True)
class DeployAws:
    ecs: Ecs
    elbv2: Elbv2
    cloudwatch: CloudWatch
    events: Events
    functions: LambdaFunctions
    http_get: HttpGet = http_status

    @classmethod
    def from_default_clients(cls, event_bus: str = "default") -> DeployAws:
        return cls(
            ecs=Ecs(clients.client("ecs")),
            elbv2=Elbv2(clients.client("elbv2")),
            cloudwatch=CloudWatch(clients.client("cloudwatch")),
            events=Events(clients.client("events"), event_bus),
            functions=LambdaFunctions(clients.client("lambda")),
        )


def now() -> datetime:
    return datetime.now(UTC)


def short(arn: str) -> str:
    """A target group's or listener's name as the console shows it."""
    parts = arn.split(":")[-1].split("/")
    if parts[0] == "targetgroup" and len(parts) > 1:
        return parts[1]
    if parts[0] == "listener" and len(parts) > 4:
        return f"{parts[2]}/{parts[-1][:8]}"
    return arn


# Pre-flight ---------------------------------------------------------------------------------------


def preflight(request: EcsBlueGreenRequest, aws: DeployAws, opt_in: OptIn) -> dict[str, Any]:
    """Check that the deploy can run safely and return its spec and plan; changes nothing."""
    listener = _forwarding_listener(request.listener_arn, "listener_arn", aws)
    for arn in request.target_groups:
        try:
            aws.elbv2.target_group(arn)
        except NotFound as error:
            raise Refused(f"target group {arn} does not exist: check target_groups") from error
    for arn in request.target_groups:
        if arn not in listener.weights:
            raise Refused(
                f"target group {short(arn)} is not attached to listener {short(listener.arn)}: add it to the "
                "listener's forward action with weight 0, beside the live one (aws elbv2 modify-listener "
                f"--listener-arn {listener.arn} --default-actions "
                "'Type=forward,ForwardConfig={TargetGroups=[{TargetGroupArn=<live>,Weight=100},"
                "{TargetGroupArn=<idle>,Weight=0}]}')"
            )
    strangers = sorted(set(listener.weights) - set(request.target_groups))
    if strangers:
        raise Refused(
            f"listener {short(listener.arn)} also forwards to {', '.join(short(s) for s in strangers)}, which is "
            "not one of target_groups: Opsflow shifts traffic only on a listener that forwards to the two"
        )
    for priority, groups in aws.elbv2.rules_forwarding(listener.arn).items():
        shared = [short(arn) for arn in groups if arn in request.target_groups]
        if shared:
            raise Refused(
                f"listener {short(listener.arn)} has a rule (priority {priority}) forwarding to "
                f"{', '.join(shared)}: Opsflow shifts only the listener's default action, so that rule's "
                "traffic would not follow. Point the rule at another target group or remove it"
            )
    live = [arn for arn in request.target_groups if listener.weights[arn] > 0]
    if len(live) != 1:
        split = ", ".join(f"{short(arn)} {listener.weights[arn]}" for arn in request.target_groups)
        if not live:
            raise Refused(f"listener {short(listener.arn)} sends no traffic to either target group ({split})")
        raise Refused(
            f"both target groups are busy: listener {short(listener.arn)} splits traffic ({split}). A shift did "
            "not finish; send all traffic to one side first, then deploy again"
        )
    blue_tg = live[0]
    green_tg = next(arn for arn in request.target_groups if arn != blue_tg)

    try:
        services = [s for s in aws.ecs.services_of(request.cluster) if s.status == "ACTIVE"]
    except NotFound as error:
        raise Refused(f"{error}: check cluster") from error
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
    for side in (blue, green):
        if side is not None and not opt_in.allows(side.tags):
            raise NotOptedIn(
                f"ECS service {side.name} does not carry the tag {opt_in.describe()}, so Opsflow will not deploy "
                "to it. Tag the service to opt it in."
            )
    _check_blue(blue)
    container, version_arn = _check_green(request, blue, green, green_tg, aws)
    test_listener = None
    if request.test_listener_arn:
        test_listener = _forwarding_listener(request.test_listener_arn, "test_listener_arn", aws)
        if test_listener.load_balancer_arn != listener.load_balancer_arn:
            raise Refused(
                "test_listener_arn must be a listener of the same load balancer as listener_arn: a target "
                "group can be used by one load balancer only"
            )
    alarms = _check_alarms(request.alarms, aws)

    green_name = green.name if green else _green_name(blue.name)
    if green is None and any(s.name == green_name for s in services):
        raise Refused(
            f"ECS service {green_name} exists already in cluster {request.cluster}, on no target group"
        )
    steps = [step.model_dump() for step in request.traffic_steps()]
    spec = {
        "cluster": blue.cluster_arn,
        "listener_arn": listener.arn,
        "test_listener_arn": test_listener.arn if test_listener else None,
        "blue": {
            "service": blue.name,
            "service_arn": blue.service_arn,
            "target_group": blue_tg,
            "task_definition": blue.task_definition,
            "desired": blue.desired_count,
        },
        "green": {
            "service": green_name,
            "exists": green is not None,
            "service_arn": green.service_arn if green else None,
            "target_group": green_tg,
            # ECS names task definitions by ARN in its answers, whichever way they were asked for.
            "task_definition": version_arn if request.task_definition else None,
            "image": request.image,
            "container": container,
        },
        "traffic": steps,
        "bake_seconds": request.bake_seconds,
        "alarms": alarms,
        "smoke_test": request.smoke_test.model_dump(exclude_none=True) if request.smoke_test else None,
    }
    return {"spec": spec, "actions": plan_actions(spec)}


def _forwarding_listener(arn: str, field_name: str, aws: DeployAws) -> Listener:
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


def _only_service_on(target_group: str, services: list[ServiceDetail], what: str) -> ServiceDetail | None:
    on = [s for s in services if target_group in s.target_group_arns]
    if len(on) > 1:
        raise Refused(
            f"services {', '.join(s.name for s in on)} all register tasks in {what} {short(target_group)}: "
            "Opsflow cannot tell which one is the deploy's side"
        )
    return on[0] if on else None


def _check_blue(blue: ServiceDetail) -> None:
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


def _check_green(
    request: EcsBlueGreenRequest,
    blue: ServiceDetail,
    green: ServiceDetail | None,
    green_tg: str,
    aws: DeployAws,
) -> tuple[str, str]:
    """Refuse when the idle side is in use. Returns the container the new version changes or must have, and
    the ARN of the task definition it comes from."""
    if green is not None and (green.desired_count or green.running_count or green.pending_count):
        raise Refused(
            f"both target groups are busy: ECS service {green.name} runs {green.running_count} task(s) "
            f"(desired {green.desired_count}) on the idle target group {short(green_tg)}. If nothing should run "
            f"there, scale it to 0 (aws ecs update-service --cluster {request.cluster} --service {green.name} "
            "--desired-count 0), then deploy again"
        )
    registered = [t for t, state in aws.elbv2.target_health(green_tg).items() if state in REGISTERED]
    if registered:
        raise Refused(
            f"both target groups are busy: the idle target group {short(green_tg)} has {len(registered)} "
            "registered target(s). Deregister them, then deploy again"
        )
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


def _check_alarms(names: list[str], aws: DeployAws) -> list[str]:
    ensure_quiet(names, aws.cloudwatch, "the deploy would roll back at once")
    return names


def _green_name(blue_name: str) -> str:
    return blue_name[: -len(GREEN_SUFFIX)] if blue_name.endswith(GREEN_SUFFIX) else blue_name + GREEN_SUFFIX


def plan_actions(spec: dict[str, Any]) -> list[str]:
    blue, green = spec["blue"], spec["green"]
    version = green["task_definition"] or (
        f"a new revision of {blue['task_definition'].split('/')[-1]} with container {green['container']} "
        f"running {green['image']}"
    )
    start = "Scale up" if green["exists"] else "Create"
    actions = [
        f"{start} ECS service {green['service']} with {blue['desired']} task(s) of {version}, registered in "
        f"target group {short(green['target_group'])}, and wait until it is steady and its targets are healthy"
    ]
    if spec["test_listener_arn"]:
        actions.append(
            f"Point test listener {short(spec['test_listener_arn'])} at {short(green['target_group'])}"
        )
    smoke = spec["smoke_test"]
    if smoke:
        what = (
            f"GET {smoke['url']} expecting 2xx" if smoke.get("url") else f"Lambda {smoke['lambda_function']}"
        )
        actions.append(f"Smoke test: {what}")
    steps = ", ".join(
        f"{s['percent']}%" + (f" for {s['hold_seconds']} s" if s["hold_seconds"] else "")
        for s in spec["traffic"]
    )
    watched = (
        f"watching alarm(s) {', '.join(spec['alarms'])}" if spec["alarms"] else "watching green's health"
    )
    actions.append(f"Shift listener {short(spec['listener_arn'])} to green: {steps}, {watched}")
    actions.append(f"Bake {spec['bake_seconds']} s at 100% green, then scale {blue['service']} to 0")
    actions.append("On any failed gate: listener back to 100% blue, green scaled to 0")
    return actions


# Run ---------------------------------------------------------------------------------------------

StillRunning = Callable[[str], bool]
# Mark the run, only while it runs (RunStore.claim); False when it has ended.
Claim = Callable[[str, str], bool]
RETIRING_BLUE = "retiring_blue"


@dataclass(frozen=True)
class Deploy:
    """The steps of one run, on its spec. `still_running(run_id)` reads the run's record: a step that
    changed something re-checks it, and puts back what it did when the run ended meanwhile. `claim` marks
    the run before what an abort could not put back (retiring blue)."""

    aws: DeployAws
    still_running: StillRunning
    poll_seconds: int = DEFAULT_POLL_SECONDS
    green_max_wait_seconds: int = DEFAULT_GREEN_MAX_WAIT_SECONDS
    claim: Claim = lambda run_id, mark: True

    def start_green(self, spec: dict[str, Any], run_id: str) -> dict[str, Any]:
        blue, green = spec["blue"], spec["green"]
        if spec["test_listener_arn"]:
            self.aws.elbv2.set_weights(spec["test_listener_arn"], {green["target_group"]: 1})
        current = self._green_service(spec)
        if current is not None and current.desired_count > 0:
            # The pre-flight found the idle side at zero: this is a retry of this step whose first answer
            # was lost. Adopt what it started rather than start a second deployment.
            return self._started(current)
        task_definition = green["task_definition"] or self.aws.ecs.register_task_definition_with_image(
            blue["task_definition"], green["container"], green["image"]
        )
        if current is not None:
            self.aws.ecs.update_service(
                spec["cluster"],
                green["service"],
                desired_count=blue["desired"],
                task_definition=task_definition,
            )
            service_arn, created = current.service_arn, False
        else:
            source = self.aws.ecs.describe_service(spec["cluster"], blue["service"])
            tags = {k: v for k, v in source.tags.items() if not k.startswith("aws:")}
            made = self.aws.ecs.create_service_like(
                source, green["service"], task_definition, green["target_group"], blue["desired"], tags
            )
            service_arn, created = made.service_arn, True
        if not self.still_running(run_id):
            self.aws.ecs.update_service(spec["cluster"], green["service"], desired_count=0)
            raise RunEnded("the run ended while green was starting; green was scaled back to 0")
        return _green_state(green["service"], service_arn, created, task_definition, blue["desired"])

    def _started(self, service: ServiceDetail) -> dict[str, Any]:
        primary = next((d for d in service.deployments if d.status == "PRIMARY"), None)
        task_definition = primary.task_definition if primary else service.task_definition
        return _green_state(service.name, service.service_arn, False, task_definition, service.desired_count)

    def _green_service(self, spec: dict[str, Any]) -> ServiceDetail | None:
        try:
            found = self.aws.ecs.describe_service(spec["cluster"], spec["green"]["service"])
        except NotFound:
            return None
        return found if found.status == "ACTIVE" else None

    def check_green(self, spec: dict[str, Any], green: dict[str, Any]) -> dict[str, Any]:
        """Called after each wait of `poll_seconds`. Time is counted in waits, not read from a clock, so
        that a deadline means the same in AWS and in a faster embedded run."""
        waited = int(green.get("waited", 0)) + self.poll_seconds
        service = self.aws.ecs.describe_service(spec["cluster"], green["service"])
        primary = next((d for d in service.deployments if d.status == "PRIMARY"), None)
        latest = f" Latest service event: {service.events[0]}" if service.events else ""
        if primary is None:
            raise GreenNotSteady(f"green service {green['service']} has no deployment.{latest}")
        if primary.rollout_state == "FAILED":
            raise GreenNotSteady(f"green service {green['service']}'s deployment failed.{latest}")
        if primary.task_definition != green["task_definition"]:
            # The service's own deployment circuit breaker rolled the new version back.
            raise GreenNotSteady(
                f"ECS rolled green service {green['service']} back to {primary.task_definition.split('/')[-1]}: "
                f"{green['task_definition'].split('/')[-1]} did not deploy.{latest}"
            )
        # The failure count at which ECS's deployment circuit breaker gives up, whether the service has one.
        threshold = max(3, min(200, math.ceil(green["desired"] / 2)))
        if primary.failed_tasks >= threshold:
            raise GreenNotSteady(
                f"{primary.failed_tasks} task(s) of green service {green['service']} failed to start.{latest}"
            )
        health = self.aws.elbv2.target_health(spec["green"]["target_group"])
        healthy = sum(1 for state in health.values() if state == "healthy")
        steady = (
            len(service.deployments) == 1
            and primary.task_definition == green["task_definition"]
            and primary.running_count >= green["desired"]
            and healthy >= green["desired"]
        )
        if not steady and waited >= self.green_max_wait_seconds:
            raise GreenNotSteady(
                f"green service {green['service']} was not steady after {self.green_max_wait_seconds} s: "
                f"{primary.running_count} of {green['desired']} task(s) running, {healthy} healthy target(s) in "
                f"{short(spec['green']['target_group'])}.{latest}"
            )
        return {
            **green,
            "running": primary.running_count,
            "healthy": healthy,
            "steady": steady,
            "waited": waited,
        }

    def smoke_test(self, spec: dict[str, Any], green: dict[str, Any], run_id: str) -> dict[str, Any]:
        smoke = spec["smoke_test"]
        if not smoke:
            return {"passed": True, "skipped": True}
        timeout = float(smoke.get("timeout_seconds", 10))
        if smoke.get("url"):
            url = smoke["url"]
            try:
                status = self.aws.http_get(url, timeout)
            except OSError as error:
                raise SmokeTestFailed(f"smoke test GET {url} got no answer: {error}") from error
            if not 200 <= status < 300:
                raise SmokeTestFailed(f"smoke test GET {url} answered {status}, not 2xx")
            return {"passed": True, "detail": f"GET {url} answered {status}"}
        function = smoke["lambda_function"]
        invocation = self.aws.functions.invoke(
            function,
            {
                "run_id": run_id,
                "cluster": spec["cluster"],
                "service": green["service"],
                "task_definition": green["task_definition"],
                "target_group_arn": spec["green"]["target_group"],
                "test_listener_arn": spec["test_listener_arn"],
            },
        )
        answer = invocation.payload
        if invocation.function_error:
            message = answer.get("errorMessage") if isinstance(answer, dict) else answer
            raise SmokeTestFailed(f"smoke test function {function} failed: {message}")
        if not isinstance(answer, dict) or not isinstance(answer.get("passed"), bool):
            raise SmokeTestFailed(
                f'smoke test function {function} must return {{"passed": true|false, "reason": "..."}}, '
                f"not {json.dumps(answer)[:200]}"
            )
        reason = str(answer.get("reason") or "no reason given")
        if not answer["passed"]:
            raise SmokeTestFailed(f"smoke test function {function} says green failed: {reason}")
        return {"passed": True, "detail": f"Lambda {function}: {reason}"}

    def shift(self, spec: dict[str, Any], traffic: dict[str, Any] | None, run_id: str) -> dict[str, Any]:
        """Move to the plan's next step: set the listener's weights, and hold from now."""
        if traffic is None:
            plan = [*spec["traffic"], {"percent": 100, "hold_seconds": spec["bake_seconds"], "bake": True}]
            traffic = {"plan": plan, "index": -1, "weight": 0, "history": []}
        index = traffic["index"] + 1
        step = traffic["plan"][index]
        weight = int(step["percent"])
        history = list(traffic["history"])
        if weight != traffic["weight"]:
            self.set_green_share(spec, weight)
            history.append({"percent": weight, "at": now().isoformat()})
            if not self.still_running(run_id):
                self.set_green_share(spec, 0)
                raise RunEnded(
                    f"the run ended while shifting to {weight}% green; the listener is back to 100% blue"
                )
        return {
            **traffic,
            "index": index,
            "weight": weight,
            "history": history,
            "baking": bool(step.get("bake")),
            "remaining": int(step["hold_seconds"]),
            "wait_seconds": 0,
            "done": False,
        }

    def set_green_share(self, spec: dict[str, Any], percent: int) -> None:
        self.aws.elbv2.set_weights(
            spec["listener_arn"],
            {spec["blue"]["target_group"]: 100 - percent, spec["green"]["target_group"]: percent},
        )

    def watch(self, spec: dict[str, Any], traffic: dict[str, Any]) -> dict[str, Any]:
        """Check the gates of the step being held: the alarms, and that green has healthy targets. Runs right
        after a shift and after each wait of `wait_seconds`; the hold is counted in those waits."""
        states = self.aws.cloudwatch.alarm_states(spec["alarms"])
        firing = [name for name in spec["alarms"] if states.get(name) == "ALARM"]
        if firing:
            raise AlarmFired(f"alarm {', '.join(firing)} went to ALARM")
        gone = [name for name in spec["alarms"] if name not in states]
        if gone:
            raise AlarmFired(f"alarm {', '.join(gone)} was deleted: the deploy cannot be watched")
        health = self.aws.elbv2.target_health(spec["green"]["target_group"])
        healthy = sum(1 for state in health.values() if state == "healthy")
        if healthy == 0:
            states_seen = ", ".join(sorted(set(health.values()))) or "no targets"
            raise GreenUnhealthy(
                f"green has no healthy target in {short(spec['green']['target_group'])} ({states_seen})"
            )
        remaining = max(0, int(traffic["remaining"]) - int(traffic["wait_seconds"]))
        holding = remaining > 0
        return {
            **traffic,
            "healthy": healthy,
            "remaining": remaining,
            "holding": holding,
            "wait_seconds": min(self._poll(traffic), remaining),
            "done": not holding and traffic["index"] == len(traffic["plan"]) - 1,
        }

    def _poll(self, traffic: dict[str, Any]) -> int:
        """The poll interval, stretched so that a run's watches stay well inside the 25,000 events Step
        Functions keeps in an execution's history (about 9 per watch)."""
        held = sum(int(step["hold_seconds"]) for step in traffic["plan"])
        return max(self.poll_seconds, math.ceil(held / MAX_WATCHES))

    def retire_blue(self, spec: dict[str, Any], run_id: str) -> dict[str, Any]:
        blue, green = spec["blue"], spec["green"]
        weights = self.aws.elbv2.listener(spec["listener_arn"]).weights
        if weights.get(green["target_group"], 0) == 0 or weights.get(blue["target_group"], 0) != 0:
            raise Refused(
                f"listener {short(spec['listener_arn'])} does not send all traffic to green "
                f"({_describe_weights(weights)}): someone changed it; blue stays"
            )
        problems = []
        for service, role in ((green["service"], "live"), (blue["service"], "idle")):
            try:
                arn = self.aws.ecs.describe_service(spec["cluster"], service).service_arn
                self.aws.ecs.tag(arn, {ROLE_TAG: role})
            except OpsflowError as error:  # a label; not worth undoing a deploy that succeeded
                problems.append(f"tagging {service} {role}: {error}")
        # Claimed only while the run runs: an abort settled before this leaves blue as it is (and puts
        # traffic back on it); one settled after finds the mark and keeps green live.
        if not self.claim(run_id, RETIRING_BLUE):
            raise RunEnded("the run ended before blue was retired; blue keeps its tasks")
        self.aws.ecs.update_service(spec["cluster"], blue["service"], desired_count=0)
        return {"retired": blue["service"], "problems": problems}

    def put_back(self, spec: dict[str, Any], retiring: bool = False) -> dict[str, Any]:
        """After a failure, an abort or a timeout: all traffic to blue and green scaled to zero; or, if blue
        was retired already or is being retired (`retiring`: the deploy had succeeded but for its last
        word), all traffic to green. Raises when the listener could not be set, after trying the rest."""
        blue, green = spec["blue"], spec["green"]
        undone: list[str] = []
        problems: list[str] = []
        listener_error: OpsflowError | None = None
        blue_now = self.aws.ecs.describe_service(spec["cluster"], blue["service"])
        if retiring or blue_now.desired_count == 0:
            self.set_green_share(spec, 100)
            return {
                "undone": [],
                "problems": [],
                "live": "green",
                "summary": f"blue {blue['service']} was retired already or being retired: "
                f"green {green['service']} stays live",
            }
        try:
            before = self.aws.elbv2.listener(spec["listener_arn"]).weights
            self.set_green_share(spec, 0)
            if before.get(green["target_group"], 0):
                undone.append(
                    f"listener {short(spec['listener_arn'])} back to 100% blue ({short(blue['target_group'])}) "
                    f"from {before.get(green['target_group'])}% green"
                )
        except OpsflowError as error:
            listener_error = error
            problems.append(f"setting listener {short(spec['listener_arn'])} to 100% blue: {error}")
        green_now = self._green_service(spec)
        # While the listener may still send green a share, green keeps its tasks to serve it.
        if listener_error is None and green_now is not None and green_now.desired_count > 0:
            try:
                self.aws.ecs.update_service(spec["cluster"], green["service"], desired_count=0)
                undone.append(f"green service {green['service']} scaled to 0")
            except OpsflowError as error:
                problems.append(f"scaling green service {green['service']} to 0: {error}")
        if listener_error is not None:
            raise listener_error
        summary = (
            "; ".join(undone) if undone else "the listener still sent 100% to blue; green was not running"
        )
        return {"undone": undone, "problems": problems, "live": "blue", "summary": summary}


def describe_position(traffic: dict[str, Any]) -> str:
    weight = traffic["weight"]
    if traffic.get("baking"):
        return f"while baking at {weight}% green"
    steps = len(traffic["plan"]) - 1  # the bake is not a step
    return f"at {weight}% green (step {traffic['index'] + 1} of {steps})"


def _describe_weights(weights: dict[str, int]) -> str:
    return ", ".join(f"{short(arn)} {weight}" for arn, weight in weights.items())


def _green_state(
    service: str, service_arn: str, created: bool, task_definition: str, desired: int
) -> dict[str, Any]:
    return {
        "service": service,
        "service_arn": service_arn,
        "created": created,
        "task_definition": task_definition,
        "desired": desired,
        "started_at": now().isoformat(),
        "waited": 0,
        "steady": False,
    }


# Step table ----------------------------------------------------------------------------------------


def step_table(
    aws: DeployAws, opt_in: OptIn, still_running: StillRunning, claim: Claim = lambda run_id, mark: True
) -> dict[str, Any]:
    def deploy(state: dict[str, Any]) -> Deploy:
        settings = state.get("settings") or {}
        return Deploy(
            aws,
            still_running,
            claim=claim,
            poll_seconds=int(settings.get("deploy_poll_seconds", DEFAULT_POLL_SECONDS)),
            green_max_wait_seconds=int(
                settings.get("green_max_wait_seconds", DEFAULT_GREEN_MAX_WAIT_SECONDS)
            ),
        )

    def spec_of(state: dict[str, Any]) -> dict[str, Any]:
        spec: dict[str, Any] = state["guard"]["spec"]
        return spec

    def publish(state: dict[str, Any], kind: str, message: str, **detail: Any) -> list[str]:
        # Progress events feed notifications; losing one must never fail or roll back the deploy.
        try:
            aws.events.progress(state["run_id"], state["workflow"], state["target"], kind, message, **detail)
        except Exception as error:  # noqa: BLE001
            return [f"(progress event not sent: {error})"]
        return []

    def guard(state: dict[str, Any]) -> dict[str, Any]:
        request = EcsBlueGreenRequest.model_validate(state["request"], strict=False)
        spec = preflight(request, aws, opt_in)["spec"]
        return {
            "spec": spec,
            "summary": f"{spec['blue']['service']} is live on {short(spec['blue']['target_group'])}; green will "
            f"be {spec['green']['service']} on {short(spec['green']['target_group'])}",
        }

    def start_green(state: dict[str, Any]) -> dict[str, Any]:
        green = deploy(state).start_green(spec_of(state), state["run_id"])
        verb = "created" if green["created"] else "scaled up"
        return {
            **green,
            "summary": f"{verb} green service {green['service']}: {green['desired']} task(s) of "
            f"{green['task_definition'].split('/')[-1]}",
        }

    def check_green(state: dict[str, Any]) -> dict[str, Any]:
        green = deploy(state).check_green(spec_of(state), state["green"])
        return {
            **green,
            "waiting": not green["steady"],
            "summary": f"green: {green['running']} of {green['desired']} running, {green['healthy']} healthy target(s)"
            + ("; steady" if green["steady"] else ""),
        }

    def smoke_test(state: dict[str, Any]) -> dict[str, Any]:
        result = deploy(state).smoke_test(spec_of(state), state["green"], state["run_id"])
        return {
            **result,
            "summary": "no smoke test" if result.get("skipped") else f"passed: {result['detail']}",
        }

    def shift(state: dict[str, Any]) -> dict[str, Any]:
        traffic = deploy(state).shift(spec_of(state), state.get("traffic"), state["run_id"])
        message = (
            f"all traffic on green; baking {spec_of(state)['bake_seconds']} s before blue is retired"
            if traffic["baking"]
            else f"{traffic['weight']}% of traffic on green (step {traffic['index'] + 1} of {len(traffic['plan']) - 1})"
        )
        milestones = [message, *publish(state, "traffic", message, percent=traffic["weight"])]
        return {**traffic, "summary": message, "milestones": milestones}

    def watch(state: dict[str, Any]) -> dict[str, Any]:
        traffic = deploy(state).watch(spec_of(state), state["traffic"])
        left = traffic["remaining"]
        return {
            **traffic,
            "waiting": traffic["holding"],
            "summary": f"{traffic['weight']}% on green, gates passed"
            + (f"; {left} s to hold" if left else ""),
        }

    def retire_blue(state: dict[str, Any]) -> dict[str, Any]:
        retired = deploy(state).retire_blue(spec_of(state), state["run_id"])
        return {**retired, "summary": f"blue service {retired['retired']} scaled to 0; green is live"}

    def rollback(state: dict[str, Any]) -> dict[str, Any]:
        spec = (state.get("guard") or {}).get("spec")
        if not spec:
            return {"undone": [], "problems": [], "live": None, "summary": "nothing had changed"}
        done = deploy(state).put_back(spec)
        # `summary` goes to the step's record; `put_back` stays in the state for the run's error.
        return {**done, "put_back": done["summary"]}

    return {
        "guard": guard,
        "start_green": start_green,
        "check_green": check_green,
        "smoke_test": smoke_test,
        "shift": shift,
        "watch": watch,
        "retire_blue": retire_blue,
        "rollback": rollback,
    }


def put_back_ended_run(run: Run, aws: DeployAws) -> dict[str, Any] | None:
    """For a deploy whose execution ended without its own rollback (aborted, timed out)."""
    spec = (run.plan or {}).get("spec")
    if not spec:
        return None
    return Deploy(aws, still_running=lambda _: False).put_back(spec, retiring=run.mark == RETIRING_BLUE)


# Results -------------------------------------------------------------------------------------------


def run_result(state: dict[str, Any]) -> dict[str, Any]:
    spec = state["guard"]["spec"]
    traffic = state.get("traffic") or {}
    green = state.get("green") or {}
    weights = [entry["percent"] for entry in traffic.get("history", [])]
    return {
        "summary": f"{green.get('service')} is live with {green.get('task_definition', '').split('/')[-1]}: "
        f"traffic shifted {' -> '.join(f'{w}%' for w in weights)}, baked {spec['bake_seconds']} s; "
        f"{spec['blue']['service']} scaled to 0.",
        "weights": weights,
        "history": traffic.get("history", []),
        "live": {"service": green.get("service"), "target_group": spec["green"]["target_group"]},
        "idle": {"service": spec["blue"]["service"], "target_group": spec["blue"]["target_group"]},
        "task_definition": green.get("task_definition"),
        "problems": (state.get("retire_blue") or {}).get("problems", []),
    }


def run_error(state: dict[str, Any]) -> dict[str, Any]:
    error = state.get("error") or {}
    step = state.get("failed_step", "unknown")
    name = error.get("Error", "")
    gate = GATES.get(name, GATES.get(step, step))
    traffic = state.get("traffic") or {}
    weight = int(traffic.get("weight", 0))
    position = describe_position(traffic) if traffic else "before any production traffic reached green"
    if step == "shift":
        # The step failed on its way to the plan's next share; its change may or may not have been made.
        spec = (state.get("guard") or {}).get("spec") or {}
        plan = traffic.get("plan") or [*spec.get("traffic", []), {"percent": 100, "bake": True}]
        index = int(traffic.get("index", -1)) + 1
        if index < len(plan):
            weight = int(plan[index]["percent"])
            position = (
                "while starting the bake at 100% green"
                if plan[index].get("bake")
                else f"while shifting to {weight}% green (step {index + 1} of {len(plan) - 1})"
            )
    reason = describe_failure(error)
    if name in GATE_ERRORS:
        # The gate's own words; its name is the gate.
        reason = reason.removeprefix(f"{name}: ")
        what = "abort" if name == "RunEnded" else f"{gate} gate"
    else:
        what = f"{gate} step"
    rollback = state.get("rollback") or {}
    problems = list(rollback.get("problems", []))
    if state.get("rollback_error"):
        problems.append(f"putting things back: {describe_failure(state['rollback_error'])}")
    after = rollback.get("put_back") or ("nothing was put back" if problems else "nothing had changed")
    return {
        "step": step,
        "gate": gate,
        "weight": weight,
        "error": error.get("Error", "Error"),
        "message": f"The {what} failed {position}: {reason.rstrip('.')}. Then: {after}.",
        "weights": [entry["percent"] for entry in traffic.get("history", [])],
        "rollback": {"undone": rollback.get("undone", []), "problems": problems},
        "live": rollback.get("live"),
    }


def build_runner(config: StepsConfig) -> StepRunner:
    aws = DeployAws.from_default_clients(config.event_bus)
    runs = config.run_store()

    def still_running(run_id: str) -> bool:
        run = runs.get(run_id)
        return run is not None and run.status == RUNNING

    return steps_runner(
        config, step_table(aws, config.opt_in, still_running, runs.claim), run_result, run_error
    )
