"""The IAM roles the template deploys, as SAM produces them: SAM's own translator expands each
function's and state machine's `Policies` (policy templates included) into a role."""

from __future__ import annotations

import copy
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from samtranslator.translator.transform import transform

from opsflow_local.template import Template, TemplateError

# The AWS managed policies SAM attaches, as the AWS Managed Policy Reference Guide lists them today.
MANAGED_POLICIES: dict[str, dict[str, Any]] = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": "*",
            }
        ],
    },
    "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:DescribeLogGroups",
                    "logs:DescribeLogStreams",
                    "logs:PutLogEvents",
                    "logs:GetLogEvents",
                    "logs:FilterLogEvents",
                ],
                "Resource": "*",
            }
        ],
    },
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "xray:PutTraceSegments",
                    "xray:PutTelemetryRecords",
                    "xray:GetSamplingRules",
                    "xray:GetSamplingTargets",
                    "xray:GetSamplingStatisticSummaries",
                ],
                "Resource": "*",
            }
        ],
    },
}


@dataclass(frozen=True)
class Role:
    logical_id: str
    name: str
    arn: str
    trust_policy: dict[str, Any]
    inline_policies: dict[str, dict[str, Any]]
    managed_policy_arns: tuple[str, ...] = ()

    @property
    def policies(self) -> list[dict[str, Any]]:
        """Every identity policy the role carries: its inline policies and its managed ones."""
        return [*self.inline_policies.values(), *(MANAGED_POLICIES[arn] for arn in self.managed_policy_arns)]


@dataclass(frozen=True)
class DeployedRoles:
    roles: dict[str, Role]  # by logical id
    function_roles: dict[str, str] = field(default_factory=dict)  # function logical id -> role logical id
    state_machine_roles: dict[str, str] = field(default_factory=dict)

    def by_arn(self, arn: str) -> Role | None:
        return next((role for role in self.roles.values() if role.arn == arn), None)

    def for_function(self, logical_id: str) -> Role:
        return self.roles[self.function_roles[logical_id]]

    def for_state_machine(self, logical_id: str) -> Role:
        return self.roles[self.state_machine_roles[logical_id]]


class _NoManagedPolicyLookups:
    """SAM asks for managed policy ARNs only for policies named without one; the template names none."""

    def load(self) -> dict[str, str]:
        return {}


def translate(template: Template) -> DeployedRoles:
    """Expand the template as `sam deploy` does and collect its roles, intrinsics resolved."""
    key = json.dumps(
        [
            str(template.path),
            template.region,
            template.account,
            template.stack_name,
            template.parameters,
            template.body,
        ],
        sort_keys=True,
        default=str,
    )
    return _translate(key, template)


_translated: dict[str, DeployedRoles] = {}


def _translate(key: str, template: Template) -> DeployedRoles:
    # Each test deploys the same template; SAM's expansion takes a third of a second.
    if key not in _translated:
        _translated[key] = _expand(template)
    return _translated[key]


def _expand(template: Template) -> DeployedRoles:
    body = copy.deepcopy(template.body)
    for logical_id, resource in body["Resources"].items():
        properties = resource.get("Properties") or {}
        # As `sam package` does: local code becomes an S3 location, a definition file is inlined.
        if resource["Type"] == "AWS::Serverless::Function":
            properties["CodeUri"] = f"s3://opsflow-artifacts/{logical_id}.zip"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            properties["ContentUri"] = f"s3://opsflow-artifacts/{logical_id}.zip"
        elif resource["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in properties:
            properties["Definition"] = json.loads(
                (template.root / properties.pop("DefinitionUri")).read_text()
            )
    os.environ.setdefault("AWS_DEFAULT_REGION", template.region)
    # SAM's translator warns, when its metrics object is collected, that it published no metrics to CloudWatch.
    logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)
    expanded = transform(body, dict(template.parameters), _NoManagedPolicyLookups())
    deployed = Template(
        path=template.path,
        body=expanded,
        region=template.region,
        stack_name=template.stack_name,
        parameters=template.parameters,
        account=template.account,
    )
    roles = plain_roles(deployed)
    return DeployedRoles(
        roles=roles,
        function_roles=_role_of(expanded, "AWS::Lambda::Function", "Role"),
        state_machine_roles=_role_of(expanded, "AWS::StepFunctions::StateMachine", "RoleArn"),
    )


def _role_of(body: dict[str, Any], kind: str, attribute: str) -> dict[str, str]:
    found = {}
    for logical_id, resource in body["Resources"].items():
        if resource["Type"] != kind:
            continue
        reference = resource["Properties"][attribute]
        if not (isinstance(reference, dict) and "Fn::GetAtt" in reference):
            raise TemplateError(f"{logical_id}: {attribute} must name a role of the template")
        target = reference["Fn::GetAtt"]
        found[logical_id] = target[0] if isinstance(target, list) else target.split(".", 1)[0]
    return found


def plain_roles(template: Template) -> dict[str, Role]:
    """The AWS::IAM::Role resources a template creates (a spoke's, or the hub's once SAM expanded it), by
    logical id, intrinsics resolved for the account and region it is deployed in."""
    roles: dict[str, Role] = {}
    for logical_id, resource in template.resources("AWS::IAM::Role").items():
        properties = template.resolve(resource["Properties"])
        unknown = [arn for arn in properties.get("ManagedPolicyArns", []) if arn not in MANAGED_POLICIES]
        if unknown:
            raise TemplateError(
                f"{logical_id}: managed policies the embedded runtime does not know: {unknown}"
            )
        roles[logical_id] = Role(
            logical_id=logical_id,
            name=template.physical_name(logical_id),
            arn=template.arn(logical_id),
            trust_policy=properties["AssumeRolePolicyDocument"],
            inline_policies={p["PolicyName"]: p["PolicyDocument"] for p in properties.get("Policies", [])},
            managed_policy_arns=tuple(properties.get("ManagedPolicyArns", [])),
        )
    return roles
