"""AWS's identity-policy evaluation for one account: explicit Deny wins, then Allow, else implicit deny.

Follows the IAM User Guide: "Policy evaluation logic", "IAM JSON policy elements: Action / NotAction /
Resource / NotResource / Condition" and "Condition operators". What it does not model (resource-based
policies, SCPs, RCPs, permission boundaries, session policies) is listed in the README.
"""

from __future__ import annotations

import enum
import fnmatch
import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ContextValue = str | bool | list[str] | None


class Decision(enum.Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


class Context:
    """The request context: condition keys, case-insensitive as AWS compares them, each value computed
    only when a policy asks for it (a resource's tags cost a lookup)."""

    def __init__(
        self,
        values: Mapping[str, ContextValue] | None = None,
        lookup: Callable[[str], ContextValue] | None = None,
    ) -> None:
        self._values = {key.lower(): value for key, value in (values or {}).items()}
        self._lookup = lookup

    def get(self, key: str) -> ContextValue:
        """The key's value, or None when the request does not carry it."""
        lowered = key.lower()
        if lowered in self._values:
            return self._values[lowered]
        if self._lookup is None:
            return None
        value = self._lookup(key)
        self._values[lowered] = value
        return value


@dataclass(frozen=True)
class Request:
    action: str  # "ec2:CreateImage"
    resource: str  # an ARN, or "*" for an action without resource types
    context: Context


def evaluate(policies: Iterable[Mapping[str, Any]], request: Request) -> Decision:
    allowed = False
    for policy in policies:
        for statement in _statements(policy):
            if not _applies(statement, request):
                continue
            if statement["Effect"] == "Deny":
                return Decision.EXPLICIT_DENY
            allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def _statements(policy: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    statements = policy.get("Statement", [])
    return [statements] if isinstance(statements, Mapping) else list(statements)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _applies(statement: Mapping[str, Any], request: Request) -> bool:
    return (
        _element_holds(statement, "Action", action_matches, request.action)
        and _element_holds(statement, "Resource", resource_matches, request.resource)
        and conditions_hold(statement.get("Condition") or {}, request.context)
    )


def _element_holds(
    statement: Mapping[str, Any], element: str, matches: Callable[[str, str], bool], value: str
) -> bool:
    """`Action` (or `Resource`) holds when one of its patterns matches; `NotAction` when none does."""
    if element in statement:
        return any(matches(pattern, value) for pattern in _as_list(statement[element]))
    if f"Not{element}" in statement:
        return not any(matches(pattern, value) for pattern in _as_list(statement[f"Not{element}"]))
    raise ValueError(f"statement without {element} or Not{element}: {statement}")


# Matching -----------------------------------------------------------------------------------------


@functools.cache
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # Only * and ? are wildcards in IAM; fnmatch's [...] classes are not, so escape them first.
    escaped = "".join(f"[{c}]" if c in "[]" else c for c in pattern)
    return re.compile(fnmatch.translate(escaped), re.IGNORECASE if ignore_case else 0)


def action_matches(pattern: str, action: str) -> bool:
    """Actions compare case-insensitively; * and ? are wildcards."""
    return bool(_wildcard(pattern, True).match(action))


def resource_matches(pattern: str, resource: str) -> bool:
    """ARNs compare case-sensitively. A request for a resource not yet named ("*", as AWS authorizes
    actions without resource types) is matched only by a pattern of "*"."""
    if "${" in pattern:
        raise ValueError(f"policy variables are not evaluated here: {pattern}")
    if resource == "*":
        return pattern == "*"
    return bool(_wildcard(pattern, False).match(resource))


# Conditions ---------------------------------------------------------------------------------------

_NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike"}


def _string_equals(policy: str, value: str) -> bool:
    return policy == value


def _string_equals_ignore_case(policy: str, value: str) -> bool:
    return policy.lower() == value.lower()


def _string_like(policy: str, value: str) -> bool:
    return bool(_wildcard(policy, False).match(value))


def _arn_like(policy: str, value: str) -> bool:
    # ArnLike compares each of the six colon-delimited parts; a wildcard does not cross a part boundary
    # before the resource part (IAM User Guide, "Amazon Resource Name (ARN) condition operators").
    policy_parts, value_parts = policy.split(":", 5), value.split(":", 5)
    if len(policy_parts) != 6 or len(value_parts) != 6:
        return False
    return all(_string_like(p, v) for p, v in zip(policy_parts, value_parts, strict=True))


def _bool(policy: str, value: str) -> bool:
    return str(policy).lower() == str(value).lower()


_MATCHERS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": _string_equals,
    "StringNotEquals": _string_equals,
    "StringEqualsIgnoreCase": _string_equals_ignore_case,
    "StringNotEqualsIgnoreCase": _string_equals_ignore_case,
    "StringLike": _string_like,
    "StringNotLike": _string_like,
    "ArnEquals": _arn_like,
    "ArnLike": _arn_like,
    "ArnNotEquals": _arn_like,
    "ArnNotLike": _arn_like,
    "Bool": _bool,
}


def conditions_hold(conditions: Mapping[str, Mapping[str, Any]], context: Context) -> bool:
    """Every operator, and every key under it, must hold; any one of a key's values may match."""
    return all(
        _condition_holds(operator, key, [str(v) for v in _as_list(values)], context)
        for operator, keys in conditions.items()
        for key, values in keys.items()
    )


def _condition_holds(operator: str, key: str, policy_values: Sequence[str], context: Context) -> bool:
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    value = context.get(key)
    if base == "Null":
        # "Null": "true" holds when the key is absent from the request.
        absent = value is None or value == []
        return any(_bool(policy, "true" if absent else "false") for policy in policy_values)
    if base not in _MATCHERS:
        raise ValueError(f"condition operator {operator} is not evaluated here")
    matcher, negated = _MATCHERS[base], base in _NEGATED
    if value is None or value == []:
        if qualifier == "ForAllValues":
            return True
        if qualifier == "ForAnyValue":
            return False
        # A missing key matches nothing: a positive operator fails, a negated one holds.
        return if_exists or negated
    values = [str(v).lower() if isinstance(v, bool) else str(v) for v in _as_list(value)]

    def matches(item: str) -> bool:
        hit = any(matcher(policy, item) for policy in policy_values)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(matches(item) for item in values)
    # ForAnyValue, or a single-valued operator (on a multivalued key it holds when any value matches).
    return any(matches(item) for item in values)


def trusts(trust_policy: Mapping[str, Any], service: str, context: Context) -> bool:
    """Whether a role's trust policy lets `service` (e.g. "lambda.amazonaws.com") assume the role."""
    allowed = False
    for statement in _statements(trust_policy):
        principals = statement.get("Principal") or {}
        named = principals == "*" or service in _as_list(principals.get("Service", []))
        if not named or not any(
            action_matches(p, "sts:AssumeRole") for p in _as_list(statement.get("Action", []))
        ):
            continue
        if not conditions_hold(statement.get("Condition") or {}, context):
            continue
        if statement["Effect"] == "Deny":
            return False
        allowed = True
    return allowed


def _names_principal(principals: Any, role_arn: str, account: str) -> bool:
    """Whether a statement's Principal names an IAM role's session: `*`, the role's ARN, or its account
    (`arn:aws:iam::<account>:root` or the bare id), which delegates to the account's identity policies."""
    if principals == "*":
        return True
    if not isinstance(principals, Mapping):
        return False
    for named in _as_list(principals.get("AWS", [])):
        if named == "*" or named == role_arn or named in (account, f"arn:aws:iam::{account}:root"):
            return True
    return False


def resource_policy(
    policy: Mapping[str, Any], role_arn: str, account: str, action: str, context: Context
) -> Decision:
    """What a resource-based policy (a role's trust policy, an event bus's policy) says to a principal of
    `account` (`role_arn`) that asks for `action` (sts:AssumeRole, events:PutEvents)."""
    allowed = False
    for statement in _statements(policy):
        if not _names_principal(statement.get("Principal"), role_arn, account):
            continue
        if not any(action_matches(p, action) for p in _as_list(statement.get("Action", []))):
            continue
        if not conditions_hold(statement.get("Condition") or {}, context):
            continue
        if statement["Effect"] == "Deny":
            return Decision.EXPLICIT_DENY
        allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def names_role(policy: Mapping[str, Any], role_arn: str) -> bool:
    """Whether an Allow statement of a resource-based policy names the role itself (not only its account)."""
    for statement in _statements(policy):
        principals = statement.get("Principal")
        if (
            statement.get("Effect") == "Allow"
            and isinstance(principals, Mapping)
            and role_arn in _as_list(principals.get("AWS", []))
        ):
            return True
    return False
