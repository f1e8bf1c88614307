"""ECS service deployments, which moto 5.2.5 records but never carries out, emulated as documented in the
Amazon ECS API Reference (CreateService, UpdateService, DeleteService, DescribeServices with Deployment,
DeploymentConfiguration and DeploymentCircuitBreaker, ListTasks, DescribeTasks, StopTask) and the Developer
Guide ("Deploy Amazon ECS services by replacing tasks", "How the Amazon ECS deployment circuit breaker
detects failures", "Use load balancing to distribute Amazon ECS service traffic", "Amazon ECS task
lifecycle", "Amazon ECS service deployment state change events", "Amazon ECS service action events").

moto creates a service with one PRIMARY deployment that stays IN_PROGRESS, runningCount 0 and no task;
UpdateService sets runningCount to the desired count at once and leaves the deployments alone; ListTasks
ignores serviceName. Here:

- A deployment starts tasks: each is PENDING for `task_start_seconds`, then RUNNING. runningCount and
  pendingCount, of the service and of each deployment, count them.
- CreateService, and UpdateService with another task definition, network configuration, load balancers or
  platform version, or forceNewDeployment, start a new PRIMARY deployment (rolloutState IN_PROGRESS); the
  previous one becomes ACTIVE and is drained. A change of desiredCount alone starts no deployment: the
  PRIMARY deployment's desiredCount follows it ("the most recent desired count ... to deploy or maintain"),
  and its rolloutState is left as it was.
- Rolling update (DeploymentConfiguration): at most maximumPercent (default 200) of the desired count run
  or are pending; tasks of older deployments are stopped only while at least minimumHealthyPercent (default
  100) stay healthy. A task is healthy once RUNNING and, for a service with load balancers, healthy in each
  of its target groups. When the PRIMARY deployment's tasks all are, and no older task is left, the
  deployment is COMPLETED ("ECS deployment <id> completed.") and the older deployments are gone.
- Load balancers: a RUNNING task is registered in each target group of the service (its awsvpc address and
  the container port) and deregistered when it stops. A stopping task is DEACTIVATING for the group's
  deregistration delay, then STOPPING for `task_stop_seconds`, then STOPPED. A task whose target turns
  `unhealthy` (after healthCheckGracePeriodSeconds) is stopped: "Task failed ELB health checks in
  (target-group <arn>)". CreateService and UpdateService refuse, with InvalidParameterException, a target
  group that does not exist, that no load balancer forwards to, that is not of target type `ip` for an
  awsvpc task definition, or a container name or port the task definition does not have; and an awsvpc
  task definition without a network configuration.
- Tasks that fail to start (the `fail_tasks` test hook) stop with the stopCode and stoppedReason given, and
  the scheduler launches others. The deployment's failedTasks counts the consecutive failures until one of
  its tasks is healthy, then it is 0 and stops counting. With the deployment circuit breaker enabled, at
  0.5 x the desired count failures (at least 3, at most 200) the deployment is FAILED ("ECS deployment
  circuit breaker: task failed to start.") and launches no more tasks; with rollback, a new deployment of
  the last COMPLETED one's task definition and configuration starts ("ECS deployment circuit breaker:
  rolling back to deploymentId <id>."). Without the circuit breaker the deployment stays IN_PROGRESS and
  tasks keep failing.
- StopTask of a service's task: the scheduler starts another. DeleteService: the service is DRAINING until
  its tasks have stopped, then INACTIVE.
- ListTasks filters on serviceName, and without desiredStatus lists only tasks whose desired status is
  RUNNING, as documented. Stopped tasks are kept for an hour of AWS time. An awsvpc task has a
  privateDnsName whatever the VPC's DNS settings (moto fails to start one in a VPC without DNS hostnames).
- The service deployment state change events go to the default event bus: source `aws.ecs`, detail-type
  `ECS Deployment State Change`, the service ARN in `resources`, detail eventType (INFO, or ERROR for a
  failure), eventName SERVICE_DEPLOYMENT_IN_PROGRESS / _COMPLETED / _FAILED, deploymentId, updatedAt, reason.
  Service events (DescribeServices `events`) record started and stopped tasks and the steady state.
- Two service action events go to the same bus: source `aws.ecs`, detail-type `ECS Service Action`, the
  service ARN in `resources`, detail eventType, eventName, clusterArn and createdAt (ISO 8601 with
  milliseconds, the moment it happened). SERVICE_STEADY_STATE (INFO) is sent when a deployment is COMPLETED,
  after its SERVICE_DEPLOYMENT_COMPLETED, as the service event "has reached a steady state" is recorded; AWS
  also repeats it now and then ("you might receive this message multiple times"), which is not emulated.
  SERVICE_TASK_START_IMPAIRED (WARN) is documented only as "the service is unable to consistently start
  tasks successfully", not when exactly it is sent. Here, an emulation's choice: when the service's tasks
  have failed to start (the `fail_tasks` hook) 3 times in a row, whichever deployment they belong to, with no
  task of the service reaching RUNNING in between, it is sent once, at the third failure; it is sent again
  only after a task of the service has reached RUNNING and 3 failures in a row follow. A task that started
  and then failed its load balancer health checks did start: it neither counts nor warns. With the
  circuit breaker, SERVICE_DEPLOYMENT_FAILED comes as before (at its own threshold; at the same failure when
  that threshold is 3, just after the warning).

Not emulated: placement on container instances (EC2 launch type tasks are not registered in target groups
unless awsvpc), CloudWatch alarm rollback, task sets, the CODE_DEPLOY and EXTERNAL deployment controllers,
the service throttle, the cluster's task counts.
Durations are AWS seconds multiplied by `time_scale`. A service moves on when it or its tasks are next read or
acted on, or, in the embedded runtime, on its own at each moment it is due to (`aws_events.wake_at`): a task
started or failed to start, done draining or stopped, and a task's targets passing (or failing) their health
checks, HealthCheckIntervalSeconds x the threshold after the task registered them, and the end of the health
check grace period; while a task's targets are registered the service also looks at their health every
HealthCheckIntervalSeconds, for a change no schedule foretells (a listener change, a target turning
unhealthy). So a deployment nobody reads completes, or fails, and sends its event, when ECS would.
"""

from __future__ import annotations

import math
import time
import uuid
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

from moto.ec2.models.elastic_network_interfaces import NetworkInterface
from moto.ec2.utils import generate_dns_from_ip
from moto.ecs.exceptions import InvalidParameterException
from moto.ecs.models import EC2ContainerServiceBackend, Service, Task, TaskDefinition, ecs_backends
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.elbv2.models import elbv2_backends
from moto.elbv2.responses import ELBV2Response

from opsflow_local.emulation import aws_events
from opsflow_local.emulation.aws_events import HeldEvents, Wakes
from opsflow_local.emulation.elbv2 import load_balancers_forwarding_to

DEFAULT_DEPLOYMENT_CONFIGURATION: dict[str, Any] = {
    "deploymentCircuitBreaker": {"enable": False, "rollback": False},
    "maximumPercent": 200,
    "minimumHealthyPercent": 100,
}
DEPLOYMENT_STATE_CHANGE = "ECS Deployment State Change"
SERVICE_ACTION = "ECS Service Action"
# Failures to start in a row (no task of the service RUNNING in between) that make SERVICE_TASK_START_IMPAIRED.
START_IMPAIRED_AFTER = 3
_LIVE = frozenset({"PENDING", "RUNNING"})
# The shortest real-time period at which target health is looked at, however small time_scale is.
MIN_CHECK_PERIOD = 0.005


class EmulatedTask(Task):
    """A service's task. moto moves its own tasks one status on at each DescribeTasks; this one's status is
    the emulation's to set."""

    # DescribeTasks fields moto's Task lacks.
    created_at: datetime
    started_at: datetime
    stopping_at: datetime
    stopped_at: datetime
    execution_stopped_at: datetime
    stop_code: str

    @property
    def status(self) -> str | None:
        return self._status

    @status.setter
    def status(self, value: str) -> None:
        self._status = value

    def advance(self) -> None:
        pass


@dataclass
class _Deployment:
    id: str
    task_definition: str
    desired: int
    launch_type: str | None
    platform_version: str | None
    network_configuration: dict[str, Any] | None
    load_balancers: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime
    status: str = "PRIMARY"
    rollout_state: str = "IN_PROGRESS"
    rollout_reason: str = ""
    failed_tasks: int = 0
    proven: bool = False  # one of its tasks was healthy: the circuit breaker stops counting
    rollback: bool = False


@dataclass(frozen=True)
class _Failure:
    stop_code: str
    reason: str
    task_definition: str | None

    @property
    def outcome(self) -> tuple[str, str]:
        return self.stop_code, self.reason

    def applies_to(self, task_definition_arn: str) -> bool:
        wanted = self.task_definition
        return wanted is None or task_definition_arn == wanted or task_definition_arn.endswith(f"/{wanted}")


@dataclass
class _Run:
    """One task of a service, and when its current phase (PENDING, DEACTIVATING, STOPPING) ends."""

    task: EmulatedTask
    deployment_id: str
    due_at: float | None
    failure: tuple[str, str] | None  # (stopCode, stoppedReason) it will fail to start with
    running_since: float | None = None
    stopped_since: float | None = None
    targets: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    registered_at: float | None = None  # when its targets were registered (time.monotonic, once done)

    @property
    def status(self) -> str:
        return str(self.task.last_status)

    @property
    def live(self) -> bool:
        return self.task.desired_status == "RUNNING" and self.status in _LIVE


@dataclass
class _Service:
    account_id: str
    region: str
    cluster: str
    name: str
    arn: str
    deployments: list[_Deployment]
    cluster_arn: str = ""
    runs: list[_Run] = field(default_factory=list)
    last_completed: _Deployment | None = None
    # Tasks that failed to start since one of its tasks last reached RUNNING, and whether
    # SERVICE_TASK_START_IMPAIRED was sent for that run of failures.
    start_failures: int = 0
    start_impaired: bool = False

    def runs_of(self, deployment: _Deployment) -> list[_Run]:
        return [r for r in self.runs if r.deployment_id == deployment.id]


@dataclass
class EcsEmulation:
    """Controls for tests and the demo. Durations are AWS seconds, scaled like Wait states."""

    time_scale: float = 1.0
    task_start_seconds: float = 30.0
    task_stop_seconds: float = 30.0
    # ECS lists a stopped task for at least an hour after it stopped.
    stopped_tasks_kept_seconds: float = 3600.0
    _services: dict[tuple[str, str, str, str], _Service] = field(default_factory=dict)
    _failures: dict[tuple[str, str], _Failure] = field(default_factory=dict)
    _events: HeldEvents = field(default_factory=HeldEvents)
    _advancing: bool = False
    # By (account, region): the clock's wakes asked for to advance that backend.
    _wakes: Wakes = field(default_factory=Wakes)

    def _locked(self) -> AbstractContextManager[None]:
        return self._events.held()

    def _tell(self, service: _Service, deployment: _Deployment, name: str, reason: str) -> None:
        account, region, arn = service.account_id, service.region, service.arn
        detail = _detail(deployment, name, reason)
        self._events.later(lambda: _send(account, region, arn, DEPLOYMENT_STATE_CHANGE, detail))

    def _tell_action(self, service: _Service, name: str, at: float) -> None:
        """A service action event, sent like the deployment events once the lock is let go."""
        account, region, arn = service.account_id, service.region, service.arn
        detail = _action_detail(service, name, at)
        self._events.later(lambda: _send(account, region, arn, SERVICE_ACTION, detail))

    # Test hooks -------------------------------------------------------------------------------------

    def fail_tasks(
        self,
        cluster: str,
        service: str,
        reason: str = "CannotPullContainerError: pull image manifest has been retried 5 time(s): "
        "failed to resolve ref: not found",
        stop_code: str = "TaskFailedToStart",
        task_definition: str | None = None,
    ) -> None:
        """Tasks of this service launched from now on fail to start: after `task_start_seconds` they stop
        with this stoppedReason and stopCode (e.g. "EssentialContainerExited", "Essential container in task
        exited"). With task_definition ("family:revision" or an ARN), only tasks of that task definition
        fail, as when a new image is broken: a rollback to the previous one then succeeds. The service need
        not exist yet."""
        with self._events.mutex:
            self._failures[(_name(cluster), _name(service))] = _Failure(stop_code, reason, task_definition)

    def stop_failing_tasks(self, cluster: str, service: str) -> None:
        """Undo `fail_tasks`: tasks launched from now on start."""
        with self._events.mutex:
            self._failures.pop((_name(cluster), _name(service)), None)

    # Installation -----------------------------------------------------------------------------------

    def install(self, stack: ExitStack) -> None:
        emulation = self
        original_create = EC2ContainerServiceResponse.create_service
        original_update = EC2ContainerServiceResponse.update_service
        original_describe_services = EC2ContainerServiceBackend.describe_services
        original_describe_tasks = EC2ContainerServiceBackend.describe_tasks
        original_list_tasks = EC2ContainerServiceBackend.list_tasks
        original_stop_task = EC2ContainerServiceBackend.stop_task
        original_delete_service = EC2ContainerServiceBackend.delete_service
        original_target_health = ELBV2Response.describe_target_health

        def create_service(response: EC2ContainerServiceResponse) -> Any:
            backend = response.ecs_backend
            cluster = response._get_param("cluster", "default")
            task_definition = response._get_param("taskDefinition")
            if task_definition:
                _check_service(
                    backend,
                    backend.describe_task_definition(task_definition),
                    response._get_param("loadBalancers") or [],
                    response._get_param("networkConfiguration"),
                )
            result = original_create(response)
            emulation._created(
                backend,
                backend._get_service(cluster, response._get_param("serviceName")),
                response._get_param("deploymentConfiguration") or {},
                response._get_param("healthCheckGracePeriodSeconds"),
            )
            return result

        def update_service(response: EC2ContainerServiceResponse) -> Any:
            backend = response.ecs_backend
            params = response._get_params()
            service = backend._get_service(params.get("cluster", "default"), params["service"].split("/")[-1])
            wanted = params.get("taskDefinition") or service.task_definition
            task_definition = backend.describe_task_definition(wanted) if wanted else None
            if task_definition and (params.get("loadBalancers") is not None or params.get("taskDefinition")):
                _check_service(
                    backend,
                    task_definition,
                    params.get("loadBalancers", service.load_balancers) or [],
                    params.get("networkConfiguration") or service.network_configuration,
                )
            # Under the lock: the clock's thread must not see the service half updated.
            with emulation._locked():
                configuration = dict(
                    getattr(service, "deployment_configuration", DEFAULT_DEPLOYMENT_CONFIGURATION)
                )
                result = original_update(response)
                service.deployment_configuration = _deployment_configuration(
                    {**configuration, **(params.get("deploymentConfiguration") or {})}
                )
                if task_definition is not None:
                    # moto keeps the string given ("web:2"); DescribeServices returns the ARN.
                    service.task_definition = task_definition.arn
                emulation._updated(backend, service, params)
            return result

        # Reads hold the lock: the clock's thread may be starting or stopping tasks meanwhile.
        def describe_services(backend: EC2ContainerServiceBackend, *args: Any, **kwargs: Any) -> Any:
            with emulation._locked():
                emulation.advance(backend)
                return original_describe_services(backend, *args, **kwargs)

        def describe_tasks(backend: EC2ContainerServiceBackend, *args: Any, **kwargs: Any) -> Any:
            with emulation._locked():
                emulation.advance(backend)
                return original_describe_tasks(backend, *args, **kwargs)

        def list_tasks(
            backend: EC2ContainerServiceBackend,
            cluster_str: str | None = None,
            container_instance: str | None = None,
            family: str | None = None,
            started_by: str | None = None,
            service_name: str | None = None,
            desired_status: str | None = None,
        ) -> list[Task]:
            with emulation._locked():
                emulation.advance(backend)
                tasks: list[Task] = original_list_tasks(
                    backend,
                    cluster_str,
                    container_instance,
                    family,
                    started_by,
                    None,
                    desired_status or "RUNNING",
                )
            if service_name:
                tasks = [t for t in tasks if t.group == f"service:{_name(service_name)}"]
            return tasks

        def stop_task(
            backend: EC2ContainerServiceBackend, cluster_str: str, task_str: str, reason: str
        ) -> Task:
            with emulation._locked():
                emulation.advance(backend)
                found = emulation._find_run(backend, task_str)
                if found is None:
                    task: Task = original_stop_task(backend, cluster_str, task_str, reason)
                    return task
                service, run = found
                now = time.monotonic()
                emulation._stop(service, run, now, "UserInitiated", reason or "Task stopped by user")
                emulation._plan(backend, service, now)
                return run.task

        def delete_service(
            backend: EC2ContainerServiceBackend, cluster_name: str, service_name: str, force: bool
        ) -> Service:
            with emulation._locked():
                service: Service = original_delete_service(backend, cluster_name, service_name, force)
                if emulation._services.get(_key(backend, service.cluster_name, service.name)):
                    service.desired_count = 0
                    service.status = "DRAINING"
                emulation.advance(backend)
            return service

        def describe_target_health(response: ELBV2Response) -> Any:
            # Tasks register their targets when they start: bring ECS up to date before answering.
            emulation.advance(ecs_backends[response.current_account][response.region])
            return original_target_health(response)

        # moto's ENI has a private DNS name only in a VPC with DNS hostnames, and its awsvpc task reads it.
        stack.enter_context(mock.patch.object(NetworkInterface, "private_dns_name", None, create=True))
        stack.enter_context(mock.patch.object(EC2ContainerServiceResponse, "create_service", create_service))
        stack.enter_context(mock.patch.object(EC2ContainerServiceResponse, "update_service", update_service))
        for name, method in {
            "describe_services": describe_services,
            "describe_tasks": describe_tasks,
            "list_tasks": list_tasks,
            "stop_task": stop_task,
            "delete_service": delete_service,
        }.items():
            stack.enter_context(mock.patch.object(EC2ContainerServiceBackend, name, method))
        stack.enter_context(
            mock.patch.object(ELBV2Response, "describe_target_health", describe_target_health)
        )

    # API --------------------------------------------------------------------------------------------

    def _created(
        self,
        backend: EC2ContainerServiceBackend,
        service: Service,
        configuration: dict[str, Any],
        grace_period: int | None,
    ) -> None:
        service.deployment_configuration = _deployment_configuration(configuration)
        if grace_period is not None:
            service.health_check_grace_period_seconds = int(grace_period)
        if service.deployment_controller.get("type", "ECS") != "ECS" or not service.deployments:
            return
        with self._locked():
            now = time.monotonic()
            key = _key(backend, service.cluster_name, service.name)
            previous = self._services.get(key)
            if previous is not None:  # a service of the same name was deleted before
                for run in previous.runs:
                    if run.status != "STOPPED":
                        self._deregister(previous, run)
                        self._end(run, now)
            deployment = _Deployment(
                id=str(service.deployments[0]["id"]),
                task_definition=str(service.task_definition),
                desired=service.desired_count,
                launch_type=service.launch_type,
                platform_version=service.platform_version,
                network_configuration=service.network_configuration or None,
                load_balancers=list(service.load_balancers),
                created_at=_wall(now),
                updated_at=_wall(now),
            )
            deployment.rollout_reason = f"ECS deployment {deployment.id} in progress."
            emulated = _Service(
                account_id=backend.account_id,
                region=backend.region_name,
                cluster=service.cluster_name,
                name=service.name,
                arn=service.arn,
                deployments=[deployment],
                cluster_arn=str(service.cluster_arn),
            )
            self._services[key] = emulated
            self._tell(emulated, deployment, "SERVICE_DEPLOYMENT_IN_PROGRESS", deployment.rollout_reason)
            self._advance_service(backend, emulated, now)

    def _updated(self, backend: EC2ContainerServiceBackend, service: Service, params: dict[str, Any]) -> None:
        with self._locked():
            emulated = self._services.get(_key(backend, service.cluster_name, service.name))
            if emulated is None:
                return
            now = time.monotonic()
            self._advance_service(backend, emulated, now)
            primary = emulated.deployments[0]
            changed = (
                params.get("forceNewDeployment")
                or service.task_definition != primary.task_definition
                or _given_and_changed(params, "networkConfiguration", primary.network_configuration)
                or _given_and_changed(params, "loadBalancers", primary.load_balancers)
                or _given_and_changed(params, "platformVersion", primary.platform_version)
            )
            if changed:
                self._deploy(
                    emulated,
                    _Deployment(
                        id=_deployment_id(),
                        task_definition=str(service.task_definition),
                        desired=service.desired_count,
                        launch_type=service.launch_type,
                        platform_version=service.platform_version,
                        network_configuration=service.network_configuration or None,
                        load_balancers=list(service.load_balancers),
                        created_at=_wall(now),
                        updated_at=_wall(now),
                    ),
                    reason=None,
                )
            else:
                primary.updated_at = _wall(now)
            self._advance_service(backend, emulated, now)

    def _deploy(self, service: _Service, deployment: _Deployment, reason: str | None) -> None:
        for older in service.deployments:
            older.status = "ACTIVE"
        deployment.rollout_reason = reason or f"ECS deployment {deployment.id} in progress."
        service.deployments.insert(0, deployment)
        self._tell(service, deployment, "SERVICE_DEPLOYMENT_IN_PROGRESS", deployment.rollout_reason)

    def _find_run(self, backend: EC2ContainerServiceBackend, task: str) -> tuple[_Service, _Run] | None:
        task_id = task.split("/")[-1]
        for service in self._services.values():
            if (service.account_id, service.region) != (backend.account_id, backend.region_name):
                continue
            for run in service.runs:
                if run.task.id == task_id:
                    return service, run
        return None

    # Progress ---------------------------------------------------------------------------------------

    def advance(self, backend: EC2ContainerServiceBackend) -> None:
        with self._locked():
            if self._advancing:
                return
            self._advancing = True
            try:
                now = time.monotonic()
                for service in list(self._services.values()):
                    if (service.account_id, service.region) == (backend.account_id, backend.region_name):
                        self._advance_service(backend, service, now)
            finally:
                self._advancing = False

    # Clock ------------------------------------------------------------------------------------------

    def _plan(self, backend: EC2ContainerServiceBackend, service: _Service, now: float) -> None:
        """Ask the clock to advance the backend when the service is next due to change."""
        due = self._next_change(backend, service, now)
        if due is not None:
            self._wake(backend, max(due, now))

    def _next_change(
        self, backend: EC2ContainerServiceBackend, service: _Service, now: float
    ) -> float | None:
        """The next instant the service may change: a task's phase ends, or a task's targets' health checks
        give their verdict (HealthCheckIntervalSeconds x HealthyThresholdCount, or x UnhealthyThresholdCount,
        after it registered them, as the ELBv2 emulation schedules them), or the grace period ends; while a
        task has targets, at least every HealthCheckIntervalSeconds for a change no schedule foretells."""
        times = [r.due_at for r in service.runs if r.due_at is not None]
        model = backend.services.get(f"{service.cluster}:{service.name}")
        grace = float(getattr(model, "health_check_grace_period_seconds", 0) or 0) * self.time_scale
        balancing = elbv2_backends[service.account_id][service.region]
        for run in service.runs:
            if not (run.live and run.status == "RUNNING" and run.targets):
                continue
            if run.running_since is not None and now < run.running_since + grace:
                times.append(run.running_since + grace)
            groups = [
                g for g in (balancing.target_groups.get(arn) for arn, _ in run.targets) if g is not None
            ]
            if not groups:
                continue
            period = max(
                min(float(g.health_check_interval_seconds) for g in groups) * self.time_scale,
                MIN_CHECK_PERIOD,
            )
            verdicts = sorted(
                run.registered_at + float(g.health_check_interval_seconds) * int(threshold) * self.time_scale
                for g in groups
                for threshold in (g.healthy_threshold_count, g.unhealthy_threshold_count)
                if run.registered_at is not None
            )
            times.append(next((at for at in verdicts if at > now), now + period))
        return min(times) if times else None

    def _wake(self, backend: EC2ContainerServiceBackend, due: float) -> None:
        self._wakes.ask((backend.account_id, backend.region_name), due, lambda: self._woken(backend))

    def _woken(self, backend: EC2ContainerServiceBackend) -> None:
        with self._locked():
            self.advance(backend)

    def _advance_service(self, backend: EC2ContainerServiceBackend, service: _Service, now: float) -> None:
        """Play the service's task transitions in the order they fell due, each followed by what the scheduler
        does then, so that a task launched to replace a failed one starts when that one failed."""
        model = backend.services.get(f"{service.cluster}:{service.name}")
        for _ in range(10_000):
            due = [r for r in service.runs if r.due_at is not None and r.due_at <= now]
            if not due:
                break
            run = min(due, key=lambda r: r.due_at or 0.0)
            at = run.due_at or now
            self._step(service, run, at)
            self._schedule(backend, service, model, at)
        self._schedule(backend, service, model, now)
        self._forget_stopped(backend, service, now)
        if model is not None:
            self._render(service, model)
        self._plan(backend, service, now)

    def _step(self, service: _Service, run: _Run, at: float) -> None:
        run.due_at = None
        if run.status == "PENDING":
            if run.failure is not None:
                code, reason = run.failure
                run.task.stop_code, run.task.stopped_reason = code, reason
                run.task.desired_status = "STOPPED"
                run.task.stopping_at = _wall(at)
                for container in run.task.containers:
                    container.reason = reason
                    # A container that never started has no exit code.
                    container.exitCode = 1 if code == "EssentialContainerExited" else None
                deployment = self._deployment(service, run)
                if deployment is not None and not deployment.proven:
                    deployment.failed_tasks += 1
                self._end(run, at)
                service.start_failures += 1
                if service.start_failures >= START_IMPAIRED_AFTER and not service.start_impaired:
                    service.start_impaired = True
                    self._tell_action(service, "SERVICE_TASK_START_IMPAIRED", at)
                return
            run.task.last_status = "RUNNING"
            run.task.started_at = _wall(at)
            run.running_since = at
            service.start_failures, service.start_impaired = 0, False
            for container in run.task.containers:
                container.last_status = "RUNNING"
            self._register(service, run)
        elif run.status == "DEACTIVATING":
            run.task.last_status = "STOPPING"
            run.due_at = at + self.task_stop_seconds * self.time_scale
        elif run.status == "STOPPING":
            self._end(run, at)

    def _schedule(
        self, backend: EC2ContainerServiceBackend, service: _Service, model: Service | None, at: float
    ) -> None:
        """What the service scheduler does at `at`: replace unhealthy tasks, judge the deployment, scale,
        drain older deployments, launch tasks, and mark the deployment completed."""
        if model is None or model.status != "ACTIVE":
            for run in service.runs:
                if run.live:
                    self._stop(service, run, at, "ServiceSchedulerInitiated", "Service is being deleted")
            if (
                model is not None
                and model.status == "DRAINING"
                and all(r.status == "STOPPED" for r in service.runs)
            ):
                model.status = "INACTIVE"
            return
        configuration = model.deployment_configuration
        grace = float(getattr(model, "health_check_grace_period_seconds", 0) or 0) * self.time_scale
        primary = service.deployments[0]
        primary.desired = model.desired_count

        for run in service.runs:
            if run.status == "RUNNING" and run.live and at >= (run.running_since or at) + grace:
                unhealthy = self._unhealthy_group(service, run)
                if unhealthy:
                    self._stop(
                        service,
                        run,
                        at,
                        "ServiceSchedulerInitiated",
                        f"Task failed ELB health checks in (target-group {unhealthy})",
                    )
                    deployment = self._deployment(service, run)
                    if deployment is not None and not deployment.proven:
                        deployment.failed_tasks += 1

        if not primary.proven and any(self._healthy(service, r) for r in service.runs_of(primary)):
            primary.proven, primary.failed_tasks = True, 0
        breaker = configuration["deploymentCircuitBreaker"]
        if (
            breaker.get("enable")
            and primary.rollout_state == "IN_PROGRESS"
            and not primary.proven
            and primary.failed_tasks >= _failure_threshold(primary.desired)
        ):
            self._fail(service, model, primary, at, rollback=bool(breaker.get("rollback")))
            primary = service.deployments[0]
            primary.desired = model.desired_count

        own = [r for r in service.runs_of(primary) if r.live]
        surplus = len(own) - primary.desired
        if surplus > 0:
            # Pending tasks go first, then the newest.
            for run in sorted(own, key=lambda r: (r.status == "RUNNING", -(r.running_since or 0.0)))[
                :surplus
            ]:
                self._stop(service, run, at, "ServiceSchedulerInitiated", _scaling(primary))

        minimum_healthy = math.ceil(primary.desired * configuration["minimumHealthyPercent"] / 100)
        healthy = sum(1 for r in service.runs if r.live and self._healthy(service, r))
        for older in service.deployments[1:]:
            for run in sorted(service.runs_of(older), key=lambda r: r.status == "RUNNING"):
                if not run.live:
                    continue
                if not self._healthy(service, run):
                    self._stop(service, run, at, "ServiceSchedulerInitiated", _scaling(primary))
                elif healthy - 1 >= minimum_healthy:
                    self._stop(service, run, at, "ServiceSchedulerInitiated", _scaling(primary))
                    healthy -= 1
            older.desired = sum(1 for r in service.runs_of(older) if r.live)

        if primary.rollout_state != "FAILED":
            live = sum(1 for r in service.runs if r.live)
            missing = primary.desired - sum(1 for r in service.runs_of(primary) if r.live)
            room = math.floor(primary.desired * configuration["maximumPercent"] / 100) - live
            count = min(missing, room) if live else missing
            if count > 0:
                self._launch(backend, service, model, primary, count, at)

        own = [r for r in service.runs_of(primary) if r.live]
        if (
            primary.rollout_state == "IN_PROGRESS"
            and len(own) == primary.desired
            and all(self._healthy(service, r) for r in own)
            and not any(r.live for older in service.deployments[1:] for r in service.runs_of(older))
        ):
            primary.rollout_state = "COMPLETED"
            primary.rollout_reason = f"ECS deployment {primary.id} completed."
            primary.updated_at = _wall(at)
            service.deployments = [primary]
            service.last_completed = primary
            _note(model, f"(deployment {primary.id}) deployment completed.")
            _note(model, "has reached a steady state.")
            self._tell(service, primary, "SERVICE_DEPLOYMENT_COMPLETED", primary.rollout_reason)
            self._tell_action(service, "SERVICE_STEADY_STATE", at)

    def _fail(
        self, service: _Service, model: Service, primary: _Deployment, at: float, rollback: bool
    ) -> None:
        primary.rollout_state = "FAILED"
        primary.rollout_reason = "ECS deployment circuit breaker: task failed to start."
        primary.updated_at = _wall(at)
        _note(model, f"(deployment {primary.id}) deployment failed: tasks failed to start.")
        self._tell(service, primary, "SERVICE_DEPLOYMENT_FAILED", primary.rollout_reason)
        last = service.last_completed
        # "The rollback method requires a previous deployment in COMPLETED state"; a failed rollback is not
        # rolled back in turn.
        if not rollback or last is None or last is primary or primary.rollback:
            return
        self._deploy(
            service,
            _Deployment(
                id=_deployment_id(),
                task_definition=last.task_definition,
                desired=model.desired_count,
                launch_type=last.launch_type,
                platform_version=last.platform_version,
                network_configuration=last.network_configuration,
                load_balancers=list(last.load_balancers),
                created_at=_wall(at),
                updated_at=_wall(at),
                rollback=True,
            ),
            reason=f"ECS deployment circuit breaker: rolling back to deploymentId {last.id}.",
        )
        model.task_definition = last.task_definition
        model.load_balancers = list(last.load_balancers)
        if last.network_configuration:
            model.network_configuration = last.network_configuration

    # Tasks ------------------------------------------------------------------------------------------

    def _launch(
        self,
        backend: EC2ContainerServiceBackend,
        service: _Service,
        model: Service,
        deployment: _Deployment,
        count: int,
        at: float,
    ) -> None:
        cluster = backend._get_cluster(service.cluster)
        task_definition = backend.describe_task_definition(deployment.task_definition)
        network = None
        if task_definition.network_mode == "awsvpc" and deployment.network_configuration:
            vpc = dict(deployment.network_configuration["awsvpcConfiguration"])
            vpc.setdefault("securityGroups", [])
            network = {"awsvpcConfiguration": vpc}
        failure = self._failures.get((service.cluster, service.name))
        fails_with = failure.outcome if failure and failure.applies_to(deployment.task_definition) else None
        started = []
        for _ in range(count):
            task = EmulatedTask(
                cluster,
                task_definition,
                None,
                None,  # no container instance to reserve resources on
                backend=backend,
                group=f"service:{service.name}",
                launch_type=deployment.launch_type or "",
                started_by=deployment.id,
                networking_configuration=network,
                platform_version=deployment.platform_version,
            )
            task.last_status = "PENDING"
            task.created_at = _wall(at)
            _name_private_address(task)
            backend.tasks.setdefault(cluster.name, {})[task.task_arn] = task
            service.runs.append(
                _Run(
                    task=task,
                    deployment_id=deployment.id,
                    due_at=at + self.task_start_seconds * self.time_scale,
                    failure=fails_with,
                )
            )
            started.append(task.id)
        _note(model, f"has started {count} tasks: {' '.join(f'(task {i})' for i in started)}.")

    def _stop(self, service: _Service, run: _Run, at: float, code: str, reason: str) -> None:
        if not run.live:
            return
        task = run.task
        task.desired_status = "STOPPED"
        task.stop_code, task.stopped_reason = code, reason
        task.stopping_at = _wall(at)
        model = ecs_backends[service.account_id][service.region].services.get(
            f"{service.cluster}:{service.name}"
        )
        if model is not None and run.status == "RUNNING":
            _note(model, f"has stopped 1 running tasks: (task {task.id}).")
        if run.status == "RUNNING" and run.targets:
            delay = self._deregister(service, run)
            task.last_status = "DEACTIVATING"
            run.due_at = at + delay * self.time_scale
        else:
            task.last_status = "STOPPING"
            run.due_at = at + self.task_stop_seconds * self.time_scale

    def _end(self, run: _Run, at: float) -> None:
        run.task.last_status = "STOPPED"
        run.task.desired_status = "STOPPED"
        run.task.stopped_at = _wall(at)
        run.task.execution_stopped_at = _wall(at)
        run.due_at = None
        run.stopped_since = at
        for container in run.task.containers:
            container.last_status = "STOPPED"

    def _register(self, service: _Service, run: _Run) -> None:
        deployment = self._deployment(service, run)
        address = _private_ip(run.task)
        if deployment is None or address is None:
            return
        balancing = elbv2_backends[service.account_id][service.region]
        for load_balancer in deployment.load_balancers:
            group = balancing.target_groups.get(load_balancer.get("targetGroupArn", ""))
            if group is None:
                continue
            target = {"Id": address, "Port": int(load_balancer["containerPort"])}
            group.register([target])
            run.targets.append((group.arn, target))
        # Read after registering, so never before the instant the ELBv2 emulation schedules checks from.
        run.registered_at = time.monotonic()

    def _deregister(self, service: _Service, run: _Run) -> float:
        """Deregister the task's targets; returns the longest deregistration delay, in AWS seconds."""
        balancing = elbv2_backends[service.account_id][service.region]
        delay = 0.0
        for arn, target in run.targets:
            group = balancing.target_groups.get(arn)
            if group is not None and target["Id"] in group.targets:
                group.deregister([target])
                delay = max(
                    delay, float(str(group.attributes.get("deregistration_delay.timeout_seconds", 300)))
                )
        run.targets = []
        return delay

    def _target_states(self, service: _Service, run: _Run) -> list[tuple[str, str]]:
        balancing = elbv2_backends[service.account_id][service.region]
        states = []
        for arn, target in run.targets:
            group = balancing.target_groups.get(arn)
            state = (
                group.health_for(target, balancing.ec2_backend).status if group is not None else "unavailable"
            )
            states.append((arn, str(state)))
        return states

    def _healthy(self, service: _Service, run: _Run) -> bool:
        return (
            run.live
            and run.status == "RUNNING"
            and all(state == "healthy" for _, state in self._target_states(service, run))
        )

    def _unhealthy_group(self, service: _Service, run: _Run) -> str | None:
        return next((arn for arn, state in self._target_states(service, run) if state == "unhealthy"), None)

    def _deployment(self, service: _Service, run: _Run) -> _Deployment | None:
        return next((d for d in service.deployments if d.id == run.deployment_id), None)

    def _forget_stopped(self, backend: EC2ContainerServiceBackend, service: _Service, now: float) -> None:
        horizon = now - self.stopped_tasks_kept_seconds * self.time_scale
        for run in [r for r in service.runs if r.stopped_since is not None and r.stopped_since < horizon]:
            service.runs.remove(run)
            backend.tasks.get(service.cluster, {}).pop(run.task.task_arn, None)

    def _render(self, service: _Service, model: Service) -> None:
        """Show the emulated state where moto's DescribeServices reads it."""
        counts = []
        for deployment in service.deployments:
            runs = service.runs_of(deployment)
            running = sum(1 for r in runs if r.live and r.status == "RUNNING")
            pending = sum(1 for r in runs if r.live and r.status == "PENDING")
            counts.append((deployment, running, pending))
        model.running_count = sum(running for _, running, _ in counts)
        model.pending_count = sum(pending for _, _, pending in counts)
        model.deployments = [
            {
                "id": d.id,
                "status": d.status,
                "taskDefinition": d.task_definition,
                "desiredCount": d.desired,
                "pendingCount": pending,
                "runningCount": running,
                "failedTasks": d.failed_tasks,
                "createdAt": d.created_at,
                "updatedAt": d.updated_at,
                "launchType": d.launch_type,
                "platformVersion": d.platform_version,
                "platformFamily": "EC2" if d.launch_type == "EC2" else "FARGATE",
                "networkConfiguration": d.network_configuration,
                "rolloutState": d.rollout_state,
                "rolloutStateReason": d.rollout_reason,
            }
            for d, running, pending in counts
        ]


# Helpers --------------------------------------------------------------------------------------------


def _check_service(
    backend: EC2ContainerServiceBackend,
    task_definition: TaskDefinition,
    load_balancers: list[dict[str, Any]],
    network_configuration: dict[str, Any] | None,
) -> None:
    """CreateService's and UpdateService's checks of the load balancers and network configuration."""
    awsvpc = task_definition.network_mode == "awsvpc"
    if awsvpc and not network_configuration:
        raise InvalidParameterException(
            "Network Configuration must be provided when networkMode 'awsvpc' is specified."
        )
    balancing = elbv2_backends[backend.account_id][backend.region_name]
    for load_balancer in load_balancers:
        arn = load_balancer.get("targetGroupArn")
        if not arn:
            continue
        group = balancing.target_groups.get(arn)
        if group is None:
            raise InvalidParameterException(
                "Unable to assume role and validate the specified targetGroupArn. Please verify that the ECS "
                "service role being passed has the proper permissions."
            )
        if not load_balancers_forwarding_to(balancing, arn):
            raise InvalidParameterException(
                f"The target group with targetGroupArn {arn} does not have an associated load balancer."
            )
        if awsvpc and group.target_type != "ip":
            raise InvalidParameterException(
                f"The provided target group {arn} has target type {group.target_type}, which is incompatible "
                "with the awsvpc network mode specified in the task definition."
            )
        name = load_balancer.get("containerName")
        container = next((c for c in task_definition.container_definitions if c.get("name") == name), None)
        if container is None:
            raise InvalidParameterException(f"The container {name} does not exist in the task definition.")
        ports = {int(p["containerPort"]) for p in container.get("portMappings") or [] if "containerPort" in p}
        if int(load_balancer.get("containerPort", -1)) not in ports:
            raise InvalidParameterException(
                f"The container {name} did not have a container port {load_balancer.get('containerPort')} defined."
            )


def _deployment_configuration(given: dict[str, Any]) -> dict[str, Any]:
    configuration = {**DEFAULT_DEPLOYMENT_CONFIGURATION, **given}
    configuration["deploymentCircuitBreaker"] = {
        **DEFAULT_DEPLOYMENT_CONFIGURATION["deploymentCircuitBreaker"],
        **(given.get("deploymentCircuitBreaker") or {}),
    }
    return configuration


def _given_and_changed(params: dict[str, Any], name: str, current: Any) -> bool:
    return name in params and params[name] is not None and params[name] != current


def _failure_threshold(desired: int) -> int:
    return min(200, max(3, math.ceil(0.5 * desired)))


def _scaling(deployment: _Deployment) -> str:
    return f"Scaling activity initiated by (deployment {deployment.id})"


def _private_ip(task: Task) -> str | None:
    attachments: list[dict[str, Any]] = task.attachments
    for attachment in attachments:
        for detail in attachment.get("details", []):
            if detail.get("name") == "privateIPv4Address":
                return str(detail["value"])
    return None


def _name_private_address(task: Task) -> None:
    """AWS names every awsvpc task's address, whatever the VPC's DNS settings."""
    address = _private_ip(task)
    attachments: list[dict[str, Any]] = task.attachments
    for attachment in attachments:
        for detail in attachment.get("details", []):
            if detail.get("name") == "privateDnsName" and not detail.get("value") and address:
                detail["value"] = generate_dns_from_ip(address)


def _deployment_id() -> str:
    return f"ecs-svc/{uuid.uuid4().int % 10**19}"


def _name(name_or_arn: str) -> str:
    return name_or_arn.split("/")[-1]


def _key(backend: EC2ContainerServiceBackend, cluster: str, service: str) -> tuple[str, str, str, str]:
    return (backend.account_id, backend.region_name, cluster, service)


def _wall(at: float) -> datetime:
    """The wall-clock time of a monotonic instant."""
    return datetime.now(UTC) - timedelta(seconds=time.monotonic() - at)


def _note(model: Service, message: str) -> None:
    """A service event, as DescribeServices lists them: the newest first, at most 100."""
    model.events.insert(
        0,
        {
            "id": str(uuid.uuid4()),
            "createdAt": datetime.now(UTC),
            "message": f"(service {model.name}) {message}",
        },
    )
    del model.events[100:]


def _detail(deployment: _Deployment, name: str, reason: str) -> dict[str, Any]:
    """An ECS Deployment State Change event's detail, as the deployment is when it happens."""
    return {
        "eventType": "ERROR" if name == "SERVICE_DEPLOYMENT_FAILED" else "INFO",
        "eventName": name,
        "deploymentId": deployment.id,
        "updatedAt": deployment.updated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "reason": reason,
    }


def _action_detail(service: _Service, name: str, at: float) -> dict[str, Any]:
    """An ECS Service Action event's detail (no `version`, unlike the task state change events')."""
    return {
        "eventType": "WARN" if name == "SERVICE_TASK_START_IMPAIRED" else "INFO",
        "eventName": name,
        "clusterArn": service.cluster_arn,
        "createdAt": _milliseconds(_wall(at)),
    }


def _milliseconds(moment: datetime) -> str:
    """ISO 8601 in UTC to the millisecond, as the service action events' createdAt: 2019-11-19T19:55:38.725Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _send(account_id: str, region: str, service_arn: str, detail_type: str, detail: dict[str, Any]) -> None:
    aws_events.send(account_id, region, "aws.ecs", detail_type, [service_arn], detail)
