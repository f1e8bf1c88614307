"""RDS adapter: DB instances and Aurora clusters, found by their tags, stopped and started."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opsflow.aws.batches import chunks
from opsflow.aws.errors import aws_call

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient

# A DescribeDB* filter takes at most 100 identifiers, and a page holds at most 100 records.
PAGE = 100


@dataclass(frozen=True)
class Database:
    """A DB instance (not part of a cluster) or a DB cluster: what environment power stops and starts."""

    kind: str  # "instance" | "cluster"
    identifier: str
    status: str
    tags: dict[str, str]
    cluster: str | None = None  # for an instance: the cluster it belongs to

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.identifier}"


def _tags(raw: Any) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in raw.get("TagList", []) or []}


def _instance(raw: Any) -> Database:
    return Database(
        kind="instance",
        identifier=raw["DBInstanceIdentifier"],
        status=raw.get("DBInstanceStatus", ""),
        tags=_tags(raw),
        cluster=raw.get("DBClusterIdentifier") or None,
    )


def _cluster(raw: Any) -> Database:
    return Database(
        kind="cluster", identifier=raw["DBClusterIdentifier"], status=raw.get("Status", ""), tags=_tags(raw)
    )


class Rds:
    def __init__(self, client: RDSClient) -> None:
        self._rds = client

    def find_databases(self, tags: dict[str, str]) -> list[Database]:
        """Standalone DB instances and DB clusters carrying every one of these tags. Instances that are
        members of a cluster are left out: AWS stops and starts them with their cluster."""
        found: list[Database] = []
        with aws_call("DescribeDBInstances"):
            for page in self._rds.get_paginator("describe_db_instances").paginate(
                PaginationConfig={"PageSize": PAGE}
            ):
                found.extend(d for d in map(_instance, page["DBInstances"]) if d.cluster is None)
        with aws_call("DescribeDBClusters"):
            for cluster_page in self._rds.get_paginator("describe_db_clusters").paginate(
                PaginationConfig={"PageSize": PAGE}
            ):
                found.extend(map(_cluster, cluster_page["DBClusters"]))
        return [d for d in found if all(d.tags.get(k) == v for k, v in tags.items())]

    def statuses(self, keys: list[str]) -> dict[str, str]:
        """Current status by key ("instance:<id>" / "cluster:<id>"), a hundred identifiers per call;
        a database that no longer exists is absent."""
        instances = [k.split(":", 1)[1] for k in keys if k.startswith("instance:")]
        clusters = [k.split(":", 1)[1] for k in keys if k.startswith("cluster:")]
        statuses: dict[str, str] = {}
        for batch in chunks(instances, PAGE):
            with aws_call("DescribeDBInstances"):
                for page in self._rds.get_paginator("describe_db_instances").paginate(
                    Filters=[{"Name": "db-instance-id", "Values": batch}]
                ):
                    statuses.update((d.key, d.status) for d in map(_instance, page["DBInstances"]))
        for batch in chunks(clusters, PAGE):
            with aws_call("DescribeDBClusters"):
                for cluster_page in self._rds.get_paginator("describe_db_clusters").paginate(
                    Filters=[{"Name": "db-cluster-id", "Values": batch}]
                ):
                    statuses.update((d.key, d.status) for d in map(_cluster, cluster_page["DBClusters"]))
        return statuses

    def stop(self, key: str) -> None:
        kind, identifier = key.split(":", 1)
        if kind == "cluster":
            with aws_call("StopDBCluster"):
                self._rds.stop_db_cluster(DBClusterIdentifier=identifier)
        else:
            with aws_call("StopDBInstance"):
                self._rds.stop_db_instance(DBInstanceIdentifier=identifier)

    def start(self, key: str) -> None:
        kind, identifier = key.split(":", 1)
        if kind == "cluster":
            with aws_call("StartDBCluster"):
                self._rds.start_db_cluster(DBClusterIdentifier=identifier)
        else:
            with aws_call("StartDBInstance"):
                self._rds.start_db_instance(DBInstanceIdentifier=identifier)
