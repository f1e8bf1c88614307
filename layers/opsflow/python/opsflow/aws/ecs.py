"""ECS adapter: services, found by their tags, and their desired counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opsflow.aws.batches import chunks
from opsflow.aws.errors import aws_call

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient

# DescribeServices takes at most 10 services per call.
DESCRIBE_BATCH = 10


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

    def set_desired_count(self, cluster_arn: str, service: str, count: int) -> None:
        with aws_call("UpdateService"):
            self._ecs.update_service(cluster=cluster_arn, service=service, desiredCount=count)
