"""Environment power at scale: the AWS API calls and wall time of one stop and one start of a large
environment, beside a naive per-resource script doing the same work and the floor AWS allows.

    .venv/bin/python benchmarks/env_power.py [--instances 5000 --groups 200 --services 100 --databases 50]

Calls are counted by operation with a botocore `before-parameter-build` hook on every client that Opsflow's
client factory (`opsflow.aws.clients`) hands out, and on the naive script's clients. Each call is attributed
to the Lambda invocation it is made in, so only the environment power steps and the API's POST /runs (its
pre-flight) count: not the benchmark's own calls (seeding, waiting, checking), GET /runs or notifications.
Times are embedded-runtime times (moto in-process, AWS waits compressed by --time-scale), not AWS times.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import boto3
from botocore.config import Config
from botocore.model import OperationModel

from opsflow.aws import clients
from opsflow_local import EmbeddedAws, seed

TARGET = 450
# How often the naive script checks its databases while they start (Opsflow waits for their RDS events).
DATABASE_POLL_SECONDS = 30
# Batch sizes AWS documents: DescribeInstances pages of 1,000, DescribeAutoScalingGroups 100, ListClusters
# and ListServices 100, DescribeServices 10 services, DescribeDBInstances/Clusters 100. StopInstances and
# StartInstances document no maximum; 1,000 is TerminateInstances' documented one and Opsflow's batch.
INSTANCE_PAGE = 1000
INSTANCE_ACTION_BATCH = 1000
GROUP_PAGE = 100
ECS_LIST_PAGE = 100
ECS_DESCRIBE_BATCH = 10
RDS_PAGE = 100
MOVING = frozenset({"pending", "stopping", "starting"})
PAGE_SIZE_KEY = "opsflow_benchmark_page_size"

DISCOVERY = "discovery and status reads (Describe*/List*)"
SAVE_WRITES = "saved capacity: writes"
SAVE_READS = "saved capacity: reads"
ACTIONS = "actions (Stop*/Start*/Update*)"
BOOKKEEPING = "run bookkeeping (runs and locks tables, StartExecution)"
CATEGORIES = (DISCOVERY, SAVE_WRITES, SAVE_READS, ACTIONS, BOOKKEEPING)
SAVE_WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "TransactWriteItems", "BatchWriteItem"})

# Who made a call: the steps Lambda, the API's POST /runs, the naive script, or something not counted.
STEPS, PREFLIGHT, NAIVE = "steps", "pre-flight", "naive"


@dataclass(frozen=True)
class Call:
    caller: str
    step: str
    service: str
    operation: str
    table: str

    @property
    def name(self) -> str:
        return f"{self.service} {self.operation}" + (f" ({self.table})" if self.table else "")


@dataclass(frozen=True)
class Taken:
    calls: Counter[Call]
    invocations: Counter[tuple[str, str]]  # Lambda invocations by (caller, step)
    pages_added: Counter[str]  # DescribeInstances pages AWS would answer that moto did not, by caller


class CallLog:
    """AWS API calls counted with botocore's `before-parameter-build` event: once per call whatever its
    retries, with the call's own parameters (`before-call` sees them serialized), which name its table.

    moto pages DescribeInstances by reservation, and one RunInstances batch is one reservation, so it answers
    thousands of instances in a page that AWS would split by instance: `after-call` adds the pages AWS would
    answer, so the counts stand for AWS's."""

    def __init__(self, table_kinds: dict[str, str]) -> None:
        self._table_kinds = table_kinds
        self._calls: Counter[Call] = Counter()
        self._invocations: Counter[tuple[str, str]] = Counter()
        self._pages_added: Counter[str] = Counter()
        self._mutex = threading.Lock()
        self._current = threading.local()

    def watch(self, client: Any, caller: Callable[[], tuple[str, str]]) -> None:
        def count(model: OperationModel, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            who, step = caller()
            call = Call(who, step, model.service_model.service_name, model.name, self._table_kind(params))
            context[PAGE_SIZE_KEY] = params.get("MaxResults")
            with self._mutex:
                self._calls[call] += 1

        def page_as_aws(
            model: OperationModel, parsed: dict[str, Any], context: dict[str, Any], **_: Any
        ) -> None:
            size = context.get(PAGE_SIZE_KEY)
            returned = sum(len(r.get("Instances", [])) for r in parsed.get("Reservations", []))
            if not size or returned <= size:
                return
            who, step = caller()
            added = math.ceil(returned / size) - 1
            with self._mutex:
                self._calls[Call(who, step, "ec2", model.name, "")] += added
                self._pages_added[who] += added

        # Unique ids: Opsflow's factory returns its cached client again and again, each must count once.
        events = client.meta.events
        events.register("before-parameter-build", count, unique_id=f"opsflow-benchmark-{id(self)}")
        events.register(
            "after-call.ec2.DescribeInstances", page_as_aws, unique_id=f"opsflow-benchmark-pages-{id(self)}"
        )

    def take(self) -> Taken:
        """What was counted since the last take."""
        with self._mutex:
            taken = Taken(self._calls, self._invocations, self._pages_added)
            self._calls, self._invocations, self._pages_added = Counter(), Counter(), Counter()
        return taken

    def invocation_caller(self) -> tuple[str, str]:
        return getattr(self._current, "caller", ("outside any Lambda", ""))

    @contextmanager
    def in_invocation(self, caller: tuple[str, str]) -> Iterator[None]:
        previous = self.invocation_caller()
        self._current.caller = caller
        with self._mutex:
            self._invocations[caller] += 1
        try:
            yield
        finally:
            self._current.caller = previous

    def _table_kind(self, params: dict[str, Any]) -> str:
        name = params.get("TableName")
        if name is None and params.get("TransactItems"):
            name = next(iter(params["TransactItems"][0].values()))["TableName"]
        return self._table_kinds.get(name, str(name)) if name else ""


@contextmanager
def counting_opsflow(aws: EmbeddedAws, log: CallLog) -> Iterator[None]:
    """Count the calls of every client Opsflow's factory creates, attributed to the Lambda invocation (and
    the step) they are made in. Clients are cached per service for the whole process, shared by every
    function, so the invocation, not the client, tells who called."""
    steps_function = aws.resource_name("EnvPowerStepsFunction")
    api_function = aws.resource_name("ApiFunction")
    original_factory = clients._cached_client
    original_invoke = aws.lambdas.invoke

    class CountingFactory:
        def __call__(self, service: str, region: str) -> Any:
            client = original_factory(service, region)
            log.watch(client, log.invocation_caller)
            return client

        def cache_clear(self) -> None:
            original_factory.cache_clear()

    def invoke(name: str, event: Any) -> Any:
        if name == steps_function:
            caller = (STEPS, str(event.get("step", "")))
        elif name == api_function and event.get("httpMethod") == "POST":
            caller = (PREFLIGHT, "POST /runs")
        elif name == api_function:
            caller = ("GET /runs", "")
        else:
            caller = (name, "")
        with log.in_invocation(caller):
            return original_invoke(name, event)

    with (
        mock.patch.object(clients, "_cached_client", CountingFactory()),
        mock.patch.object(aws.lambdas, "invoke", invoke),
    ):
        yield


def category(call: Call) -> str:
    if call.service == "dynamodb":
        if call.table in ("capacity", "naive state"):
            return SAVE_WRITES if call.operation in SAVE_WRITE_OPERATIONS else SAVE_READS
        return BOOKKEEPING
    if call.service in ("ec2", "autoscaling", "ecs", "rds"):
        return DISCOVERY if call.operation.startswith(("Describe", "List")) else ACTIONS
    return BOOKKEEPING


def by_caller(calls: Counter[Call]) -> Counter[str]:
    callers: Counter[str] = Counter()
    for call, n in calls.items():
        callers[call.caller] += n
    return callers


def by_row(calls: Counter[Call]) -> Counter[tuple[str, str]]:
    rows: Counter[tuple[str, str]] = Counter()
    for call, n in calls.items():
        rows[(category(call), call.name)] += n
    return rows


# Seeding, settling, checking: the benchmark's own calls, not counted --------------------------------


def snapshot(aws: EmbeddedAws, env: seed.LargeEnvironment) -> dict[str, Any]:
    """Every resource of the environment as it is now."""
    state: dict[str, Any] = {}
    wanted = set(env.instances)
    # Instance status rather than DescribeInstances: moto reads every tag of the account for each instance it
    # describes, which at this size takes half a minute.
    statuses = aws.client("ec2").get_paginator("describe_instance_status")
    for page in statuses.paginate(IncludeAllInstances=True):
        for status in page["InstanceStatuses"]:
            if status["InstanceId"] in wanted:
                state[f"instance {status['InstanceId']}"] = status["InstanceState"]["Name"]
    groups = aws.client("autoscaling").get_paginator("describe_auto_scaling_groups")
    for page in groups.paginate(AutoScalingGroupNames=env.groups):
        for group in page["AutoScalingGroups"]:
            state[f"group {group['AutoScalingGroupName']}"] = (
                group["MinSize"],
                group["DesiredCapacity"],
                group["MaxSize"],
            )
    ecs = aws.client("ecs")
    for cluster in env.clusters:
        names = [name for c, name in env.services if c == cluster]
        for start in range(0, len(names), ECS_DESCRIBE_BATCH):
            batch = names[start : start + ECS_DESCRIBE_BATCH]
            for service in ecs.describe_services(cluster=cluster, services=batch)["services"]:
                state[f"service {service['serviceName']}"] = service["desiredCount"]
    rds = aws.client("rds")
    for page in rds.get_paginator("describe_db_instances").paginate():
        for db in page["DBInstances"]:
            state[f"db {db['DBInstanceIdentifier']}"] = db["DBInstanceStatus"]
    for page in rds.get_paginator("describe_db_clusters").paginate():
        for cluster in page["DBClusters"]:
            state[f"cluster {cluster['DBClusterIdentifier']}"] = cluster["Status"]
    return state


def settled(aws: EmbeddedAws, env: seed.LargeEnvironment, timeout: float = 600) -> dict[str, Any]:
    """The environment once every stop and start under way has finished."""
    deadline = time.monotonic() + timeout
    while True:
        state = snapshot(aws, env)
        if not any(value in MOVING for value in state.values()) or time.monotonic() > deadline:
            return state
        time.sleep(0.1)


def without_group_maximum(state: dict[str, Any]) -> dict[str, Any]:
    """Groups by minimum and desired capacity only: what a stop does to a maximum is the workflow's choice."""
    return {key: value[:2] if key.startswith("group ") else value for key, value in state.items()}


def stopped_form(day: dict[str, Any]) -> dict[str, Any]:
    """What a stop of `day` should leave: instances and databases stopped, groups and services at 0."""
    night: dict[str, Any] = {}
    for key in day:
        if key.startswith("group "):
            night[key] = (0, 0)
        elif key.startswith("service "):
            night[key] = 0
        else:
            night[key] = "stopped"
    return night


def differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    return [key for key in expected if actual.get(key) != expected[key]]


# Opsflow: one run through the API -----------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    calls: Counter[Call]
    wall: float
    transitions: int = 0
    steps_run: Counter[str] = field(default_factory=Counter)
    excluded: int = 0
    pages_added: int = 0
    # Calls by Opsflow's code between the previous measurement and this one, by caller.
    before: Counter[str] = field(default_factory=Counter)


class RunFailed(Exception):
    pass


def run_opsflow(aws: EmbeddedAws, log: CallLog, action: str) -> Measured:
    before = by_caller(log.take().calls)
    began = time.monotonic()
    try:
        # The embedded API answers an unhandled error with API Gateway's bare 502; this surfaces its cause.
        with mock.patch.dict(os.environ, {"OPSFLOW_LOCAL_DEBUG": "1"}):
            response = aws.api.post(
                "/runs",
                json={"workflow": "env_power", "environment": "bench", "action": action},
                headers={"Idempotency-Key": f"bench-{action}-{time.monotonic_ns()}"},
            )
    except Exception as error:
        raise RunFailed(
            f"POST /runs ({action}) failed after {time.monotonic() - began:.1f} s: {error}"
        ) from error
    if response.status_code != 202:
        raise RunFailed(f"POST /runs ({action}) answered {response.status_code}: {response.text[:2000]}")
    run = aws.wait_for_run(response.json()["run_id"], timeout=3600)
    wall = time.monotonic() - began
    taken = log.take()
    if run["status"] != "SUCCEEDED":
        raise RunFailed(f"the {action} run ended {run['status']}: {str(run['output'])[:2000]}")
    events = execution_history(aws, run["execution_arn"])
    counted = Counter({call: n for call, n in taken.calls.items() if call.caller in (STEPS, PREFLIGHT)})
    return Measured(
        calls=counted,
        wall=wall,
        transitions=sum(1 for e in events if e["type"].endswith("StateEntered")),
        steps_run=Counter({step: n for (who, step), n in taken.invocations.items() if who == STEPS}),
        excluded=taken.calls.total() - counted.total(),
        pages_added=taken.pages_added[STEPS] + taken.pages_added[PREFLIGHT],
        before=before,
    )


def execution_history(aws: EmbeddedAws, execution_arn: str) -> list[dict[str, Any]]:
    pages = aws.client("stepfunctions").get_paginator("get_execution_history")
    return [e for page in pages.paginate(executionArn=execution_arn) for e in page["events"]]


# The naive script: what a per-resource scheduler does ------------------------------------------------


class NaiveScript:
    """Works through a hand-kept inventory one resource at a time, as a per-resource scheduler does: reads
    each resource, saves its state with one DynamoDB write, changes it with its own call; start-up reads each
    save and restores it, databases first and waited for one by one, as boto3's waiters would."""

    def __init__(self, aws: EmbeddedAws, env: seed.LargeEnvironment, table: str, log: CallLog) -> None:
        session = boto3.session.Session(region_name=aws.region)
        config = Config(retries={"mode": "standard"})
        self.ec2 = session.client("ec2", config=config)
        self.autoscaling = session.client("autoscaling", config=config)
        self.ecs = session.client("ecs", config=config)
        self.rds = session.client("rds", config=config)
        self.ddb = session.client("dynamodb", config=config)
        for client in (self.ec2, self.autoscaling, self.ecs, self.rds, self.ddb):
            log.watch(client, lambda: (NAIVE, ""))
        self.env = env
        self.table = table
        self.time_scale = aws.time_scale

    def _save(self, resource: str, **values: str) -> None:
        item = {"resource": {"S": resource}, **{k: {"S": v} for k, v in values.items()}}
        self.ddb.put_item(TableName=self.table, Item=item)

    def _saved(self, resource: str) -> dict[str, str]:
        item = self.ddb.get_item(TableName=self.table, Key={"resource": {"S": resource}})["Item"]
        return {k: v["S"] for k, v in item.items()}

    def stop(self) -> None:
        for cluster, name in self.env.services:
            service = self.ecs.describe_services(cluster=cluster, services=[name])["services"][0]
            self._save(f"service {name}", desired=str(service["desiredCount"]))
            self.ecs.update_service(cluster=cluster, service=name, desiredCount=0)
        for name in self.env.groups:
            group = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
                "AutoScalingGroups"
            ][0]
            sizes = f"{group['MinSize']},{group['DesiredCapacity']},{group['MaxSize']}"
            self._save(f"group {name}", sizes=sizes)
            self.autoscaling.update_auto_scaling_group(
                AutoScalingGroupName=name, MinSize=0, DesiredCapacity=0, MaxSize=0
            )
        for instance_id in self.env.instances:
            reservations = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
            state = reservations[0]["Instances"][0]["State"]["Name"]
            self._save(f"instance {instance_id}", state=state)
            if state == "running":
                self.ec2.stop_instances(InstanceIds=[instance_id])
        for key in self.env.databases:
            status = self._database_status(key)
            self._save(f"database {key}", status=status)
            if status == "available":
                kind, identifier = key.split(":", 1)
                if kind == "cluster":
                    self.rds.stop_db_cluster(DBClusterIdentifier=identifier)
                else:
                    self.rds.stop_db_instance(DBInstanceIdentifier=identifier)

    def start(self) -> None:
        started = []
        for key in self.env.databases:
            if self._saved(f"database {key}")["status"] == "available":
                kind, identifier = key.split(":", 1)
                if kind == "cluster":
                    self.rds.start_db_cluster(DBClusterIdentifier=identifier)
                else:
                    self.rds.start_db_instance(DBInstanceIdentifier=identifier)
                started.append(key)
        for key in started:
            while self._database_status(key) != "available":
                time.sleep(DATABASE_POLL_SECONDS * self.time_scale)
        for instance_id in self.env.instances:
            if self._saved(f"instance {instance_id}")["state"] == "running":
                self.ec2.start_instances(InstanceIds=[instance_id])
        for name in self.env.groups:
            low, desired, high = (int(n) for n in self._saved(f"group {name}")["sizes"].split(","))
            self.autoscaling.update_auto_scaling_group(
                AutoScalingGroupName=name, MinSize=low, DesiredCapacity=desired, MaxSize=high
            )
        for cluster, name in self.env.services:
            desired = int(self._saved(f"service {name}")["desired"])
            self.ecs.update_service(cluster=cluster, service=name, desiredCount=desired)

    def _database_status(self, key: str) -> str:
        kind, identifier = key.split(":", 1)
        if kind == "cluster":
            return str(
                self.rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]["Status"]
            )
        found = self.rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
        return str(found["DBInstanceStatus"])


def run_naive(log: CallLog, act: Callable[[], None]) -> Measured:
    log.take()
    began = time.monotonic()
    act()
    wall = time.monotonic() - began
    taken = log.take()
    counted = Counter({call: n for call, n in taken.calls.items() if call.caller == NAIVE})
    return Measured(
        calls=counted,
        wall=wall,
        excluded=taken.calls.total() - counted.total(),
        pages_added=taken.pages_added[NAIVE],
    )


# The floor: the fewest calls AWS allows for the same work --------------------------------------------


def floor(env: seed.LargeEnvironment) -> dict[str, Counter[tuple[str, str]]]:
    per_cluster = Counter(cluster for cluster, _ in env.services)
    db_instances = sum(1 for d in env.databases if d.startswith("instance:"))
    db_clusters = len(env.databases) - db_instances

    def pages(items: int, size: int) -> int:
        return max(1, math.ceil(items / size))

    # Tag filters return each group's instance too (tags propagate): they are read and set aside.
    discovery = {
        "ec2 DescribeInstances": pages(len(env.instances) + len(env.groups), INSTANCE_PAGE),
        "autoscaling DescribeAutoScalingGroups": pages(len(env.groups), GROUP_PAGE),
        "ecs ListClusters": pages(len(env.clusters), ECS_LIST_PAGE),
        "ecs ListServices": sum(pages(n, ECS_LIST_PAGE) for n in per_cluster.values()),
        "ecs DescribeServices": sum(pages(n, ECS_DESCRIBE_BATCH) for n in per_cluster.values()),
        # DescribeDBInstances cannot filter by tag: it reads Aurora members too.
        "rds DescribeDBInstances": pages(db_instances + env.aurora_members, RDS_PAGE),
        "rds DescribeDBClusters": pages(db_clusters, RDS_PAGE),
    }
    stop: Counter[tuple[str, str]] = Counter({(DISCOVERY, name): n for name, n in discovery.items()})
    start: Counter[tuple[str, str]] = Counter()
    # One status read that finds every started database available.
    for name in ("rds DescribeDBInstances", "rds DescribeDBClusters"):
        start[(DISCOVERY, name)] = discovery[name]
    # The save fits one transaction (or one 400 KB item); start-up reads it with one Query.
    stop[(SAVE_WRITES, "dynamodb TransactWriteItems (capacity)")] = 1
    start[(SAVE_READS, "dynamodb Query (capacity)")] = 1
    start[(SAVE_WRITES, "dynamodb UpdateItem (capacity)")] = 1
    for verb, counter in (("Stop", stop), ("Start", start)):
        counter[(ACTIONS, f"ec2 {verb}Instances")] = math.ceil(len(env.instances) / INSTANCE_ACTION_BATCH)
        counter[(ACTIONS, "autoscaling UpdateAutoScalingGroup")] = len(env.groups)
        counter[(ACTIONS, "ecs UpdateService")] = len(env.services)
        counter[(ACTIONS, f"rds {verb}DBInstance")] = db_instances
        counter[(ACTIONS, f"rds {verb}DBCluster")] = db_clusters
    return {"stop": stop, "start": start}


# Report ------------------------------------------------------------------------------------------------


def figure(n: int | None) -> str:
    return f"{n:,}" if n else "-"


def ratio(a: float, b: float) -> str:
    if not b:
        return "-"
    return f"{a / b:,.2f}x" if a / b < 10 else f"{a / b:,.1f}x"


LABEL = 48
ACTIONS_RUN = ("stop", "start")


def columns(cells: list[tuple[str, str, str]]) -> str:
    return "".join(f"   {f:>6} {o:>8} {n:>8}" for f, o, n in cells)


def line(label: str, cells: list[tuple[int, int, int]]) -> None:
    print(f"{label:<{LABEL}}" + columns([(figure(f), figure(o), figure(n)) for f, o, n in cells]))


def only(measured: Measured, caller: str) -> Counter[Call]:
    return Counter({call: n for call, n in measured.calls.items() if call.caller == caller})


def report(
    args: argparse.Namespace,
    env: seed.LargeEnvironment,
    opsflow: dict[str, Measured],
    naive: dict[str, Measured],
    checks: list[str],
) -> None:
    floors = floor(env)
    steps = {a: by_row(only(opsflow[a], STEPS)) for a in ACTIONS_RUN}
    preflight = {a: by_row(only(opsflow[a], PREFLIGHT)) for a in ACTIONS_RUN}
    scripted = {a: by_row(naive[a].calls) for a in ACTIONS_RUN}
    print()
    print(f"{'':<{LABEL}}" + "".join(f"   {' ' + a + ' ':-^24}" for a in ACTIONS_RUN))
    print(f"{'AWS API calls':<{LABEL}}" + columns([("floor", "Opsflow", "naive")] * len(ACTIONS_RUN)))
    for name in CATEGORIES:
        rows = sorted({row for a in ACTIONS_RUN for t in (floors[a], steps[a], scripted[a]) for row in t})
        rows = [row for row in rows if row[0] == name]
        if rows:
            print(name)
        for row in rows:
            line(f"  {row[1]}", [(floors[a][row], steps[a][row], scripted[a][row]) for a in ACTIONS_RUN])
    total = {
        a: (sum(floors[a].values()), sum(steps[a].values()), sum(scripted[a].values())) for a in ACTIONS_RUN
    }
    line("total, state machine steps", [total[a] for a in ACTIONS_RUN])
    print("POST /runs (API function: pre-flight, run record, lock, StartExecution)")
    for row in sorted(
        {row for a in ACTIONS_RUN for row in preflight[a]}, key=lambda r: (CATEGORIES.index(r[0]), r[1])
    ):
        line(f"  {row[1]}", [(0, preflight[a][row], 0) for a in ACTIONS_RUN])
    whole = {a: total[a][1] + sum(preflight[a].values()) for a in ACTIONS_RUN}
    line("total, Opsflow with POST /runs", [(total[a][0], whole[a], total[a][2]) for a in ACTIONS_RUN])
    print(
        f"{'naive / Opsflow':<{LABEL}}"
        + columns([("", "", ratio(total[a][2], whole[a])) for a in ACTIONS_RUN])
    )
    print(
        f"{'Opsflow / floor':<{LABEL}}"
        + columns([("", ratio(whole[a], total[a][0]), "") for a in ACTIONS_RUN])
    )
    print(
        f"{'wall time, s (embedded runtime)':<{LABEL}}"
        + columns([("", f"{opsflow[a].wall:.1f}", f"{naive[a].wall:.1f}") for a in ACTIONS_RUN])
    )
    print()
    for a in ACTIONS_RUN:
        by_step: Counter[str] = Counter()
        for call, n in only(opsflow[a], STEPS).items():
            by_step[call.step] += n
        print(
            f"Opsflow {a}, calls by step: "
            + ", ".join(
                f"{step} {n}"
                + (f" ({opsflow[a].steps_run[step]} runs)" if opsflow[a].steps_run[step] > 1 else "")
                for step, n in by_step.items()
            )
            + ". "
            f"Step Functions: {opsflow[a].transitions} state transitions and "
            f"{opsflow[a].steps_run.total()} Lambda invokes, its own work rather than calls by Opsflow code."
        )
    checks_run = opsflow["start"].steps_run["databases_ready"]
    check_calls = only(opsflow["start"], STEPS)
    per_check = sum(n for c, n in check_calls.items() if c.step == "databases_ready") / max(1, checks_run)
    check_bookkeeping = sum(
        n for c, n in check_calls.items() if c.step == "databases_ready" and category(c) == BOOKKEEPING
    ) / max(1, checks_run)
    print(
        f"Start-up waits for its databases: an RDS start takes {args.rds_start_seconds:.0f} s of AWS time "
        f"here; Opsflow looks when their RDS events come (or after each reconcile interval without one): "
        f"{checks_run} checks of {per_check:.0f} calls each ({check_bookkeeping:.0f} of them bookkeeping), "
        "however long RDS takes."
    )
    idle = opsflow["start"].before
    by_opsflow = idle[STEPS] + idle[PREFLIGHT]
    notifications = idle.total() - by_opsflow
    print(
        f"Between the stop and the start: {by_opsflow} calls by the steps and the API (nothing polls)"
        + (f", {notifications} by notifications of the stop." if notifications else ".")
    )
    added = sum(m.pages_added for m in opsflow.values())
    if added:
        print(
            f"DescribeInstances is counted in pages of {INSTANCE_PAGE:,} instances, as AWS answers: moto "
            f"answers a whole RunInstances batch in one page, so {added} of Opsflow's calls above are pages "
            "moto did not need."
        )
    excluded = sum(m.excluded for m in opsflow.values())
    print(
        f"Not counted: {excluded} calls by notifications and GET /runs during the runs, and the benchmark's "
        "own (seeding, waiting, checking)."
    )
    print("End state: " + "; ".join(checks) + ".")
    print(
        f"Wall times are the embedded runtime's (moto in-process, AWS waits x{args.time_scale}), not AWS's."
    )
    print(
        f"Floor: batches as AWS documents them: DescribeInstances {INSTANCE_PAGE:,} per page, "
        f"Stop/StartInstances {INSTANCE_ACTION_BATCH:,} ids per call (no documented maximum; "
        f"TerminateInstances' is {INSTANCE_ACTION_BATCH:,}), DescribeAutoScalingGroups {GROUP_PAGE}, "
        f"ListServices {ECS_LIST_PAGE}, DescribeServices {ECS_DESCRIBE_BATCH}, DescribeDB* {RDS_PAGE}; "
        "UpdateAutoScalingGroup, UpdateService and Stop/StartDB* take one resource each; the save is one "
        "transaction, read back with one Query; no run record, no lock."
    )
    verdict = "met" if all(whole[a] <= TARGET for a in ACTIONS_RUN) else "missed"
    print()
    print(
        f"Verdict: target of at most {TARGET} AWS calls per stop or start {verdict}: stop "
        f"{whole['stop']:,}, start {whole['start']:,} with POST /runs ({total['stop'][1]:,} and "
        f"{total['start'][1]:,} without), against {total['stop'][2]:,} and {total['start'][2]:,} for the "
        "naive script."
    )


def progress(message: str, began: float) -> None:
    print(f"[{time.monotonic() - began:6.1f} s] {message}", file=sys.stderr, flush=True)


def checked(label: str, expected: dict[str, Any], actual: dict[str, Any]) -> str:
    wrong = differences(expected, actual)
    return f"{label}: {'as expected' if not wrong else f'{len(wrong)} resources differ, e.g. {wrong[:3]}'}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=5000)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--databases", type=int, default=50)
    parser.add_argument("--clusters", type=int, default=4, help="ECS clusters the services are spread over")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=0.1,
        help="embedded seconds per AWS second; much smaller and each step's own time shortens the database "
        "checks' 30 s interval, so a start-up checks fewer times than on AWS",
    )
    args = parser.parse_args()
    began = time.monotonic()
    with EmbeddedAws(time_scale=args.time_scale) as aws:
        args.rds_start_seconds = aws.emulation.rds.start_seconds
        progress("seeding", began)
        seeding_began = time.monotonic()
        env = seed.large_environment(
            aws,
            seed.network(aws),
            "bench",
            instances=args.instances,
            groups=args.groups,
            services=args.services,
            databases=args.databases,
            clusters=args.clusters,
        )
        naive_table = "naive-scheduler-state"
        aws.client("dynamodb").create_table(
            TableName=naive_table,
            KeySchema=[{"AttributeName": "resource", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "resource", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        day = settled(aws, env)
        seeding = time.monotonic() - seeding_began
        db_instances = sum(1 for d in env.databases if d.startswith("instance:"))
        print(
            f"Environment 'bench' on the embedded runtime: {len(env.instances):,} instances, "
            f"{len(env.groups)} Auto Scaling groups (one instance each, so moto does not launch thousands "
            f"more), {len(env.services)} ECS services in {len(env.clusters)} clusters, {len(env.databases)} "
            f"databases ({db_instances} RDS instances, {len(env.databases) - db_instances} Aurora clusters "
            f"with {env.aurora_members} members). Seeded in {seeding:.1f} s, not counted."
        )
        log = CallLog(
            {
                aws.resource_name("CapacityTable"): "capacity",
                aws.resource_name("RunsTable"): "runs",
                aws.resource_name("LocksTable"): "locks",
                naive_table: "naive state",
            }
        )
        opsflow: dict[str, Measured] = {}
        naive: dict[str, Measured] = {}
        checks: list[str] = []
        try:
            with counting_opsflow(aws, log):
                progress("Opsflow stop", began)
                opsflow["stop"] = run_opsflow(aws, log, "stop")
                night = without_group_maximum(settled(aws, env))
                checks.append(checked("Opsflow's stop", stopped_form(day), night))
                progress("Opsflow start", began)
                opsflow["start"] = run_opsflow(aws, log, "start")
                checks.append(checked("its start", day, settled(aws, env)))
                script = NaiveScript(aws, env, naive_table, log)
                progress("naive stop", began)
                naive["stop"] = run_naive(log, script.stop)
                checks.append(checked("the naive stop", night, without_group_maximum(settled(aws, env))))
                progress("naive start", began)
                naive["start"] = run_naive(log, script.start)
                checks.append(checked("the naive start", day, settled(aws, env)))
        except RunFailed as failure:
            print(f"\nOpsflow could not be measured: {failure}")
            print("Verdict: no figures.")
            return 1
        progress("done", began)
        report(args, env, opsflow, naive, checks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
