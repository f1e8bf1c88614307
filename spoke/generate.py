"""Write spoke/template.yaml from template.yaml, so a spoke account's roles cannot drift from the hub's.

Every hub function that acts on a team's resources names its spoke role (`SPOKE_ROLE_NAME`). Its spoke role
gets exactly that function's statements that act on a team's resources; the statements on the hub's own
parts (its tables, state machines, queues, secrets, schedules, event bus, or any resource of the template)
stay in the hub. A spoke role is global but serves every region of its account, so `${AWS::Region}` in a
hub statement becomes `*`; which regions a run may act in is the hub's registration (PUT /accounts/{id}).

The events forwarded to the hub are the ones its rules listen to from AWS services.

    python spoke/generate.py            # rewrite spoke/template.yaml
    python spoke/generate.py --check    # fail if it is out of date
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from opsflow_local.template import load_yaml

ROOT = Path(__file__).resolve().parents[1]
HUB = ROOT / "template.yaml"
SPOKE = ROOT / "spoke" / "template.yaml"

# Services whose resources in Opsflow's statements are the hub's own.
HUB_SERVICES = frozenset(
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
        "organizations",
        "sns",
    }
)
# Parameters of the hub that its spoke-bound statements use, copied with their definitions.
SHARED_PARAMETERS = ("OptInTagValue", "PassableRolePath")
STS_ACTIONS = ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"]


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement.get("Action", [])
    return [action] if isinstance(action, str) else list(action)


def _names_a_hub_resource(value: Any, resources: set[str]) -> bool:
    if isinstance(value, list):
        return any(_names_a_hub_resource(item, resources) for item in value)
    if not isinstance(value, dict):
        return False
    if "Ref" in value:
        return value["Ref"] in resources
    if "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return (target[0] if isinstance(target, list) else target.split(".", 1)[0]) in resources
    if "Fn::Sub" in value:
        text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
        named = {name.split(".", 1)[0] for name in re.findall(r"\$\{([^!}][^}]*)\}", text)}
        return bool(named & resources)
    return any(_names_a_hub_resource(item, resources) for item in value.values())


def acts_in_spoke(statement: dict[str, Any], resources: set[str]) -> bool:
    """A statement about a team's resources, not about the hub's own. One under a condition of the hub's
    (`!If`) is the hub's, and so is a KMS statement for a key used through a hub service (the webhook
    secrets' keys, through Secrets Manager)."""
    if "Fn::If" in statement:
        return False
    services = {action.split(":", 1)[0] for action in _actions(statement)}
    if services & HUB_SERVICES:
        return False
    through = [
        str(value.get("Fn::Sub", "") if isinstance(value, dict) else value)
        for test in (statement.get("Condition") or {}).values()
        for key, value in test.items()
        if key == "kms:ViaService"
    ]
    if any(value.split(".", 1)[0] in HUB_SERVICES for value in through):
        return False
    return not _names_a_hub_resource(statement.get("Resource"), resources)


def _any_region(value: Any) -> Any:
    if isinstance(value, list):
        return [_any_region(item) for item in value]
    if isinstance(value, dict):
        if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
            text = value["Fn::Sub"].replace("${AWS::Region}", "*")
            return {"Fn::Sub": text} if "${" in text else text
        return {key: _any_region(item) for key, item in value.items()}
    return value


def _has_wildcard(value: Any) -> bool:
    if isinstance(value, list):
        return any(_has_wildcard(item) for item in value)
    if isinstance(value, dict):
        return any(_has_wildcard(item) for item in value.values())
    return isinstance(value, str) and "*" in value


def for_every_region(statement: dict[str, Any]) -> dict[str, Any]:
    """The statement with the hub's region made any region; a StringEquals key that now holds a wildcard
    (`kms:ViaService: ec2.*.amazonaws.com`) becomes StringLike, which reads wildcards."""
    statement = _any_region(statement)
    condition = statement.get("Condition") or {}
    equals = condition.get("StringEquals") or {}
    widened = {key: value for key, value in equals.items() if _has_wildcard(value)}
    if widened:
        condition = dict(condition)
        kept = {key: value for key, value in equals.items() if key not in widened}
        if kept:
            condition["StringEquals"] = kept
        else:
            del condition["StringEquals"]
        condition["StringLike"] = {**(condition.get("StringLike") or {}), **widened}
        statement = {**statement, "Condition": condition}
    return statement


def _role_suffix(function: dict[str, Any]) -> str | None:
    variables = ((function.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
    name = variables.get("SPOKE_ROLE_NAME")
    if name is None:
        return None
    text = name["Fn::Sub"] if isinstance(name, dict) else str(name)
    prefix = "${AWS::StackName}-spoke-"
    if not isinstance(text, str) or not text.startswith(prefix):
        raise SystemExit(f'SPOKE_ROLE_NAME must be !Sub "{prefix}<name>", not {text!r}')
    return text[len(prefix) :]


def _camel(suffix: str) -> str:
    return "".join(part.capitalize() for part in suffix.split("-"))


def _forwarded_patterns(hub: dict[str, Any]) -> tuple[list[str], list[Any]]:
    """The AWS sources the hub's rules listen to, and their detail types (None: any)."""
    sources: dict[str, None] = {}
    detail_types: dict[str, Any] = {}
    for resource in hub["Resources"].values():
        for event in ((resource.get("Properties") or {}).get("Events") or {}).values():
            if event.get("Type") != "EventBridgeRule":
                continue
            pattern = event["Properties"]["Pattern"]
            for source in pattern.get("source", []):
                # Opsflow's own events and its state machines' are the hub's; only AWS services' travel.
                if not source.startswith("aws.") or source == "aws.states":
                    continue
                sources[source] = None
                for detail_type in pattern.get("detail-type", []):
                    detail_types[json.dumps(detail_type, sort_keys=True)] = detail_type
    return list(sources), list(detail_types.values())


def generate() -> str:
    hub = load_yaml(HUB)
    resources = set(hub["Resources"])
    parameters: dict[str, Any] = {
        "HubAccountId": {
            "Type": "String",
            "AllowedPattern": "^\\d{12}$",
            "Description": "The account the Opsflow hub is deployed in.",
        },
        "HubRegion": {
            "Type": "String",
            "AllowedPattern": "^[a-z]{2}(-[a-z]+)+-\\d$",
            "Description": "The region the Opsflow hub is deployed in: the spoke roles are created there.",
        },
        "HubStackName": {
            "Type": "String",
            "Default": "opsflow",
            "AllowedPattern": "^[A-Za-z][A-Za-z0-9-]{0,40}$",
            "Description": "The hub's stack name: every role and rule here carries it, so two hubs never collide.",
        },
        "OrganizationId": {
            "Type": "String",
            "Default": "",
            "AllowedPattern": "^(o-[a-z0-9]{10,32})?$",
            "Description": "If given, the roles also require the hub's functions to be of this organization.",
        },
    }
    for name in SHARED_PARAMETERS:
        parameters[name] = copy.deepcopy(hub["Parameters"][name])
    conditions = {
        "InHubRegion": {"Fn::Equals": [{"Ref": "AWS::Region"}, {"Ref": "HubRegion"}]},
        "IsHubAccount": {"Fn::Equals": [{"Ref": "AWS::AccountId"}, {"Ref": "HubAccountId"}]},
        # Roles are global: one stack instance per account creates them, the one in the hub's region.
        "CreateRoles": {
            "Fn::And": [{"Condition": "InHubRegion"}, {"Fn::Not": [{"Condition": "IsHubAccount"}]}]
        },
        # The hub's own region needs no forwarding; every other account-region does.
        "ForwardEvents": {
            "Fn::Not": [{"Fn::And": [{"Condition": "InHubRegion"}, {"Condition": "IsHubAccount"}]}]
        },
        "HasOrganization": {"Fn::Not": [{"Fn::Equals": [{"Ref": "OrganizationId"}, ""]}]},
    }
    out: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    for logical_id, function in hub["Resources"].items():
        if function.get("Type") != "AWS::Serverless::Function":
            continue
        suffix = _role_suffix(function)
        if suffix is None:
            continue
        statements = [
            for_every_region(statement)
            for policy in function["Properties"].get("Policies") or []
            if isinstance(policy, dict)
            for statement in policy.get("Statement", [])
            if acts_in_spoke(statement, resources)
        ]
        if not statements:
            raise SystemExit(f"{logical_id} names a spoke role but has no statement about a team's resources")
        role_path = function["Properties"].get("RolePath")
        if role_path != {"Fn::Sub": f"/${{AWS::StackName}}/{suffix}/"}:
            raise SystemExit(
                f'{logical_id} names a spoke role: its RolePath must be !Sub "/${{AWS::StackName}}/{suffix}/"'
            )
        # By path: CloudFormation shortens a long stack's generated role names, never their path.
        trusted = {
            "Fn::Sub": f"arn:${{AWS::Partition}}:iam::${{HubAccountId}}:role/${{HubStackName}}/{suffix}/*"
        }

        def trust(with_organization: bool, trusted: dict[str, Any] = trusted) -> dict[str, Any]:
            condition: dict[str, Any] = {"ArnLike": {"aws:PrincipalArn": trusted}}
            if with_organization:
                condition["StringEquals"] = {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}
            return {
                "Effect": "Allow",
                "Principal": {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${HubAccountId}:root"}},
                "Action": STS_ACTIONS,
                "Condition": condition,
            }

        role_id = f"{_camel(suffix)}SpokeRole"
        out[role_id] = {
            "Type": "AWS::IAM::Role",
            "Condition": "CreateRoles",
            "Properties": {
                "RoleName": {"Fn::Sub": f"${{HubStackName}}-spoke-{suffix}"},
                "Description": {
                    "Fn::Sub": f"What the Opsflow hub ${{HubStackName}}'s {logical_id} may do here."
                },
                "MaxSessionDuration": 3600,
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Fn::If": ["HasOrganization", trust(True), trust(False)]},
                    ],
                },
                "Policies": [
                    {
                        "PolicyName": f"opsflow-{suffix}",
                        "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
                    }
                ],
            },
        }
        outputs[f"{role_id}Arn"] = {
            "Condition": "CreateRoles",
            "Description": f"The role the hub's {logical_id} assumes here.",
            "Value": {"Fn::GetAtt": [role_id, "Arn"]},
        }
    # The stack instance in the hub's own account and region creates nothing else: a stack needs a resource.
    out["SpokeStack"] = {
        "Type": "AWS::CloudFormation::WaitConditionHandle",
        "Metadata": {"Purpose": "Keeps a stack instance whose conditions create nothing valid."},
    }
    sources, detail_types = _forwarded_patterns(hub)
    hub_bus = {"Fn::Sub": "arn:${AWS::Partition}:events:${HubRegion}:${HubAccountId}:event-bus/default"}
    out["ForwardToHubRole"] = {
        "Type": "AWS::IAM::Role",
        "Condition": "ForwardEvents",
        "Properties": {
            # 64 characters at most: a 41-character stack name and a 14-character region fit.
            "RoleName": {"Fn::Sub": "${HubStackName}-forward-${AWS::Region}"},
            "Description": "EventBridge forwards the events Opsflow listens to to the hub's bus with it.",
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                        "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
                    }
                ],
            },
            "Policies": [
                {
                    "PolicyName": "forward-to-hub",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": hub_bus}],
                    },
                }
            ],
        },
    }
    out["ForwardToHub"] = {
        "Type": "AWS::Events::Rule",
        "Condition": "ForwardEvents",
        "Properties": {
            "Name": {"Fn::Sub": "${HubStackName}-forward-to-hub"},
            "Description": "The AWS events the Opsflow hub waits on and reports, sent to its event bus.",
            "EventPattern": {"source": sources, "detail-type": detail_types},
            "State": "ENABLED",
            "Targets": [
                {
                    "Id": "hub",
                    "Arn": hub_bus,
                    "RoleArn": {"Fn::GetAtt": ["ForwardToHubRole", "Arn"]},
                    # An event the hub's bus refuses (this account not admitted) is kept here for two weeks.
                    "DeadLetterConfig": {"Arn": {"Fn::GetAtt": ["ForwardDeadLetterQueue", "Arn"]}},
                }
            ],
        },
    }
    out["ForwardDeadLetterQueue"] = {
        "Type": "AWS::SQS::Queue",
        "Condition": "ForwardEvents",
        "Metadata": {
            "checkov": {
                "skip": [
                    {
                        "id": "CKV_AWS_27",
                        "comment": "Encrypted with SQS managed keys (SqsManagedSseEnabled), as the hub's "
                        "dead-letter queues are.",
                    }
                ]
            },
            "cfn-lint": {"config": {"ignore_checks": ["ES6000"]}},
        },
        "Properties": {"MessageRetentionPeriod": 1209600, "SqsManagedSseEnabled": True},
    }
    out["ForwardDeadLetterQueuePolicy"] = {
        "Type": "AWS::SQS::QueuePolicy",
        "Condition": "ForwardEvents",
        "Properties": {
            "Queues": [{"Ref": "ForwardDeadLetterQueue"}],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": {"Fn::GetAtt": ["ForwardDeadLetterQueue", "Arn"]},
                        "Condition": {
                            "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["ForwardToHub", "Arn"]}}
                        },
                    }
                ],
            },
        },
    }
    document = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": (
            "Opsflow spoke: the roles the hub's functions assume in this account, and the forwarding of the "
            "events it listens to. Generated from template.yaml by spoke/generate.py: do not edit by hand."
        ),
        "Parameters": parameters,
        "Conditions": conditions,
        "Resources": out,
        "Outputs": outputs,
    }
    header = (
        "# Generated by spoke/generate.py from template.yaml (make spoke); edit the hub's statements, not these.\n"
        '# Deploy with CloudFormation StackSets (service-managed, automatic deployment): see README, "Many\n'
        '# accounts and regions".\n'
    )
    return header + yaml.dump(document, Dumper=_NoAliases, sort_keys=False, width=110, allow_unicode=True)


class _NoAliases(yaml.SafeDumper):
    """CloudFormation rejects YAML aliases: every repeated value is written out."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if spoke/template.yaml is out of date")
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        if not SPOKE.exists() or SPOKE.read_text() != text:
            print("spoke/template.yaml is out of date: run `make spoke`", file=sys.stderr)
            return 1
        return 0
    SPOKE.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
