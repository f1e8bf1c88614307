"""Each function's configuration, read once from its environment at cold start; tests build them directly."""

from __future__ import annotations

import os
from dataclasses import dataclass

from opsflow.aws import clients
from opsflow.store.accounts import DynamoAccountStore
from opsflow.store.capacity import DynamoCapacityStore
from opsflow.store.environments import DynamoEnvironmentStore
from opsflow.store.remediations import DynamoRemediationStore
from opsflow.store.runs import DynamoRunStore


class ConfigurationError(RuntimeError):
    pass


def required_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set; the template should set it")
    return value


@dataclass(frozen=True)
class OptIn:
    """The tag that marks a resource as one Opsflow may act on."""

    key: str = "opsflow:managed"
    value: str = "true"

    @classmethod
    def from_env(cls) -> OptIn:
        return cls(
            key=os.environ.get("OPT_IN_TAG_KEY", cls.key), value=os.environ.get("OPT_IN_TAG_VALUE", cls.value)
        )

    def allows(self, tags: dict[str, str]) -> bool:
        # Exact, as the IAM conditions (StringEquals) compare it: a guard that said yes where IAM says
        # no would let a run start and then fail half-way.
        return tags.get(self.key) == self.value

    def describe(self) -> str:
        return f"{self.key}={self.value}"


def environment_tag_key() -> str:
    """The tag whose value names a resource's environment (environment power)."""
    return os.environ.get("ENVIRONMENT_TAG_KEY", "opsflow:environment")


@dataclass(frozen=True)
class StarterConfig:
    runs_table: str
    locks_table: str
    capacity_table: str
    state_machines: dict[str, str]
    opt_in: OptIn
    environment_tag_key: str
    lock_ttl_seconds: int
    # Handed to every execution: polling intervals and limits the state machines read.
    execution_settings: dict[str, int]

    @classmethod
    def from_env(cls) -> StarterConfig:
        from opsflow.runs import registry

        prefix = required_env("STATE_MACHINE_ARN_PREFIX")
        return cls(
            runs_table=required_env("RUNS_TABLE"),
            locks_table=required_env("LOCKS_TABLE"),
            capacity_table=required_env("CAPACITY_TABLE"),
            state_machines={
                workflow.name: workflow.state_machine_arn(prefix) for workflow in registry.WORKFLOWS.values()
            },
            opt_in=OptIn.from_env(),
            environment_tag_key=environment_tag_key(),
            lock_ttl_seconds=int(os.environ.get("LOCK_TTL_SECONDS", "21600")),
            execution_settings={
                "image_max_wait_seconds": int(os.environ.get("IMAGE_MAX_WAIT_SECONDS", "7200")),
                "copy_max_wait_seconds": int(os.environ.get("COPY_MAX_WAIT_SECONDS", "21600")),
                "database_max_wait_seconds": int(os.environ.get("DATABASE_MAX_WAIT_SECONDS", "3600")),
                "green_max_wait_seconds": int(os.environ.get("GREEN_MAX_WAIT_SECONDS", "1800")),
                "reconcile_seconds": int(os.environ.get("RECONCILE_SECONDS", "300")),
            },
        )

    def run_store(self) -> DynamoRunStore:
        return DynamoRunStore(clients.client("dynamodb"), self.runs_table)

    def capacity_store(self) -> DynamoCapacityStore:
        return DynamoCapacityStore(clients.client("dynamodb"), self.capacity_table)

    def environment_store(self) -> DynamoEnvironmentStore:
        return DynamoEnvironmentStore(clients.client("dynamodb"), required_env("ENVIRONMENTS_TABLE"))

    def account_store(self) -> DynamoAccountStore:
        return DynamoAccountStore(clients.client("dynamodb"), required_env("ACCOUNTS_TABLE"))

    def remediation_store(self) -> DynamoRemediationStore:
        return DynamoRemediationStore(clients.client("dynamodb"), required_env("REMEDIATIONS_TABLE"))


@dataclass(frozen=True)
class StepsConfig:
    """What every steps Lambda reads from its environment."""

    runs_table: str
    locks_table: str
    event_bus: str
    lock_ttl_seconds: int
    opt_in: OptIn
    environment_tag_key: str
    capacity_table: str
    transient_retry_seconds: int = 300
    waiters_table: str = ""

    @classmethod
    def from_env(cls) -> StepsConfig:
        return cls(
            runs_table=required_env("RUNS_TABLE"),
            locks_table=required_env("LOCKS_TABLE"),
            event_bus=os.environ.get("EVENT_BUS_NAME", "default"),
            lock_ttl_seconds=int(os.environ.get("LOCK_TTL_SECONDS", "21600")),
            opt_in=OptIn.from_env(),
            environment_tag_key=environment_tag_key(),
            capacity_table=required_env("CAPACITY_TABLE"),
            transient_retry_seconds=int(os.environ.get("TRANSIENT_RETRY_SECONDS") or "300"),
            waiters_table=os.environ.get("WAITERS_TABLE", ""),
        )

    def run_store(self) -> DynamoRunStore:
        return DynamoRunStore(clients.client("dynamodb"), self.runs_table)


@dataclass(frozen=True)
class RunEndedConfig:
    runs_table: str
    locks_table: str
    dead_letter_queue_url: str

    @classmethod
    def from_env(cls) -> RunEndedConfig:
        return cls(
            runs_table=required_env("RUNS_TABLE"),
            locks_table=required_env("LOCKS_TABLE"),
            dead_letter_queue_url=required_env("RUN_ENDED_DEAD_LETTER_QUEUE_URL"),
        )
