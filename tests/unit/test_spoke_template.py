"""spoke/template.yaml is generated from the hub's template: each hub function that names a spoke role gets
one there holding exactly its statements about a team's resources, made valid in every region, and trusting
only that function's role in the hub account."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
RESOURCES = {"RunsTable", "AccountsTable", "SchedulerRole", "AmiBakeStateMachine"}
EC2_INSTANCES = {"Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*"}
# The services whose resources in Opsflow's statements are the hub's own parts (its tables, state machines,
# queues, schedules, secrets, event bus, logs and traces, the pipeline jobs it reports) or the assumption
# of the spoke roles themselves.
HUB_OWN_SERVICES = frozenset(
    {
        "dynamodb",
        "states",
        "sqs",
        "scheduler",
        "secretsmanager",
        "events",
        "sts",
        "logs",
        "xray",
        "codepipeline",
        "organizations",  # the hub reads its own organization
        "sns",  # the Chatbot channels' topics
    }
)
# The longest region names AWS has (ap-southeast-1, ap-northeast-1, ...).
LONGEST_REGION = "ap-southeast-1"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("spoke_generate", ROOT / "spoke" / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generator = _load_generator()


@cache
def generated_text() -> str:
    return str(generator.generate())


def generated() -> dict[str, Any]:
    return dict(yaml.safe_load(generated_text()))


@cache
def _hub_text() -> str:
    return json.dumps(cfn_yaml.load(str(ROOT / "template.yaml")))


def hub() -> dict[str, Any]:
    return dict(json.loads(_hub_text()))


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def names_in(value: Any) -> set[str]:
    """The template names a value refers to: Ref, Fn::GetAtt and Fn::Sub's ${Name} or ${Name.Attribute}."""
    if isinstance(value, list):
        return set().union(*(names_in(item) for item in value)) if value else set()
    if not isinstance(value, dict):
        return set()
    if "Ref" in value:
        return {value["Ref"]}
    if "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return {target[0] if isinstance(target, list) else target.split(".")[0]}
    if "Fn::Sub" in value:
        text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
        return {name.split(".")[0] for name in re.findall(r"\$\{(\w+(?:\.\w+)?)\}", text)}
    return set().union(*(names_in(item) for item in value.values())) if value else set()


def about_the_hub(statement: dict[str, Any], resources: set[str]) -> bool:
    services = {action.split(":")[0] for action in actions(statement)}
    # A key used through one of the hub's services (a webhook secret's, through Secrets Manager).
    through_the_hub = any(
        value.startswith(tuple(f"{service}." for service in HUB_OWN_SERVICES))
        for value in strings(statement.get("Condition"))
    )
    return (
        bool(services & HUB_OWN_SERVICES)
        or through_the_hub
        or bool(names_in(statement.get("Resource")) & resources)
    )


def spoke_functions() -> dict[str, str]:
    """Each hub function whose environment names its spoke role, by the role's suffix."""
    found: dict[str, str] = {}
    for logical_id, resource in hub()["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        variables = (resource["Properties"].get("Environment") or {}).get("Variables") or {}
        if "SPOKE_ROLE_NAME" in variables:
            name = variables["SPOKE_ROLE_NAME"]["Fn::Sub"]
            assert name.startswith("${AWS::StackName}-spoke-"), name
            found[name.removeprefix("${AWS::StackName}-spoke-")] = logical_id
    return found


def statements_of(function: dict[str, Any]) -> list[dict[str, Any]]:
    """A function's statements; one under `!If`, as each of its branches that is a statement."""
    found = []
    for policy in function["Properties"].get("Policies") or []:
        if not isinstance(policy, dict):
            continue
        for statement in policy.get("Statement", []):
            branches = statement["Fn::If"][1:] if "Fn::If" in statement else [statement]
            found += [b for b in branches if isinstance(b, dict) and "Action" in b]
    return found


def spoke_roles() -> dict[str, dict[str, Any]]:
    """The spoke roles of the generated template by name (the forwarding role aside)."""
    return {
        resource["Properties"]["RoleName"]["Fn::Sub"]: resource
        for logical_id, resource in generated()["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role" and logical_id != "ForwardToHubRole"
    }


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


# The committed file ----------------------------------------------------------------------------------------


def test_the_committed_spoke_template_is_what_generate_writes() -> None:
    assert (ROOT / "spoke" / "template.yaml").read_text() == generated_text()


# Which statements go to the spoke --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem"], "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": "ec2:DescribeInstances",
            "Resource": {"Fn::GetAtt": ["RunsTable", "Arn"]},
        },
        {"Effect": "Allow", "Action": "ec2:DescribeInstances", "Resource": {"Fn::GetAtt": "RunsTable.Arn"}},
        {
            "Effect": "Allow",
            "Action": "ec2:DescribeInstances",
            "Resource": {"Fn::Sub": "${RunsTable.Arn}/index/*"},
        },
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": [{"Fn::GetAtt": ["SchedulerRole", "Arn"]}]},
        {"Effect": "Allow", "Action": "ec2:DescribeInstances", "Resource": [{"Ref": "AmiBakeStateMachine"}]},
        {"Effect": "Allow", "Action": "states:StartExecution", "Resource": "*"},
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "arn:aws:iam::*:role/opsflow-spoke-api"},
        {"Fn::If": ["HasChatbotTopics", {"Effect": "Allow", "Action": "ec2:DescribeInstances"}, None]},
        {
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"kms:ViaService": {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}}
            },
        },
        {"Effect": "Allow", "Action": "sns:Publish", "Resource": {"Ref": "ChatbotTopicArns"}},
    ],
    ids=[
        "dynamodb",
        "getatt-list",
        "getatt-dotted",
        "sub-of-an-attribute",
        "passrole-of-a-template-role",
        "ref",
        "state-machines",
        "assuming-spoke-roles",
        "under-a-hub-condition",
        "a-key-through-a-hub-service",
        "chatbot-topics",
    ],
)
def test_a_statement_about_the_hubs_own_parts_stays_in_the_hub(statement: dict[str, Any]) -> None:
    assert generator.acts_in_spoke(statement, RESOURCES) is False


@pytest.mark.parametrize(
    "resource",
    [
        EC2_INSTANCES,
        "*",
        [EC2_INSTANCES, {"Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}::image/*"}],
        {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role${PassableRolePath}*"},
    ],
    ids=["instances", "any", "several", "a-parameter"],
)
def test_a_statement_about_a_teams_resources_goes_to_the_spoke(resource: Any) -> None:
    statement = {
        "Effect": "Allow",
        "Action": ["ec2:StartInstances", "ec2:StopInstances"],
        "Resource": resource,
    }

    assert generator.acts_in_spoke(statement, RESOURCES) is True


def test_a_spoke_statement_serves_every_region() -> None:
    statement = {
        "Sid": "StopAndStart",
        "Effect": "Allow",
        "Action": ["ec2:StartInstances"],
        "Resource": [EC2_INSTANCES, {"Fn::Sub": "arn:aws:ec2:${AWS::Region}::image/*"}],
    }

    widened = generator.for_every_region(statement)

    assert widened["Resource"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:ec2:*:${AWS::AccountId}:instance/*"},
        "arn:aws:ec2:*::image/*",  # nothing left to substitute: a plain string
    ]
    assert {key: widened[key] for key in ("Sid", "Effect", "Action")} == {
        "Sid": "StopAndStart",
        "Effect": "Allow",
        "Action": ["ec2:StartInstances"],
    }
    assert statement["Resource"][0] == EC2_INSTANCES  # the hub's statement is left as it was


def test_a_string_equals_condition_whose_value_gains_a_wildcard_becomes_string_like() -> None:
    statement = {
        "Effect": "Allow",
        "Action": "kms:CreateGrant",
        "Resource": {"Fn::Sub": "arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*"},
        "Condition": {
            "Bool": {"kms:GrantIsForAWSResource": "true"},
            "StringEquals": {
                "kms:ViaService": {"Fn::Sub": "ec2.${AWS::Region}.amazonaws.com"},
                "aws:ResourceTag/opsflow:managed": {"Ref": "OptInTagValue"},
            },
            "StringLike": {"kms:EncryptionContext:aws:ebs:id": "vol-*"},
        },
    }

    widened = generator.for_every_region(statement)

    assert widened["Condition"] == {
        "Bool": {"kms:GrantIsForAWSResource": "true"},
        "StringEquals": {"aws:ResourceTag/opsflow:managed": {"Ref": "OptInTagValue"}},
        "StringLike": {"kms:EncryptionContext:aws:ebs:id": "vol-*", "kms:ViaService": "ec2.*.amazonaws.com"},
    }


def test_a_string_equals_condition_left_without_keys_is_dropped() -> None:
    statement = {
        "Effect": "Allow",
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:ViaService": {"Fn::Sub": "ec2.${AWS::Region}.amazonaws.com"}}},
    }

    assert generator.for_every_region(statement)["Condition"] == {
        "StringLike": {"kms:ViaService": "ec2.*.amazonaws.com"}
    }


def test_a_string_equals_condition_without_a_region_stays_string_equals() -> None:
    statement = {
        "Effect": "Allow",
        "Action": "ec2:StopInstances",
        "Resource": EC2_INSTANCES,
        "Condition": {"StringEquals": {"aws:ResourceTag/opsflow:managed": {"Ref": "OptInTagValue"}}},
    }

    assert generator.for_every_region(statement)["Condition"] == statement["Condition"]


# The generated roles against the hub's template --------------------------------------------------------------


def test_every_function_naming_a_spoke_role_has_exactly_one_there() -> None:
    functions = spoke_functions()
    names = [
        resource["Properties"]["RoleName"]["Fn::Sub"]
        for logical_id, resource in generated()["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role" and logical_id != "ForwardToHubRole"
    ]

    assert len(functions) >= 5  # the workflows' steps, the API, the triggers that start runs
    assert sorted(names) == sorted(f"${{HubStackName}}-spoke-{suffix}" for suffix in functions)


def test_each_spoke_role_holds_exactly_its_functions_statements_about_a_teams_resources() -> None:
    template = hub()
    resources = set(template["Resources"])
    roles = spoke_roles()

    for suffix, logical_id in spoke_functions().items():
        hub_statements = statements_of(template["Resources"][logical_id])
        (policy,) = roles[f"${{HubStackName}}-spoke-{suffix}"]["Properties"]["Policies"]
        spoke_statements = policy["PolicyDocument"]["Statement"]

        expected = [s["Sid"] for s in hub_statements if not about_the_hub(s, resources)]
        assert [s["Sid"] for s in spoke_statements] == expected, logical_id
        assert expected, logical_id
        by_sid = {s["Sid"]: s for s in hub_statements}
        for statement in spoke_statements:
            assert statement["Action"] == by_sid[statement["Sid"]]["Action"], (logical_id, statement["Sid"])
            assert statement["Effect"] == by_sid[statement["Sid"]]["Effect"]


def test_the_statements_split_as_their_resources_say() -> None:
    roles = spoke_roles()

    def sids(suffix: str) -> list[str]:
        (policy,) = roles[f"${{HubStackName}}-spoke-{suffix}"]["Properties"]["Policies"]
        return [s["Sid"] for s in policy["PolicyDocument"]["Statement"]]

    # The API reads a team's resources for its pre-flights; passing the scheduler its role is the hub's.
    assert sids("api") == ["PreflightReadsOnly"]
    bake = sids("ami-bake")
    assert {"ImageOnlyOptedInInstances", "PassInstanceRolesToEc2Only", "ResolveImageParameters"} <= set(bake)
    assert not {"RecordRuns", "RenewAndReleaseLocks", "ReportProgress", "ActInSpokeAccounts"} & set(bake)
    assert "StartInstancesWithEncryptedVolumes" in sids("env-power")
    assert "SaveAndRestoreCapacity" not in sids("env-power")
    # The notify function only reads the tags of the instances an AWS Health event names.
    assert sids("notify") == ["ReadInstanceTags"]


def test_no_spoke_role_names_the_hubs_region_or_its_resources() -> None:
    resources = set(hub()["Resources"])

    for name, role in spoke_roles().items():
        policies = role["Properties"]["Policies"]
        assert not any("${AWS::Region}" in text for text in strings(policies)), name
        assert not names_in(policies) & resources, name


def test_a_region_bound_kms_condition_is_made_string_like_in_the_spoke() -> None:
    (policy,) = spoke_roles()["${HubStackName}-spoke-env-power"]["Properties"]["Policies"]
    (statement,) = [
        s for s in policy["PolicyDocument"]["Statement"] if s["Sid"] == "StartInstancesWithEncryptedVolumes"
    ]

    assert statement["Condition"]["StringLike"] == {"kms:ViaService": "ec2.*.amazonaws.com"}
    assert "StringEquals" not in statement["Condition"]


def test_every_spoke_role_trusts_only_its_functions_role_in_the_hub_account() -> None:
    functions = spoke_functions()

    for name, role in spoke_roles().items():
        suffix = name.removeprefix("${HubStackName}-spoke-")
        # The hub gives that function's role a path of its own, which the trust names.
        hub_function = hub()["Resources"][functions[suffix]]
        assert hub_function["Properties"]["RolePath"] == {"Fn::Sub": f"/${{AWS::StackName}}/{suffix}/"}
        (trusted,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        condition_name, with_organization, without = trusted["Fn::If"]
        assert condition_name == "HasOrganization"
        for branch in (with_organization, without):
            assert branch["Effect"] == "Allow"
            assert branch["Principal"] == {
                "AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${HubAccountId}:root"}
            }
            # What Sessions passes: the run as source identity and session tag.
            assert sorted(branch["Action"]) == ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"]
            assert branch["Condition"]["ArnLike"] == {
                "aws:PrincipalArn": {
                    "Fn::Sub": f"arn:${{AWS::Partition}}:iam::${{HubAccountId}}:role/${{HubStackName}}/{suffix}/*"
                }
            }
        assert with_organization["Condition"]["StringEquals"] == {
            "aws:PrincipalOrgID": {"Ref": "OrganizationId"}
        }
        assert set(without["Condition"]) == {"ArnLike"}


def test_every_function_naming_a_spoke_role_may_assume_that_role_and_no_other() -> None:
    template = hub()

    for suffix, logical_id in spoke_functions().items():
        assuming = [
            s
            for s in statements_of(template["Resources"][logical_id])
            if any(action.startswith("sts:") for action in actions(s))
        ]
        assert [s["Resource"] for s in assuming] == [
            {"Fn::Sub": f"arn:${{AWS::Partition}}:iam::*:role/${{AWS::StackName}}-spoke-{suffix}"}
        ], logical_id


def test_every_role_and_rule_name_carries_the_hubs_stack_name() -> None:
    named = [
        resource["Properties"]["RoleName" if resource["Type"] == "AWS::IAM::Role" else "Name"]
        for resource in generated()["Resources"].values()
        if resource["Type"] in {"AWS::IAM::Role", "AWS::Events::Rule"}
    ]

    assert len(named) == len(spoke_functions()) + 2  # the forwarding role and rule
    for name in named:
        assert "${HubStackName}" in name["Fn::Sub"], name


def longest_hub_stack_name() -> str:
    pattern = generated()["Parameters"]["HubStackName"]["AllowedPattern"]
    admitted = [n for n in range(1, 200) if re.fullmatch(pattern, "a" * n)]
    assert admitted
    return "a" * max(admitted)


def test_every_role_name_fits_iam_for_any_hub_stack_name_the_parameter_admits() -> None:
    stack = longest_hub_stack_name()

    for resource in generated()["Resources"].values():
        if resource["Type"] == "AWS::IAM::Role":
            name = resource["Properties"]["RoleName"]["Fn::Sub"]
            resolved = name.replace("${HubStackName}", stack).replace("${AWS::Region}", LONGEST_REGION)
            assert len(resolved) <= 64, resolved


def test_every_spoke_role_name_fits_iam_for_any_hub_stack_name_the_parameter_admits() -> None:
    stack = longest_hub_stack_name()

    for name in spoke_roles():
        assert len(name.replace("${HubStackName}", stack)) <= 64, name
