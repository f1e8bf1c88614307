"""ECS adapter: services, found by their tags, and their desired counts; a service's details, a copy of it
on another target group, and a task definition revision with a new image."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from opsflow.aws.batches import chunks
from opsflow.aws.errors import aws_call, error_code
from opsflow.errors import NotFound, Refused

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient

# DescribeServices takes at most 10 services per call.
DESCRIBE_BATCH = 10

# What RegisterTaskDefinition accepts back as DescribeTaskDefinition returns it. An allow-list rather than
# stripping the read-only fields (taskDefinitionArn, revision, status, requiresAttributes, compatibilities,
# registeredAt, registeredBy, deregisteredAt, deleteRequestedAt): a read-only field AWS adds later would
# make RegisterTaskDefinition refuse the copy, while a registrable one it adds is only left out.
_REGISTRABLE_TASK_DEFINITION_FIELDS = (
    "family",
    "containerDefinitions",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "inferenceAccelerators",
    "ephemeralStorage",
    "runtimePlatform",
    "enableFaultInjection",
)


# DescribeServices fields CreateService takes back as they are, for a copy placed and run like the source.
_COPIED_SETTINGS = (
    "platformVersion",
    "placementConstraints",
    "placementStrategy",
    "deploymentConfiguration",
    "enableExecuteCommand",
    "enableECSManagedTags",
    "propagateTags",
)


@dataclass(frozen=True)
class Service:
    cluster_arn: str
    service_arn: str
    name: str
    status: str
    desired_count: int
    running_count: int
    tags: dict[str, str]
    scheduling_strategy: str = "REPLICA"


def _service(raw: Any) -> Service:
    return Service(
        cluster_arn=raw["clusterArn"],
        service_arn=raw["serviceArn"],
        name=raw["serviceName"],
        status=raw.get("status", ""),
        desired_count=int(raw.get("desiredCount", 0)),
        running_count=int(raw.get("runningCount", 0)),
        tags={t["key"]: t["value"] for t in raw.get("tags", []) or []},
        scheduling_strategy=raw.get("schedulingStrategy", "REPLICA"),
    )


@dataclass(frozen=True)
class Deployment:
    deployment_id: str
    status: str  # PRIMARY, ACTIVE or INACTIVE
    rollout_state: str  # IN_PROGRESS, COMPLETED or FAILED
    task_definition: str
    desired_count: int
    running_count: int
    failed_tasks: int = 0


@dataclass(frozen=True)
class ServiceLoadBalancer:
    target_group_arn: str
    container_name: str
    container_port: int


@dataclass(frozen=True)
class ServiceDetail:
    cluster_arn: str
    service_arn: str
    name: str
    status: str
    task_definition: str
    desired_count: int
    running_count: int
    pending_count: int
    deployments: list[Deployment]
    load_balancers: list[ServiceLoadBalancer]
    tags: dict[str, str]
    launch_type: str | None
    capacity_provider_strategy: list[dict[str, Any]]
    network_configuration: dict[str, Any] | None
    health_check_grace_period_seconds: int | None
    deployment_controller: str = "ECS"
    events: tuple[str, ...] = ()  # the service's latest events, newest first
    # Settings a copy of the service keeps as they are (CreateService's names).
    copied_settings: dict[str, Any] = field(default_factory=dict)
    # Service discovery (Cloud Map registries, Service Connect) that a copy would not take over.
    discovery: tuple[str, ...] = ()

    @property
    def target_group_arns(self) -> list[str]:
        return [lb.target_group_arn for lb in self.load_balancers]


def _service_detail(raw: Any) -> ServiceDetail:
    return ServiceDetail(
        cluster_arn=raw["clusterArn"],
        service_arn=raw["serviceArn"],
        name=raw["serviceName"],
        status=raw.get("status", ""),
        task_definition=raw.get("taskDefinition", ""),
        desired_count=int(raw.get("desiredCount", 0)),
        running_count=int(raw.get("runningCount", 0)),
        pending_count=int(raw.get("pendingCount", 0)),
        deployments=[
            Deployment(
                deployment_id=d.get("id", ""),
                status=d.get("status", ""),
                rollout_state=d.get("rolloutState", ""),
                task_definition=d.get("taskDefinition", ""),
                desired_count=int(d.get("desiredCount", 0)),
                running_count=int(d.get("runningCount", 0)),
                failed_tasks=int(d.get("failedTasks", 0)),
            )
            for d in raw.get("deployments", [])
        ],
        load_balancers=[
            ServiceLoadBalancer(
                target_group_arn=lb["targetGroupArn"],
                container_name=lb.get("containerName", ""),
                container_port=int(lb.get("containerPort", 0)),
            )
            for lb in raw.get("loadBalancers", [])
            if lb.get("targetGroupArn")
        ],
        tags={t["key"]: t["value"] for t in raw.get("tags", []) or []},
        launch_type=raw.get("launchType") or None,
        capacity_provider_strategy=list(raw.get("capacityProviderStrategy") or []),
        network_configuration=raw.get("networkConfiguration") or None,
        health_check_grace_period_seconds=raw.get("healthCheckGracePeriodSeconds"),
        deployment_controller=(raw.get("deploymentController") or {}).get("type", "ECS"),
        events=tuple(e.get("message", "") for e in (raw.get("events") or [])[:5]),
        copied_settings={key: raw[key] for key in _COPIED_SETTINGS if raw.get(key) not in (None, [], {})},
        discovery=tuple(
            [f"Cloud Map registry {r.get('registryArn', '?')}" for r in raw.get("serviceRegistries") or []]
            + [
                "Service Connect"
                for d in raw.get("deployments") or []
                if d.get("status") == "PRIMARY"
                and (d.get("serviceConnectConfiguration") or {}).get("enabled")
            ]
        ),
    )


@contextmanager
def _service_call(operation: str, cluster: str, service: str) -> Iterator[None]:
    """aws_call, and an unknown cluster or service becomes NotFound."""
    with aws_call(operation):
        try:
            yield
        except ClientError as error:
            code = error_code(error)
            if code == "ClusterNotFoundException":
                raise NotFound(f"ECS cluster {cluster} does not exist") from error
            if code == "ServiceNotFoundException":
                raise NotFound(f"ECS service {service} does not exist in cluster {cluster}") from error
            raise


class Ecs:
    def __init__(self, client: ECSClient) -> None:
        self._ecs = client

    def find_services(self, tags: dict[str, str]) -> list[Service]:
        """Active REPLICA services carrying every one of these tags, in every cluster of the region.
        ECS cannot filter services by tag, so this lists them and reads their tags ten at a time.
        DAEMON services have no desired count (UpdateService refuses one): they follow their instances."""
        found: list[Service] = []
        with aws_call("ListClusters"):
            clusters = [
                arn
                for page in self._ecs.get_paginator("list_clusters").paginate()
                for arn in page["clusterArns"]
            ]
        for cluster in clusters:
            with aws_call("ListServices"):
                arns = [
                    arn
                    for page in self._ecs.get_paginator("list_services").paginate(
                        cluster=cluster, PaginationConfig={"PageSize": 100}
                    )
                    for arn in page["serviceArns"]
                ]
            for batch in chunks(arns, DESCRIBE_BATCH):
                with aws_call("DescribeServices"):
                    described = self._ecs.describe_services(cluster=cluster, services=batch, include=["TAGS"])
                found.extend(_service(raw) for raw in described["services"])
        return [
            s
            for s in found
            if s.status == "ACTIVE"
            and s.scheduling_strategy == "REPLICA"
            and all(s.tags.get(k) == v for k, v in tags.items())
        ]

    def services_of(self, cluster: str) -> list[ServiceDetail]:
        """Every service of a cluster, described with its tags."""
        with _service_call("ListServices", cluster, "(any)"):
            arns = [
                arn
                for page in self._ecs.get_paginator("list_services").paginate(
                    cluster=cluster, PaginationConfig={"PageSize": 100}
                )
                for arn in page["serviceArns"]
            ]
        found: list[ServiceDetail] = []
        for batch in chunks(arns, DESCRIBE_BATCH):
            with _service_call("DescribeServices", cluster, "(any)"):
                described = self._ecs.describe_services(cluster=cluster, services=batch, include=["TAGS"])
            found.extend(_service_detail(raw) for raw in described["services"])
        return found

    def tag(self, resource_arn: str, tags: dict[str, str]) -> None:
        with aws_call("TagResource"):
            self._ecs.tag_resource(
                resourceArn=resource_arn, tags=[{"key": key, "value": value} for key, value in tags.items()]
            )

    def set_desired_count(self, cluster_arn: str, service: str, count: int) -> None:
        with aws_call("UpdateService"):
            self._ecs.update_service(cluster=cluster_arn, service=service, desiredCount=count)

    def force_new_deployment(self, cluster: str, service: str) -> None:
        """Replace the service's tasks by its deployment configuration, with its task definition as it is."""
        with _service_call("UpdateService", cluster, service):
            self._ecs.update_service(cluster=cluster, service=service, forceNewDeployment=True)

    def describe_service(self, cluster: str, service: str) -> ServiceDetail:
        with _service_call("DescribeServices", cluster, service):
            found = self._ecs.describe_services(cluster=cluster, services=[service], include=["TAGS"])
        # An unknown service is not an error but a failure with reason MISSING.
        if not found["services"]:
            raise NotFound(f"ECS service {service} does not exist in cluster {cluster}")
        return _service_detail(found["services"][0])

    def update_service(
        self,
        cluster: str,
        service: str,
        *,
        desired_count: int | None = None,
        task_definition: str | None = None,
    ) -> None:
        changes: dict[str, Any] = {}
        if desired_count is not None:
            changes["desiredCount"] = desired_count
        if task_definition is not None:
            changes["taskDefinition"] = task_definition
        if not changes:
            raise ValueError("update_service needs a desired count or a task definition")
        with _service_call("UpdateService", cluster, service):
            self._ecs.update_service(cluster=cluster, service=service, **changes)

    def create_service_like(
        self,
        source: ServiceDetail,
        name: str,
        task_definition: str,
        target_group_arn: str,
        desired_count: int,
        tags: dict[str, str],
    ) -> ServiceDetail:
        """A service in the source's cluster, placed and networked as the source is, whose tasks the
        source's container name and port register in `target_group_arn` instead."""
        if len(source.load_balancers) != 1:
            raise Refused(
                f"ECS service {source.name} has {len(source.load_balancers)} target groups: "
                "a copy on another target group needs exactly one"
            )
        balancer = source.load_balancers[0]
        options: dict[str, Any] = dict(source.copied_settings)
        if options.get("propagateTags") == "NONE":
            del options["propagateTags"]  # DescribeServices' word for "not set"; CreateService refuses it
        # CreateService refuses launchType together with capacityProviderStrategy; when a service uses a
        # strategy, that strategy is what placed its tasks.
        if source.capacity_provider_strategy:
            options["capacityProviderStrategy"] = source.capacity_provider_strategy
        elif source.launch_type:
            options["launchType"] = source.launch_type
        if source.network_configuration:
            options["networkConfiguration"] = source.network_configuration
        if source.health_check_grace_period_seconds is not None:
            options["healthCheckGracePeriodSeconds"] = source.health_check_grace_period_seconds
        if tags:
            options["tags"] = [{"key": key, "value": value} for key, value in tags.items()]
        with _service_call("CreateService", source.cluster_arn, name):
            created = self._ecs.create_service(
                cluster=source.cluster_arn,
                serviceName=name,
                taskDefinition=task_definition,
                desiredCount=desired_count,
                loadBalancers=[
                    {
                        "targetGroupArn": target_group_arn,
                        "containerName": balancer.container_name,
                        "containerPort": balancer.container_port,
                    }
                ],
                **options,
            )
        return _service_detail(created["service"])

    def task_definition(self, task_definition: str) -> tuple[str, list[str]]:
        """The task definition's full ARN (it may be named `family:revision`) and its containers' names."""
        with aws_call(
            "DescribeTaskDefinition", not_found=f"task definition {task_definition} does not exist"
        ):
            try:
                described = self._ecs.describe_task_definition(taskDefinition=task_definition)
            except ClientError as error:
                # AWS answers an unknown task definition "ClientException: Unable to describe task definition."
                if error_code(error) == "ClientException" and "unable to describe" in str(error).lower():
                    raise NotFound(f"task definition {task_definition} does not exist") from error
                raise
        definition = described["taskDefinition"]
        return definition["taskDefinitionArn"], [
            c["name"] for c in definition.get("containerDefinitions", [])
        ]

    def register_task_definition_with_image(
        self, task_definition_arn: str, container_name: str, image: str
    ) -> str:
        """Register a new revision of the task definition's family, the same in every registrable field
        and its tags, but `container_name` runs `image`. Returns the new revision's ARN."""
        with aws_call("DescribeTaskDefinition"):
            described = self._ecs.describe_task_definition(
                taskDefinition=task_definition_arn, include=["TAGS"]
            )
        definition = cast(dict[str, Any], described["taskDefinition"])
        fields = {
            key: definition[key]
            for key in _REGISTRABLE_TASK_DEFINITION_FIELDS
            if key in definition and definition[key] not in (None, [], {})
        }
        containers = [dict(c) for c in fields.get("containerDefinitions", [])]
        target = next((c for c in containers if c.get("name") == container_name), None)
        if target is None:
            raise NotFound(f"task definition {task_definition_arn} has no container named {container_name}")
        target["image"] = image
        fields["containerDefinitions"] = containers
        if described.get("tags"):
            fields["tags"] = described["tags"]
        with aws_call("RegisterTaskDefinition"):
            registered = self._ecs.register_task_definition(**fields)
        return registered["taskDefinition"]["taskDefinitionArn"]
