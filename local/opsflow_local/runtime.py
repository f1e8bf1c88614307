"""EmbeddedAws: Opsflow's template deployed on moto in-process.

It reads template.yaml, creates the tables it declares, registers every function with its real
handler and environment and every state machine with its real definition, routes Lambda invokes
to the handlers in-process, and compresses Wait and Retry time.
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import time
import zipfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws
from moto.organizations.models import organizations_backends
from moto.secretsmanager.utils import SecretsManagerSecretIdentifier
from moto.utilities.id_generator import moto_id_manager

from opsflow.aws.clients import reset_clients
from opsflow.runs import wiring as starter
from opsflow_local.api import ApiClient
from opsflow_local.emulation import stepfunctions as sfn_emulation
from opsflow_local.emulation.autoscaling import AutoScalingEmulation
from opsflow_local.emulation.aws_events import AwsEvents
from opsflow_local.emulation.cloudwatch import CloudWatchEmulation
from opsflow_local.emulation.codepipeline import CodePipelineEmulation
from opsflow_local.emulation.ec2 import Ec2Emulation
from opsflow_local.emulation.ecs import EcsEmulation
from opsflow_local.emulation.elbv2 import Elbv2Emulation
from opsflow_local.emulation.events import EventDelivery
from opsflow_local.emulation.rds import RdsEmulation
from opsflow_local.emulation.route53 import Route53Emulation
from opsflow_local.emulation.scheduler import SchedulerEmulation, ScheduleTargetDenied
from opsflow_local.emulation.ssm import SsmEmulation
from opsflow_local.faults import Faults
from opsflow_local.gateway import Gateway
from opsflow_local.iam import IamEnforcement, Principal, acting_as, translate
from opsflow_local.iam.calls import Call
from opsflow_local.iam.policy import Context, trusts
from opsflow_local.iam.roles import plain_roles
from opsflow_local.lambdas import DeployedFunction, LambdaRouter, invocation_record
from opsflow_local.sink import Notification, NotificationSink
from opsflow_local.template import ACCOUNT_ID, Template, secret_suffix

DEFAULT_TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
SPOKE_TEMPLATE = Path(__file__).resolve().parents[2] / "spoke" / "template.yaml"
# The role an organization's management account reaches a member account with (Organizations User Guide,
# "Accessing member accounts"): what the embedded runtime's operator uses in each spoke account.
OPERATOR_ROLE = "OrganizationAccountAccessRole"
ORGANIZATION_ID = "o-embedded0001"
TERMINAL_EXECUTION = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
_SERVICE_OF_ROLE = {"function": "lambda.amazonaws.com", "state machine": "states.amazonaws.com"}


# CloudFormation's alarm properties that are PutMetricAlarm's parameters, under the same names.
_ALARM_PARAMETERS = frozenset(
    {
        "AlarmName",
        "AlarmDescription",
        "Namespace",
        "MetricName",
        "Dimensions",
        "Statistic",
        "Period",
        "EvaluationPeriods",
        "DatapointsToAlarm",
        "Threshold",
        "ComparisonOperator",
        "TreatMissingData",
        "Metrics",
        "AlarmActions",
        "OKActions",
    }
)


# CloudFormation's GenerateSecretString settings that are GetRandomPassword's parameters, under the same names.
_PASSWORD_SETTINGS = frozenset(
    {
        "PasswordLength",
        "ExcludeCharacters",
        "ExcludeNumbers",
        "ExcludePunctuation",
        "ExcludeUppercase",
        "ExcludeLowercase",
        "IncludeSpace",
        "RequireEachIncludedType",
    }
)


class UnknownAccount(LookupError):
    """An account outside the embedded organization: nothing exists in it."""


class DeploymentError(RuntimeError):
    """The template would not deploy on AWS, for the reason given."""


class Emulations:
    """Handles on the emulated behaviours, for tests that need to steer them (see README)."""

    def __init__(self, time_scale: float) -> None:
        self.ec2 = Ec2Emulation(time_scale=time_scale)
        self.autoscaling = AutoScalingEmulation(time_scale=time_scale)
        self.ecs = EcsEmulation(time_scale=time_scale)
        self.elbv2 = Elbv2Emulation(time_scale=time_scale)
        self.route53 = Route53Emulation(time_scale=time_scale)
        self.ssm = SsmEmulation(time_scale=time_scale)
        self.rds = RdsEmulation(time_scale=time_scale)
        self.codepipeline = CodePipelineEmulation()
        self.cloudwatch = CloudWatchEmulation()
        self.events = AwsEvents()  # what every emulated service sent to EventBridge, or lost
        self.scheduler: SchedulerEmulation  # set by EmbeddedAws, which owns the clients and functions


_SESSION_MUTEX = threading.Lock()
_SESSIONS: list[boto3.session.Session] = []


def _operator_session() -> boto3.session.Session:
    """One botocore session for the operator's clients of every runtime in the process: a client's
    credentials and region are its own, and the session's loader keeps the service models and endpoint
    data, which a new session reads again (a tenth of a second per client)."""
    with _SESSION_MUTEX:
        if not _SESSIONS:
            _SESSIONS.append(boto3.session.Session())
        return _SESSIONS[0]


class EmbeddedAws:
    """A context manager: on entry the app from `template` is deployed on a fresh moto account.

    time_scale: how much faster than real time Wait states, Retry intervals and emulated AWS delays
    run (0.01: a 15 s Wait takes 0.15 s).
    parameters: template parameter overrides.
    function_log_level: POWERTOOLS_LOG_LEVEL for every function (the template's INFO is noisy locally).
    iam: hold every call of a function or state machine to its role's policies, as AWS does (see README,
    "IAM in the embedded runtime"); False grants every call, as moto alone does.
    accounts: the organization's accounts, the hub's first; every other one gets the spoke stack
    (spoke/template.yaml) in every region of `regions`, as a StackSet would deploy it. Not given: one
    account.
    regions: the regions of the organization, the hub's first (default: `region` alone).
    spoke_parameters: overrides of the spoke template's parameters by account (a spoke deployed for
    another hub: {"222222222222": {"HubAccountId": "999999999999"}}).
    """

    def __init__(
        self,
        template: str | Path = DEFAULT_TEMPLATE,
        *,
        region: str = "us-east-1",
        time_scale: float = 0.01,
        parameters: dict[str, Any] | None = None,
        function_log_level: str = "WARNING",
        iam: bool = True,
        accounts: list[str] | None = None,
        regions: list[str] | None = None,
        spoke_parameters: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        region = regions[0] if regions else region
        self.region = region
        self.regions = list(dict.fromkeys(regions or [region]))
        self.accounts = list(dict.fromkeys(accounts or [ACCOUNT_ID]))
        self.iam_enforced = iam
        self.account_id = self.accounts[0]
        self._spoke_parameters = dict(spoke_parameters or {})
        self.time_scale = time_scale
        self.sink = NotificationSink()
        overrides = dict(parameters or {})
        if len(self.accounts) > 1:
            # The simulated organization: its accounts' spoke stacks may forward to the hub's bus.
            overrides.setdefault("OrganizationId", ORGANIZATION_ID)
        # Unless told otherwise, notifications go to one Slack and one Teams channel on the local sink.
        self._local_channels = "NotifyChannels" not in overrides
        if not self._local_channels:
            # Channels of the caller's may point at the local sink, e.g. "slack_api_url": "{local_sink}/api/".
            overrides["NotifyChannels"] = str(overrides["NotifyChannels"]).replace(
                "{local_sink}", self.sink.base_url
            )
        if self._local_channels:
            overrides["NotifyChannels"] = json.dumps(
                [
                    {"name": f"local-{p}", "platform": p, "webhook_secret": f"opsflow/local/{p}"}
                    for p in ("slack", "teams")
                ]
            )
        self.template = Template.load(Path(template), region, overrides=overrides, account=self.account_id)
        self.emulation = Emulations(time_scale)
        self._function_log_level = function_log_level
        self._stack = ExitStack()
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._operator_credentials: dict[str, dict[str, str]] = {}
        self._clients_mutex = threading.Lock()
        self.roles = translate(self.template)
        self.iam = IamEnforcement(self.roles, region, self.account_id, self._admin_client)
        # Failures on purpose, from where AWS would raise them (tests and the demo).
        self.faults = Faults()
        self.lambdas = LambdaRouter(base_environment={}, faults=self.faults)
        self.events = EventDelivery(
            lambda arn, event: self.lambdas.invoke(arn.rsplit(":", 1)[-1], event),
            retries=self._async_retries,
            on_failure=self._send_to_failure_destination,
        )
        self.api = ApiClient.from_template(self.template, self.lambdas)
        self.emulation.scheduler = SchedulerEmulation(self.client, self._invoke_for_scheduler)

    # Lifecycle ----------------------------------------------------------------------------------

    def __enter__(self) -> EmbeddedAws:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.events.wait(timeout=10)
            self._stop_running_executions()
            # Stopped executions end on their own threads; their end events must arrive while the
            # runtime's patches are still in place.
            self._wait_until_no_execution_runs(timeout=10)
            self.events.wait(timeout=10)
        finally:
            self._stack.close()
            reset_clients()

    def _start(self) -> None:
        self._set_environment(
            {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region,
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_DEV": "false",
            }
        )
        # moto logs every failed execution at ERROR with its whole parse tree; the run record says it better.
        self._quiet("moto.stepfunctions.parser")
        sfn_emulation.install(self._stack, self.time_scale, self._execution_credentials)
        self.emulation.ec2.install(self._stack)
        self.emulation.autoscaling.install(self._stack)
        self.emulation.ecs.install(self._stack)
        self.emulation.elbv2.install(self._stack)
        self.emulation.route53.install(self._stack)
        self.emulation.ssm.install(self._stack)
        self.emulation.rds.install(self._stack)
        self.emulation.codepipeline.install(self._stack)
        self.emulation.cloudwatch.install(self._stack)
        self.emulation.ec2.on_status_change = self.emulation.cloudwatch.follow_status_checks
        if self.iam_enforced:
            self.iam.install(self._stack)
        self.faults.install(self._stack)
        self.lambdas.install()
        self._stack.callback(self.lambdas.uninstall)
        self.events.install(self._stack)
        self.sink.start()
        self._stack.callback(self.sink.stop)
        self._stack.enter_context(
            mock_aws(
                config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
            )
        )
        self.emulation.events.install(self._stack)  # its clock stops before moto's backends go
        if self.account_id != ACCOUNT_ID:
            # moto tells accounts apart by access key: the hub's functions and operator sign as the hub.
            self._set_environment(self._operator_credentials_for(self.account_id))
        reset_clients()
        # A new deployment is a cold start: no configuration or starter of a previous account survives.
        starter.forget()
        # Powertools caches parameters and secrets process-wide; a fresh account must not see stale ones.
        parameters.clear_caches()
        _forget_powertools_loggers()
        self._stack.callback(parameters.clear_caches)
        self._deploy()

    def _quiet(self, logger_name: str) -> None:
        logger = logging.getLogger(logger_name)
        previous = logger.level
        logger.setLevel(logging.CRITICAL)
        self._stack.callback(logger.setLevel, previous)

    def _set_environment(self, values: dict[str, str]) -> None:
        saved = {key: os.environ.get(key) for key in values}
        os.environ.update(values)

        def restore() -> None:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

        self._stack.callback(restore)

    # Deployment ---------------------------------------------------------------------------------

    def _deploy(self) -> None:
        template = self.template
        for logical_id, resource in template.resources("AWS::DynamoDB::Table").items():
            self._create_table(template.physical_name(logical_id), template.resolve(resource["Properties"]))
        for logical_id in template.resources("AWS::Scheduler::ScheduleGroup"):
            self.client("scheduler").create_schedule_group(Name=template.physical_name(logical_id))
        for logical_id in template.resources("AWS::SQS::Queue"):
            self.client("sqs").create_queue(QueueName=template.physical_name(logical_id))
        for logical_id, resource in template.resources("AWS::SecretsManager::Secret").items():
            self._create_secret(logical_id, template.resolve(resource["Properties"]))
        for resource in template.resources("AWS::CloudWatch::Alarm").values():
            properties = template.resolve(resource["Properties"])
            self.client("cloudwatch").put_metric_alarm(
                **{key: value for key, value in properties.items() if key in _ALARM_PARAMETERS}
            )
        self._create_roles()
        for logical_id in template.resources("AWS::Serverless::Function"):
            self._create_function(logical_id, self._role_for("function", logical_id))
        for logical_id, resource in template.resources("AWS::Serverless::StateMachine").items():
            self._create_state_machine(
                logical_id, resource["Properties"], self._role_for("state machine", logical_id)
            )
        for logical_id in template.resources("AWS::Serverless::Function"):
            self._create_rules(logical_id)
        for logical_id, resource in template.resources("AWS::Scheduler::Schedule").items():
            properties = template.resolve(resource["Properties"])
            self.client("scheduler").create_schedule(
                Name=template.physical_name(logical_id),
                **{key: properties[key] for key in ("ScheduleExpression", "FlexibleTimeWindow", "Target")},
            )
        for resource in template.resources("AWS::Events::EventBusPolicy").values():
            properties = template.resolve(resource["Properties"])
            policy = {
                "Version": "2012-10-17",
                "Statement": [{"Sid": properties["StatementId"], **properties["Statement"]}],
            }
            self.client("events").put_permission(EventBusName="default", Policy=json.dumps(policy))
        self._deploy_spokes()
        if self._local_channels:
            secrets = self.client("secretsmanager")
            for platform in ("slack", "teams"):
                secrets.create_secret(
                    Name=f"opsflow/local/{platform}",
                    SecretString=self.sink.url(platform, f"local-{platform}"),
                )

    def _deploy_spokes(self) -> None:
        """The spoke stack in every account-region but the hub's own region, as a service-managed StackSet
        deploys it to the organization: roles where the template creates them (the hub's region of each
        other account), the forwarding rule everywhere else it applies."""
        if len(self.accounts) > 1:
            self.iam.organization_id = ORGANIZATION_ID
            self.events.organization_of = lambda account: (
                ORGANIZATION_ID if account in self.accounts else None
            )
            self._create_organization()
        if len(self.accounts) == 1 and len(self.regions) == 1:
            return
        hub_stack = self.template.stack_name
        for account in self.accounts:
            for region in self.regions:
                parameters = {
                    "HubAccountId": self.account_id,
                    "HubRegion": self.region,
                    "HubStackName": hub_stack,
                    "OptInTagValue": self.template.parameters["OptInTagValue"],
                    "PassableRolePath": self.template.parameters["PassableRolePath"],
                    "OrganizationId": self.template.parameters.get("OrganizationId", ""),
                    **self._spoke_parameters.get(account, {}),
                }
                spoke = Template.load(
                    SPOKE_TEMPLATE, region, f"{hub_stack}-spoke", overrides=parameters, account=account
                )
                self._deploy_spoke(spoke, account, region)

    def _create_organization(self) -> None:
        """The organization: the hub's account its management account, every other account an active
        member. moto makes up the ids of an organization and of the accounts it creates; here they are the
        ones given."""
        self.client("organizations").create_organization(FeatureSet="ALL")
        backend = organizations_backends[self.account_id]["aws"]
        assert backend.org is not None
        backend.org.id = ORGANIZATION_ID
        for account in backend.accounts:
            account.organization_id = ORGANIZATION_ID
        for account in self.accounts[1:]:
            backend.create_account(AccountName=f"account-{account}", Email=f"aws+{account}@example.com")
            member = backend.accounts[-1]
            organizations_backends.master_accounts.pop(member.id, None)
            member.id = account
            organizations_backends.master_accounts[account] = (self.account_id, "aws")

    def _deploy_spoke(self, spoke: Template, account: str, region: str) -> None:
        roles = plain_roles(spoke)
        iam = self.client("iam", account=account, region=region)
        for role in roles.values():
            iam.create_role(
                RoleName=role.name,
                AssumeRolePolicyDocument=json.dumps(role.trust_policy),
                MaxSessionDuration=3600,
            )
            for policy_name, document in role.inline_policies.items():
                iam.put_role_policy(
                    RoleName=role.name, PolicyName=policy_name, PolicyDocument=json.dumps(document)
                )
        self.iam.add_roles(roles.values())
        events = self.client("events", account=account, region=region)
        for resource in spoke.resources("AWS::Events::Rule").values():
            properties = spoke.resolve(resource["Properties"])
            events.put_rule(Name=properties["Name"], EventPattern=json.dumps(properties["EventPattern"]))
            events.put_targets(
                Rule=properties["Name"],
                Targets=[
                    {key: target[key] for key in ("Id", "Arn", "RoleArn") if key in target}
                    for target in properties["Targets"]
                ],
            )

    def _create_roles(self) -> None:
        iam = self.client("iam")
        for role in self.roles.roles.values():
            path = role.arn.split(":role", 1)[1].rsplit("/", 1)[0] + "/"
            iam.create_role(
                RoleName=role.name, Path=path, AssumeRolePolicyDocument=json.dumps(role.trust_policy)
            )
            for policy_name, document in role.inline_policies.items():
                # IAM takes a document without Version (it is then read as 2008-10-17), as SAM's policy
                # templates produce; moto refuses one.
                versioned = {"Version": "2012-10-17", **document}
                iam.put_role_policy(
                    RoleName=role.name, PolicyName=policy_name, PolicyDocument=json.dumps(versioned)
                )

    def _role_for(self, kind: str, logical_id: str) -> str:
        """The ARN of the role SAM gives a function or state machine, once its service may assume it
        (CreateFunction refuses a role Lambda cannot assume; so does CreateStateMachine)."""
        role = (
            self.roles.for_function(logical_id)
            if kind == "function"
            else self.roles.for_state_machine(logical_id)
        )
        service = _SERVICE_OF_ROLE[kind]
        if not trusts(role.trust_policy, service, Context({"aws:SourceAccount": self.account_id})):
            raise DeploymentError(f"{kind} {logical_id}: its role {role.name} cannot be assumed by {service}")
        return role.arn

    def _invoke_for_scheduler(self, role_arn: str, function_name: str, payload: dict[str, Any]) -> Any:
        """Scheduler assumes the schedule's role and invokes its target with it (Scheduler User Guide,
        "Set up the execution role")."""
        if self.iam_enforced:
            role = self.roles.by_arn(role_arn)
            if role is None or not trusts(
                role.trust_policy, "scheduler.amazonaws.com", Context({"aws:SourceAccount": self.account_id})
            ):
                raise ScheduleTargetDenied(f"EventBridge Scheduler cannot assume {role_arn}")
            invoke = Call("lambda", "Invoke", {"FunctionName": function_name}, self.region, self.account_id)
            denial = self.iam.check(Principal(role_arn, "scheduler"), invoke)
            if denial is not None:
                raise ScheduleTargetDenied(denial.message)
        return self.lambdas.invoke(function_name, payload)

    def _create_table(self, name: str, properties: dict[str, Any]) -> None:
        create_table(self.client("dynamodb"), name, properties)

    def _create_secret(self, logical_id: str, properties: dict[str, Any]) -> None:
        """A secret with its value given or generated as CloudFormation generates it (GetRandomPassword with
        the GenerateSecretString settings), at the ARN the template resolves its Ref to."""
        secrets = self.client("secretsmanager")
        generate = properties.get("GenerateSecretString")
        if generate is not None:
            unknown = set(generate) - set(_PASSWORD_SETTINGS) - {"SecretStringTemplate", "GenerateStringKey"}
            if unknown:
                raise DeploymentError(f"{logical_id}: GenerateSecretString {sorted(unknown)} is not emulated")
            password = secrets.get_random_password(
                **{key: value for key, value in generate.items() if key in _PASSWORD_SETTINGS}
            )["RandomPassword"]
            value = (
                json.dumps(
                    {**json.loads(generate["SecretStringTemplate"]), generate["GenerateStringKey"]: password}
                )
                if "SecretStringTemplate" in generate
                else password
            )
        elif "SecretString" in properties:
            value = str(properties["SecretString"])
        else:
            raise DeploymentError(f"{logical_id}: a secret needs SecretString or GenerateSecretString")
        name = self.template.physical_name(logical_id)
        identifier = SecretsManagerSecretIdentifier(self.account_id, self.region, name)
        moto_id_manager.set_custom_id(identifier, secret_suffix(name))
        try:
            created = secrets.create_secret(
                Name=name,
                SecretString=value,
                **({"Description": properties["Description"]} if properties.get("Description") else {}),
                **({"KmsKeyId": properties["KmsKeyId"]} if properties.get("KmsKeyId") else {}),
            )
        finally:
            moto_id_manager.unset_custom_id(identifier)
        if created["ARN"] != self.template.arn(logical_id):
            raise DeploymentError(
                f"{logical_id}: created at {created['ARN']}, not at {self.template.arn(logical_id)}"
            )

    def _async_invoke_config(self, function_arn: str) -> dict[str, Any]:
        for logical_id in self.template.resources("AWS::Serverless::Function"):
            if self.template.arn(logical_id) == function_arn:
                return dict(self.template.function_properties(logical_id).get("EventInvokeConfig") or {})
        return {}

    def _async_retries(self, function_arn: str) -> int:
        return int(self._async_invoke_config(function_arn).get("MaximumRetryAttempts", 2))

    def _send_to_failure_destination(
        self, function_arn: str, event: dict[str, Any], error: Exception, attempts: int
    ) -> None:
        on_failure = (self._async_invoke_config(function_arn).get("DestinationConfig") or {}).get("OnFailure")
        if not on_failure or on_failure.get("Type") != "SQS":
            return
        queue_arn = str(self.template.resolve(on_failure["Destination"]))
        queue_url = (
            f"https://sqs.{self.region}.amazonaws.com/{self.account_id}/{queue_arn.rsplit(':', 1)[-1]}"
        )
        record = invocation_record(function_arn, event, error, attempts)
        # Lambda sends it with the function's execution role (Lambda Developer Guide, "Adding a destination").
        function = self.lambdas.functions[function_arn.rsplit(":", 1)[-1]]
        principal = Principal(function.role_arn, function.name) if function.role_arn else None
        with acting_as(principal):
            self.client("sqs").send_message(QueueUrl=queue_url, MessageBody=json.dumps(record, default=str))

    def _create_function(self, logical_id: str, role_arn: str) -> None:
        properties = self.template.function_properties(logical_id)
        name = self.template.physical_name(logical_id)
        environment = {
            key: str(value)
            for key, value in self.template.resolve(properties["Environment"]["Variables"]).items()
        }
        environment["POWERTOOLS_LOG_LEVEL"] = self._function_log_level
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr(
                "app.py", "# The embedded runtime runs the handler from its CodeUri in-process.\n"
            )
        self.client("lambda").create_function(
            FunctionName=name,
            Runtime=properties.get("Runtime", "python3.11"),
            Role=role_arn,
            Handler=properties["Handler"],
            Code={"ZipFile": code.getvalue()},
            Timeout=int(properties.get("Timeout", 3)),
            MemorySize=int(properties.get("MemorySize", 128)),
            Environment={"Variables": environment},
        )
        self.lambdas.register(
            DeployedFunction(
                name=name,
                arn=self.template.arn(logical_id),
                code_dir=self.template.root / properties["CodeUri"],
                handler=properties["Handler"],
                environment=environment,
                memory=int(properties.get("MemorySize", 128)),
                role_arn=role_arn if self.iam_enforced else None,
            )
        )

    def _create_rules(self, logical_id: str) -> None:
        """A function's EventBridgeRule events become rules on the default bus targeting it."""
        events = self.template.body["Resources"][logical_id]["Properties"].get("Events") or {}
        client = self.client("events")
        for event_name, event in events.items():
            if event.get("Type") != "EventBridgeRule":
                continue
            rule = f"{self.template.physical_name(logical_id)}-{event_name}"[:64]
            pattern = self.template.resolve(event["Properties"]["Pattern"])
            client.put_rule(Name=rule, EventPattern=json.dumps(pattern))
            client.put_targets(Rule=rule, Targets=[{"Id": "function", "Arn": self.template.arn(logical_id)}])

    def _create_state_machine(self, logical_id: str, properties: dict[str, Any], role_arn: str) -> None:
        definition = (self.template.root / properties["DefinitionUri"]).read_text()
        for key, value in self.template.resolve(properties.get("DefinitionSubstitutions") or {}).items():
            definition = definition.replace("${" + key + "}", str(value))
        self.client("stepfunctions").create_state_machine(
            name=self.template.physical_name(logical_id),
            definition=definition,
            roleArn=role_arn,
            type=properties.get("Type", "STANDARD"),
        )

    # Public interface ---------------------------------------------------------------------------

    def client(self, service: str, account: str | None = None, region: str | None = None) -> Any:
        """A boto3 client of the operator's, in `account` and `region` (None: the hub's). One per service,
        account and region: creating a client loads its service model, which takes a tenth of a second."""
        account = account or self.account_id
        region = region or self.region
        if account not in self.accounts:
            raise UnknownAccount(
                f"account {account} is not one of the embedded organization's: {self.accounts}"
            )
        key = (service, account, region)
        with self._clients_mutex:
            if key not in self._clients:
                credentials = (
                    {
                        "aws_access_key_id": "testing",
                        "aws_secret_access_key": "testing",
                        "aws_session_token": "testing",
                    }
                    if account == ACCOUNT_ID
                    else {
                        "aws_access_key_id": self._operator_credentials_for(account)["AWS_ACCESS_KEY_ID"],
                        "aws_secret_access_key": self._operator_credentials_for(account)[
                            "AWS_SECRET_ACCESS_KEY"
                        ],
                        "aws_session_token": self._operator_credentials_for(account)["AWS_SESSION_TOKEN"],
                    }
                )
                self._clients[key] = _operator_session().client(  # type: ignore[call-overload]
                    service, region_name=region, **credentials
                )
            return self._clients[key]

    def located(self, account: str | None = None, region: str | None = None) -> AccountRegion:
        """The operator's view of one account and region: `client(service)` and `region`, as the seed
        helpers take (`seed.launch_template_group(aws.located("222222222222", "eu-west-1"), ...)`)."""
        return AccountRegion(self, account or self.account_id, region or self.region)

    def _execution_credentials(self, account: str) -> dict[str, str]:
        """What Step Functions signs an execution's Lambda invokes as: its own account (moto's default
        account needs none)."""
        return {} if account == ACCOUNT_ID else self._operator_credentials_for(account)

    def _admin_client(self, service: str, account: str, region: str) -> Any:
        return self.client(service, account=account, region=region)

    def _operator_credentials_for(self, account: str) -> dict[str, str]:
        """Credentials that moto reads as `account`'s: a session of the account's operator role."""
        if account not in self._operator_credentials:
            sts = boto3.session.Session(
                region_name=self.region,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                aws_session_token="testing",
            ).client("sts")
            with acting_as(None):
                given = sts.assume_role(
                    RoleArn=f"arn:aws:iam::{account}:role/{OPERATOR_ROLE}", RoleSessionName="opsflow-operator"
                )["Credentials"]
            self._operator_credentials[account] = {
                "AWS_ACCESS_KEY_ID": given["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": given["SecretAccessKey"],
                "AWS_SESSION_TOKEN": given["SessionToken"],
            }
        return self._operator_credentials[account]

    def resource_name(self, logical_id: str) -> str:
        """The physical name of a template resource (a table, a function, a state machine)."""
        return self.template.physical_name(logical_id)

    def state_machine_arn(self, logical_id: str) -> str:
        return self.template.arn(logical_id)

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Gateway:
        """The REST API on a local HTTP endpoint that checks SigV4 signatures as API Gateway's IAM
        authorizer does (port 0: any free port); a context manager whose `url` ends in the stage."""
        return Gateway(self.api, self.region, host, port)

    @property
    def notifications(self) -> list[Notification]:
        """Every message the local Slack and Teams channels received (each with `channel`, `platform`,
        `payload` and a `text` summary), once the deliveries under way have settled."""
        self.events.wait(timeout=10)
        return list(self.sink.received)

    def wait_for_run(self, run_id: str, timeout: float = 60) -> dict[str, Any]:
        """Wait until the run has ended, and return it as `GET /runs/{run_id}` shows it: a dict with
        "status", "output", "steps", "error", "requester", "execution_arn", ..."""
        deadline = time.monotonic() + timeout
        view = self._run_view(run_id)
        if view.get("execution_arn"):
            sfn = self.client("stepfunctions")
            # Poll the execution, not the API: the API handler shares the in-process Lambda lock with the
            # steps it would be waiting for.
            while (
                sfn.describe_execution(executionArn=view["execution_arn"])["status"] not in TERMINAL_EXECUTION
            ):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"run {run_id} still running after {timeout} s")
                time.sleep(0.05)
            view = self._run_view(run_id)
        return view

    def _run_view(self, run_id: str) -> dict[str, Any]:
        response = self.api.get(f"/runs/{run_id}")
        if response.status_code != 200:
            raise LookupError(f"run {run_id}: {response.status_code} {response.text}")
        return dict(response.json())

    def _wait_until_no_execution_runs(self, timeout: float) -> None:
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = [
                execution
                for machine in sfn.list_state_machines()["stateMachines"]
                for execution in sfn.list_executions(
                    stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING"
                )["executions"]
            ]
            if not running:
                return
            time.sleep(0.02)

    def _stop_running_executions(self) -> None:
        sfn = self.client("stepfunctions")
        for machine in sfn.list_state_machines()["stateMachines"]:
            for execution in sfn.list_executions(
                stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING"
            )["executions"]:
                sfn.stop_execution(executionArn=execution["executionArn"], cause="embedded runtime stopped")


@dataclass(frozen=True)
class AccountRegion:
    aws: EmbeddedAws
    account_id: str
    region: str

    def client(self, service: str) -> Any:
        return self.aws.client(service, account=self.account_id, region=self.region)


def _forget_powertools_loggers() -> None:
    """Powertools configures a service's logger once per process and keeps its level and handlers; a new
    deployment is a new cold start, so its functions must configure their loggers afresh."""
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and getattr(logger, "init", False):
            logger.handlers.clear()
            for marker in (
                "init",
                "powertools_handler",
                "powertools_buffer_config",
                "powertools_buffer_cache",
            ):
                if hasattr(logger, marker):
                    delattr(logger, marker)


def create_table(ddb: Any, name: str, properties: dict[str, Any]) -> None:
    """A table as the template declares it: keys, global secondary indexes and time to live."""
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
        BillingMode=properties.get("BillingMode", "PAY_PER_REQUEST"),
        **(
            {"GlobalSecondaryIndexes": properties["GlobalSecondaryIndexes"]}
            if properties.get("GlobalSecondaryIndexes")
            else {}
        ),
    )
    ttl = properties.get("TimeToLiveSpecification")
    if ttl:
        ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
