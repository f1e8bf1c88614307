"""Settings every function shares, read once from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass


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
