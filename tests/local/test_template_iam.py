"""The template's policies read against the Service Authorization Reference: every action exists, and
every condition key is one that a request for that action carries. A key the action never carries
makes a positive condition fail on every call, so a typo would deny silently on AWS."""

from __future__ import annotations

from typing import Any

import pytest

from opsflow_local.iam import reference, translate
from opsflow_local.runtime import DEFAULT_TEMPLATE
from opsflow_local.template import Template

ROLES = translate(Template.load(DEFAULT_TEMPLATE, "us-east-1")).roles


def statements() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for role in ROLES.values():
        for document in role.policies:
            statements = document["Statement"]
            for statement in [statements] if isinstance(statements, dict) else statements:
                found.append((f"{role.logical_id}/{statement.get('Sid', '?')}", statement))
    return found


def actions_of(statement: dict[str, Any]) -> list[reference.Action]:
    names = statement.get("Action", [])
    return [reference.action(*name.split(":", 1)) for name in ([names] if isinstance(names, str) else names)]


@pytest.mark.parametrize(("where", "statement"), statements(), ids=[w for w, _ in statements()])
def test_every_action_exists_and_every_condition_key_is_carried(
    where: str, statement: dict[str, Any]
) -> None:
    actions = actions_of(statement)  # raises UnknownAction for a name the reference lacks
    keys = {key for operator in (statement.get("Condition") or {}).values() for key in operator}
    for action in actions:
        for key in keys:
            carried = action.supports_key("", key) or any(
                action.supports_key(kind, key) for kind in action.resource_types
            )
            assert carried, f"{where}: {action.full_name} carries no condition key {key}"


def test_no_statement_grants_every_action() -> None:
    for where, statement in statements():
        names = statement.get("Action", [])
        assert "*" not in names, where
