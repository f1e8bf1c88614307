"""Read template.yaml as CloudFormation would: short-form intrinsics, parameters, Globals, references.

Only the intrinsic functions the template uses are resolved; an unknown one raises, so a template
change that the embedded runtime cannot honour fails loudly instead of deploying something else.
"""

from __future__ import annotations

import copy
import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfnlint.decode import cfn_yaml

ACCOUNT_ID = "123456789012"
# The property a resource's own name is given in, where the template may name it.
_NAME_PROPERTY = {
    "AWS::Serverless::StateMachine": "Name",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::SecretsManager::Secret": "Name",
}


class TemplateError(ValueError):
    pass


# What Ref AWS::NoValue resolves to: the property it is given to is left out.
_NO_VALUE = object()


@dataclass
class Template:
    path: Path
    body: dict[str, Any]
    region: str
    stack_name: str = "opsflow"
    parameters: dict[str, Any] = field(default_factory=dict)
    account: str = ACCOUNT_ID

    @classmethod
    def load(
        cls,
        path: Path,
        region: str,
        stack_name: str = "opsflow",
        overrides: dict[str, Any] | None = None,
        account: str = ACCOUNT_ID,
    ) -> Template:
        body = load_yaml(path)
        parameters = {
            name: spec.get("Default") for name, spec in (body.get("Parameters") or {}).items()
        } | dict(overrides or {})
        missing = [name for name, value in parameters.items() if value is None]
        if missing:
            raise TemplateError(f"template parameters without a value: {', '.join(missing)}")
        return cls(
            path=path, body=body, region=region, stack_name=stack_name, parameters=parameters, account=account
        )

    @property
    def root(self) -> Path:
        return self.path.parent

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        """The resources of a kind that this stack creates (those whose Condition holds)."""
        return {
            name: res
            for name, res in self.body["Resources"].items()
            if res["Type"] == kind and ("Condition" not in res or self.condition(res["Condition"]))
        }

    def condition(self, name: str) -> bool:
        conditions = self.body.get("Conditions") or {}
        if name not in conditions:
            raise TemplateError(f"no condition {name}")
        return bool(self.resolve(conditions[name]))

    def function_properties(self, logical_id: str) -> dict[str, Any]:
        """A function's properties with the template's Globals merged in, as SAM does."""
        globals_ = copy.deepcopy((self.body.get("Globals") or {}).get("Function") or {})
        own = copy.deepcopy(self.body["Resources"][logical_id]["Properties"])
        merged = {**globals_, **own}
        global_env = (globals_.get("Environment") or {}).get("Variables") or {}
        own_env = (own.get("Environment") or {}).get("Variables") or {}
        merged["Environment"] = {"Variables": {**global_env, **own_env}}
        return merged

    # Names and ARNs, deterministic so every part of the runtime agrees without a lookup.

    def physical_name(self, logical_id: str) -> str:
        """The name the template gives a resource, or the one CloudFormation would make up."""
        resource = self.body["Resources"].get(logical_id) or {}
        name_property = _NAME_PROPERTY.get(
            resource.get("Type", ""), "RoleName" if resource.get("Type") == "AWS::IAM::Role" else None
        )
        given = (resource.get("Properties") or {}).get(name_property) if name_property else None
        return str(self.resolve(given)) if given else f"{self.stack_name}-{logical_id}"[:64]

    def role_path(self, logical_id: str) -> str:
        """A role's Path (SAM sets it from a function's RolePath), "/" by default."""
        given = (self.body["Resources"][logical_id].get("Properties") or {}).get("Path")
        return str(self.resolve(given)) if given else "/"

    def log_group_name(self, logical_id: str) -> str:
        """A log group's LogGroupName, or the name CloudFormation would make up."""
        given = (self.body["Resources"][logical_id].get("Properties") or {}).get("LogGroupName")
        return str(self.resolve(given)) if given else self.physical_name(logical_id)

    def arn(self, logical_id: str) -> str:
        kind = self.body["Resources"][logical_id]["Type"]
        name = self.physical_name(logical_id)
        prefix = f"arn:aws:{{}}:{self.region}:{self.account}"
        arns = {
            "AWS::DynamoDB::Table": f"{prefix.format('dynamodb')}:table/{name}",
            "AWS::Serverless::Function": f"{prefix.format('lambda')}:function:{name}",
            "AWS::Lambda::Function": f"{prefix.format('lambda')}:function:{name}",
            "AWS::Serverless::StateMachine": f"{prefix.format('states')}:stateMachine:{name}",
            "AWS::StepFunctions::StateMachine": f"{prefix.format('states')}:stateMachine:{name}",
            "AWS::Serverless::LayerVersion": f"{prefix.format('lambda')}:layer:{name}:1",
            "AWS::SNS::Topic": f"{prefix.format('sns')}:{name}",
            "AWS::SQS::Queue": f"{prefix.format('sqs')}:{name}",
            "AWS::IAM::Role": f"arn:aws:iam::{self.account}:role{self.role_path(logical_id)}{name}",
            "AWS::Scheduler::ScheduleGroup": f"{prefix.format('scheduler')}:schedule-group/{name}",
            "AWS::CloudWatch::Alarm": f"{prefix.format('cloudwatch')}:alarm:{name}",
        }
        if kind == "AWS::Logs::LogGroup":
            return f"{prefix.format('logs')}:log-group:{self.log_group_name(logical_id)}:*"
        if kind == "AWS::SecretsManager::Secret":
            return f"{prefix.format('secretsmanager')}:secret:{name}-{secret_suffix(name)}"
        if kind not in arns:
            raise TemplateError(f"no ARN known for {logical_id} ({kind})")
        return arns[kind]

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": "aws",
            "AWS::StackName": self.stack_name,
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        kind = self.body["Resources"].get(name, {}).get("Type")
        if kind in (
            "AWS::Serverless::StateMachine",
            "AWS::StepFunctions::StateMachine",
            "AWS::SNS::Topic",
            "AWS::Serverless::LayerVersion",
            "AWS::SecretsManager::Secret",
        ):
            return self.arn(name)
        if kind in (
            "AWS::DynamoDB::Table",
            "AWS::Serverless::Function",
            "AWS::Lambda::Function",
            "AWS::Serverless::Api",
            "AWS::IAM::Role",
            "AWS::Scheduler::ScheduleGroup",
        ):
            return self.physical_name(name)
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{self.region}.amazonaws.com/{self.account}/{self.physical_name(name)}"
        if kind == "AWS::Logs::LogGroup":
            return self.log_group_name(name)
        raise TemplateError(f"cannot resolve Ref {name}")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        if attribute == "Arn":
            return self.arn(logical_id)
        if attribute == "Name":
            return self.physical_name(logical_id)
        if attribute == "QueueName" and self.body["Resources"][logical_id]["Type"] == "AWS::SQS::Queue":
            return self.physical_name(logical_id)
        raise TemplateError(f"cannot resolve Fn::GetAtt {logical_id}.{attribute}")

    def resolve(self, value: Any) -> Any:
        """Resolve intrinsic functions in `value`, recursively."""
        if isinstance(value, list):
            return [item for item in (self.resolve(entry) for entry in value) if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.get_att(logical_id, attribute)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Join":
                delimiter, items = arg
                # The list may itself be an intrinsic (a Ref to a CommaDelimitedList): resolve it first.
                resolved = self.resolve(items)
                values = resolved if isinstance(resolved, list) else [resolved]
                return delimiter.join(str(item) for item in values)
            if key == "Fn::Equals":
                left, right = (self.resolve(item) for item in arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(item) for item in arg)
            if key == "Fn::Or":
                return any(self.resolve(item) for item in arg)
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if key == "Fn::If":
                name, if_true, if_false = arg
                return self.resolve(if_true if self.condition(name) else if_false)
            if key.startswith("Fn::"):
                raise TemplateError(f"the embedded runtime does not resolve {key}")
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        resolved = {name: self.resolve(v) for name, v in variables.items()}
        out, i = [], 0
        while i < len(text):
            if text.startswith("${!", i):
                out.append("${")
                i += 3
            elif text.startswith("${", i):
                end = text.index("}", i)
                name = text[i + 2 : end]
                if name in resolved:
                    out.append(str(resolved[name]))
                elif "." in name:
                    out.append(str(self.get_att(*name.split(".", 1))))
                else:
                    out.append(str(self.ref(name)))
                i = end + 1
            else:
                out.append(text[i])
                i += 1
        return "".join(out)


def secret_suffix(name: str) -> str:
    """The six characters Secrets Manager appends to a secret's name in its ARN: random on AWS, here derived
    from the name, so that a policy naming the secret's ARN (its Ref) is known before the secret exists."""
    digest = hashlib.sha256(name.encode()).digest()
    return "".join("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[byte % 52] for byte in digest[:6])


def load_yaml(path: Path) -> dict[str, Any]:
    """A CloudFormation template as plain dicts and lists, short-form intrinsics in their long form. A copy
    of the file's parse, which is kept while the file is unchanged: parsing takes a quarter of a second,
    copying a hundredth, and a test session deploys the same template hundreds of times."""
    stat = Path(path).stat()
    return copy.deepcopy(_parsed(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=8)
def _parsed(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    return dict(_plain(cfn_yaml.load(path)))


def _plain(node: Any) -> Any:
    """cfn-lint's loader returns dict/str subclasses carrying line marks; plain types are easier to copy."""
    if isinstance(node, dict):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(item) for item in node]
    if isinstance(node, str):
        return str(node)
    return node
