"""The identity-policy evaluation, case by case from the IAM User Guide ("Policy evaluation logic",
"IAM JSON policy elements", "Condition operators")."""

from __future__ import annotations

from typing import Any

import pytest

from opsflow_local.iam.policy import Context, Decision, Request, evaluate, names_role, resource_policy, trusts

INSTANCE = "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc"


def allow(**statement: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", **statement}]}


def deny(**statement: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", **statement}]}


def request(action: str = "ec2:StopInstances", resource: str = INSTANCE, **context: Any) -> Request:
    return Request(action, resource, Context(context))


def test_nothing_allowed_is_an_implicit_deny() -> None:
    assert evaluate([], request()) is Decision.IMPLICIT_DENY


def test_an_explicit_deny_wins_over_any_allow() -> None:
    policies = [allow(Action="ec2:*", Resource="*"), deny(Action="ec2:StopInstances", Resource=INSTANCE)]
    assert evaluate(policies, request()) is Decision.EXPLICIT_DENY
    assert evaluate(policies, request("ec2:StartInstances")) is Decision.ALLOW


@pytest.mark.parametrize(
    ("pattern", "action", "matches"),
    [
        ("ec2:StopInstances", "ec2:stopinstances", True),  # actions are case-insensitive
        ("ec2:Stop*", "ec2:StopInstances", True),
        ("ec2:?topInstances", "ec2:StopInstances", True),
        ("ec2:Start*", "ec2:StopInstances", False),
        ("autoscaling:*", "ec2:StopInstances", False),
    ],
)
def test_action_wildcards(pattern: str, action: str, matches: bool) -> None:
    expected = Decision.ALLOW if matches else Decision.IMPLICIT_DENY
    assert evaluate([allow(Action=pattern, Resource="*")], request(action)) is expected


def test_not_action_allows_everything_else() -> None:
    policy = allow(NotAction=["ec2:Terminate*"], Resource="*")
    assert evaluate([policy], request()) is Decision.ALLOW
    assert evaluate([policy], request("ec2:TerminateInstances")) is Decision.IMPLICIT_DENY


def test_resources_are_case_sensitive_and_wildcards_cross_slashes() -> None:
    assert (
        evaluate([allow(Action="ec2:*", Resource="arn:aws:ec2:*:*:instance/*")], request()) is Decision.ALLOW
    )
    assert (
        evaluate([allow(Action="ec2:*", Resource="arn:aws:ec2:*:*:INSTANCE/*")], request())
        is Decision.IMPLICIT_DENY
    )


def test_not_resource() -> None:
    policy = allow(Action="ec2:*", NotResource="arn:aws:ec2:*:*:instance/i-0abc")
    assert evaluate([policy], request()) is Decision.IMPLICIT_DENY
    assert evaluate([policy], request(resource=INSTANCE + "d")) is Decision.ALLOW


def test_an_action_without_resource_types_is_allowed_only_by_a_star() -> None:
    assert evaluate(
        [allow(Action="ec2:Describe*", Resource=INSTANCE)], request("ec2:DescribeInstances", "*")
    ) is (Decision.IMPLICIT_DENY)
    assert evaluate([allow(Action="ec2:Describe*", Resource="*")], request("ec2:DescribeInstances", "*")) is (
        Decision.ALLOW
    )


def managed(value: str = "true") -> dict[str, Any]:
    return allow(
        Action="ec2:StopInstances",
        Resource="*",
        Condition={"StringEquals": {"aws:ResourceTag/opsflow:managed": value}},
    )


def test_string_equals_compares_values_case_sensitively_and_keys_not() -> None:
    assert evaluate([managed()], request(**{"AWS:RESOURCETAG/opsflow:managed": "true"})) is Decision.ALLOW
    assert (
        evaluate([managed()], request(**{"aws:ResourceTag/opsflow:managed": "True"}))
        is Decision.IMPLICIT_DENY
    )


def test_a_missing_key_fails_a_positive_operator_and_holds_for_a_negated_one() -> None:
    assert evaluate([managed()], request()) is Decision.IMPLICIT_DENY
    not_equals = allow(
        Action="ec2:*", Resource="*", Condition={"StringNotEquals": {"aws:ResourceTag/env": "prod"}}
    )
    assert evaluate([not_equals], request()) is Decision.ALLOW
    assert evaluate([not_equals], request(**{"aws:ResourceTag/env": "prod"})) is Decision.IMPLICIT_DENY


def test_if_exists_holds_when_the_key_is_missing() -> None:
    policy = allow(
        Action="ec2:*", Resource="*", Condition={"StringEqualsIfExists": {"aws:ResourceTag/env": "dev"}}
    )
    assert evaluate([policy], request()) is Decision.ALLOW
    assert evaluate([policy], request(**{"aws:ResourceTag/env": "prod"})) is Decision.IMPLICIT_DENY


def test_any_value_of_a_key_may_match_and_every_key_and_operator_must_hold() -> None:
    policy = allow(
        Action="ec2:*",
        Resource="*",
        Condition={
            "StringEquals": {"aws:ResourceTag/env": ["dev", "qa"], "aws:ResourceTag/team": "web"},
            "StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/opsflow-*"},
        },
    )
    good = {
        "aws:ResourceTag/env": "qa",
        "aws:ResourceTag/team": "web",
        "aws:PrincipalArn": "arn:aws:iam::123456789012:role/opsflow-Steps",
    }
    assert evaluate([policy], request(**good)) is Decision.ALLOW
    assert evaluate([policy], request(**{**good, "aws:ResourceTag/team": "db"})) is Decision.IMPLICIT_DENY
    assert evaluate([policy], request(**{**good, "aws:PrincipalArn": "arn:aws:iam::1:role/x"})) is (
        Decision.IMPLICIT_DENY
    )


def test_bool_and_null() -> None:
    launch = allow(
        Action="ec2:RunInstances", Resource="*", Condition={"Bool": {"ec2:IsLaunchTemplateResource": "true"}}
    )
    assert (
        evaluate([launch], request("ec2:RunInstances", **{"ec2:IsLaunchTemplateResource": True}))
        is Decision.ALLOW
    )
    assert evaluate([launch], request("ec2:RunInstances", **{"ec2:IsLaunchTemplateResource": False})) is (
        Decision.IMPLICIT_DENY
    )
    untagged = allow(Action="ec2:*", Resource="*", Condition={"Null": {"aws:RequestTag/owner": "true"}})
    assert evaluate([untagged], request()) is Decision.ALLOW
    assert evaluate([untagged], request(**{"aws:RequestTag/owner": "me"})) is Decision.IMPLICIT_DENY


def test_arn_like_matches_part_by_part() -> None:
    policy = allow(
        Action="ec2:RunInstances",
        Resource="*",
        Condition={"ArnLike": {"ec2:LaunchTemplate": "arn:aws:ec2:us-east-1:123456789012:launch-template/*"}},
    )
    good = "arn:aws:ec2:us-east-1:123456789012:launch-template/lt-1"
    assert evaluate([policy], request("ec2:RunInstances", **{"ec2:LaunchTemplate": good})) is Decision.ALLOW
    other_region = good.replace("us-east-1", "eu-west-1")
    assert evaluate([policy], request("ec2:RunInstances", **{"ec2:LaunchTemplate": other_region})) is (
        Decision.IMPLICIT_DENY
    )


def test_set_operators_on_multivalued_keys() -> None:
    only_known = allow(
        Action="ec2:CreateTags",
        Resource="*",
        Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}},
    )
    assert evaluate([only_known], request("ec2:CreateTags", **{"aws:TagKeys": ["a"]})) is Decision.ALLOW
    assert evaluate([only_known], request("ec2:CreateTags", **{"aws:TagKeys": ["a", "c"]})) is (
        Decision.IMPLICIT_DENY
    )
    assert evaluate([only_known], request("ec2:CreateTags")) is Decision.ALLOW  # an empty set: vacuously true
    any_known = allow(
        Action="ec2:CreateTags", Resource="*", Condition={"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}
    )
    assert evaluate([any_known], request("ec2:CreateTags", **{"aws:TagKeys": ["c", "a"]})) is Decision.ALLOW
    assert evaluate([any_known], request("ec2:CreateTags")) is Decision.IMPLICIT_DENY


def test_an_operator_not_modelled_fails_loudly() -> None:
    policy = allow(
        Action="ec2:*", Resource="*", Condition={"DateGreaterThan": {"aws:CurrentTime": "2020-01-01"}}
    )
    with pytest.raises(ValueError, match="DateGreaterThan"):
        evaluate([policy], request())


def test_context_values_are_looked_up_once_and_only_when_asked() -> None:
    asked: list[str] = []

    def lookup(key: str) -> str:
        asked.append(key)
        return "true"

    context = Context(lookup=lookup)
    assert evaluate([managed(), managed()], Request("ec2:StopInstances", INSTANCE, context)) is Decision.ALLOW
    assert asked == ["aws:ResourceTag/opsflow:managed"]


def test_a_trust_policy_names_the_service_that_may_assume_the_role() -> None:
    trust = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "scheduler.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
            }
        ]
    }
    assert trusts(trust, "scheduler.amazonaws.com", Context({"aws:SourceAccount": "123456789012"}))
    assert not trusts(trust, "scheduler.amazonaws.com", Context({"aws:SourceAccount": "210987654321"}))
    assert not trusts(trust, "lambda.amazonaws.com", Context({"aws:SourceAccount": "123456789012"}))


def test_a_trust_policy_names_a_role_itself_only_by_its_arn_not_by_its_account() -> None:
    role = "arn:aws:iam::111111111111:role/opsflow/api/opsflow-ApiFunctionRole-1"
    by_role = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": role}, "Action": "sts:AssumeRole"}]}
    by_account = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
                "Action": "sts:AssumeRole",
            }
        ]
    }

    assert names_role(by_role, role)
    assert not names_role(by_account, role)
    # Both allow the role's session; naming the account leaves the decision to its identity policy.
    for trust in (by_role, by_account):
        assert resource_policy(trust, role, "111111111111", "sts:AssumeRole", Context()) is Decision.ALLOW
    assert (
        resource_policy(by_account, role, "222222222222", "sts:AssumeRole", Context())
        is Decision.IMPLICIT_DENY
    )
