"""Which authorizations AWS makes for one API call: an action on a resource, with its context keys.

What each action's resource types, ARN formats and condition keys are comes from the Service
Authorization Reference (`reference`); what is written here is only how a request names them (which
parameter holds the instance id, where the request's tags are). An action the reference lists without
resource types is authorized on "*". A call that needs a resource and has no rule here fails loudly,
so a new AWS call in Opsflow cannot pass unheld.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from opsflow_local.iam import reference
from opsflow_local.iam.lookups import Lookups
from opsflow_local.iam.policy import ContextValue

# boto3's service names -> IAM's service prefixes, where they differ.
IAM_PREFIX = {
    "elbv2": "elasticloadbalancing",
    "stepfunctions": "states",
    "lambda": "lambda",
}
# API operations whose IAM action has another name.
ACTION_NAME = {("lambda", "Invoke"): "InvokeFunction"}


class NotModelled(NotImplementedError):
    """The embedded runtime does not know how AWS authorizes this call."""


@dataclass(frozen=True)
class Call:
    service: str  # boto3's name: "ec2", "elbv2"
    operation: str  # the API's: "CreateImage"
    params: dict[str, Any]
    region: str
    account: str


@dataclass
class Authorization:
    action: reference.Action
    resource_type: str  # "" for an action authorized on "*"
    arn: str
    context: dict[str, ContextValue] = field(default_factory=dict)
    tags_of: Callable[[], dict[str, str]] | None = None  # an existing resource's tags, read when asked
    # A resource-based policy AWS also evaluates (a role's trust policy; None when the role does not exist).
    trust_of: Callable[[], dict[str, Any] | None] | None = None
    on_behalf_of: str = (
        ""  # an implicit check: the call AWS makes it for ("autoscaling:UpdateAutoScalingGroup")
    )

    def __post_init__(self) -> None:
        for key in self.context:
            if not key.lower().startswith("aws:") and not self.action.supports_key(self.resource_type, key):
                raise NotModelled(
                    f"{self.action.full_name} on {self.resource_type or '*'} carries no condition key {key}"
                )

    def lookup_key(self, key: str) -> ContextValue:
        """A context key not given with the request: a resource tag, if the action carries it."""
        prefix, _, tag = key.partition("/")
        is_tag = bool(tag) and prefix.lower().endswith(":resourcetag")
        if is_tag and self.tags_of is not None and self.action.supports_key(self.resource_type, key):
            return self.tags_of().get(tag)
        return None


Resolver = Callable[[Call, Lookups], list[Authorization]]
_RESOLVERS: dict[tuple[str, str], Resolver] = {}


def resolves(service: str, *operations: str) -> Callable[[Resolver], Resolver]:
    def register(resolver: Resolver) -> Resolver:
        for operation in operations:
            _RESOLVERS[(service, operation)] = resolver
        return resolver

    return register


def action_of(call: Call, name: str | None = None) -> reference.Action:
    prefix = IAM_PREFIX.get(call.service, call.service)
    return reference.action(prefix, name or ACTION_NAME.get((call.service, call.operation), call.operation))


def direct_authorizations(call: Call, lookups: Lookups) -> list[Authorization]:
    """The authorizations of the called action itself (implicit.py has those AWS adds)."""
    resolver = _RESOLVERS.get((call.service, call.operation))
    if resolver is not None:
        return resolver(call, lookups)
    action = action_of(call)
    if action.has_resource_types:
        raise NotModelled(
            f"{action.full_name} is authorized on resources the embedded runtime does not know how to "
            "name: add a rule for it in opsflow_local/iam/calls.py"
        )
    return [Authorization(action, "", "*")]


# Helpers --------------------------------------------------------------------------------------------


def on(
    call: Call,
    lookups: Lookups,
    resource_type: str,
    *,
    action: str | reference.Action | None = None,
    existing: bool = True,
    request_tags: dict[str, str] | None = None,
    context: dict[str, ContextValue] | None = None,
    arn: str | None = None,
    **ids: str,
) -> Authorization:
    """One authorization of the call's action (or `action`) on a resource of `resource_type`.

    existing: the resource exists, so the request carries its tags as aws:ResourceTag; a resource the
    call creates carries only the request's tags.
    """
    act = action if isinstance(action, reference.Action) else action_of(call, action)
    resource_arn = arn or act.arn(resource_type, call.region, call.account, **ids)
    values: dict[str, ContextValue] = dict(context or {})
    if request_tags is not None:
        values.update(request_tag_context(act, resource_type, request_tags))
    return Authorization(
        action=act,
        resource_type=resource_type,
        arn=resource_arn,
        context=values,
        tags_of=(lambda: lookups.tags(resource_arn)) if existing else None,
    )


def request_tag_context(
    act: reference.Action, resource_type: str, tags: dict[str, str]
) -> dict[str, ContextValue]:
    values: dict[str, ContextValue] = {}
    for key, value in tags.items():
        if act.supports_key(resource_type, f"aws:RequestTag/{key}"):
            values[f"aws:RequestTag/{key}"] = value
    if act.supports_key(resource_type, "aws:TagKeys"):
        values["aws:TagKeys"] = list(tags)
    return values


def tag_list(tags: Iterable[dict[str, Any]] | None, key: str = "Key", value: str = "Value") -> dict[str, str]:
    return {str(t[key]): str(t.get(value, "")) for t in tags or []}


def spec_tags(call: Call, resource_type: str) -> dict[str, str] | None:
    """The tags a TagSpecifications list gives resources of one type (None: none given)."""
    specs = [s for s in call.params.get("TagSpecifications", []) if s.get("ResourceType") == resource_type]
    return tag_list(t for s in specs for t in s.get("Tags", [])) if specs else None


# EC2 ------------------------------------------------------------------------------------------------

_EC2_ID_TYPES = {
    "i-": "instance",
    "ami-": "image",
    "snap-": "snapshot",
    "vol-": "volume",
    "lt-": "launch-template",
    "subnet-": "subnet",
    "sg-": "security-group",
    "eni-": "network-interface",
}
_EC2_ID_NAMES = {
    "instance": "InstanceId",
    "image": "ImageId",
    "snapshot": "SnapshotId",
    "volume": "VolumeId",
    "launch-template": "LaunchTemplateId",
    "subnet": "SubnetId",
    "security-group": "SecurityGroupId",
    "network-interface": "NetworkInterfaceId",
}


def ec2_resource_type(resource_id: str) -> str:
    for prefix, kind in _EC2_ID_TYPES.items():
        if resource_id.startswith(prefix):
            return kind
    raise NotModelled(f"EC2 resource id {resource_id!r} of a kind the embedded runtime does not know")


def ec2_on(call: Call, lookups: Lookups, resource_id: str, **kwargs: Any) -> Authorization:
    kind = ec2_resource_type(resource_id)
    return on(call, lookups, kind, **{_EC2_ID_NAMES[kind]: resource_id}, **kwargs)


@resolves("ec2", "CreateImage")
def _create_image(call: Call, lookups: Lookups) -> list[Authorization]:
    # The Service Authorization Reference: CreateImage is authorized on the instance, the new image and
    # its new snapshots, each carrying the request's tags for it.
    return [
        ec2_on(call, lookups, call.params["InstanceId"]),
        on(call, lookups, "image", existing=False, request_tags=spec_tags(call, "image") or {}),
        on(call, lookups, "snapshot", existing=False, request_tags=spec_tags(call, "snapshot") or {}),
    ]


@resolves("ec2", "CopyImage")
def _copy_image(call: Call, lookups: Lookups) -> list[Authorization]:
    # The Service Authorization Reference: CopyImage is authorized on the source image (in its own region)
    # and on the new image and snapshots, which carry the request's tags for them.
    source = action_of(call).arn(
        "image", str(call.params["SourceRegion"]), call.account, ImageId=str(call.params["SourceImageId"])
    )
    return [
        on(call, lookups, "image", arn=source),
        on(call, lookups, "image", existing=False, request_tags=spec_tags(call, "image") or {}),
        on(call, lookups, "snapshot", existing=False, request_tags=spec_tags(call, "snapshot") or {}),
    ]


@resolves("ec2", "ModifyImageAttribute", "DescribeImageAttribute")
def _image_attribute(call: Call, lookups: Lookups) -> list[Authorization]:
    return [ec2_on(call, lookups, call.params["ImageId"])]


@resolves("ec2", "ModifySnapshotAttribute", "DescribeSnapshotAttribute")
def _snapshot_attribute(call: Call, lookups: Lookups) -> list[Authorization]:
    return [ec2_on(call, lookups, call.params["SnapshotId"])]


@resolves("ec2", "CreateTags")
def _create_tags(call: Call, lookups: Lookups) -> list[Authorization]:
    tags = tag_list(call.params.get("Tags"))
    return [ec2_on(call, lookups, resource_id, request_tags=tags) for resource_id in call.params["Resources"]]


@resolves("ec2", "DeregisterImage", "DisableImage", "EnableImageDeprecation")
def _deregister_image(call: Call, lookups: Lookups) -> list[Authorization]:
    return [ec2_on(call, lookups, call.params["ImageId"])]


@resolves("ec2", "DeleteSnapshot")
def _delete_snapshot(call: Call, lookups: Lookups) -> list[Authorization]:
    return [ec2_on(call, lookups, call.params["SnapshotId"])]


@resolves("ec2", "RunInstances")
def _run_instances(call: Call, lookups: Lookups) -> list[Authorization]:
    # The Service Authorization Reference: RunInstances is authorized on the image, the new instance, its
    # volumes and network interface (each with the request's tags for it), and the subnet and security
    # groups it launches into. A launch from a launch template is not modelled here.
    if call.params.get("LaunchTemplate"):
        raise NotModelled(
            "RunInstances from a launch template: add its resources in opsflow_local/iam/calls.py"
        )
    checks = [ec2_on(call, lookups, call.params["ImageId"])]
    for kind in ("instance", "volume", "network-interface"):
        checks.append(on(call, lookups, kind, existing=False, request_tags=spec_tags(call, kind) or {}))
    if call.params.get("SubnetId"):
        checks.append(ec2_on(call, lookups, call.params["SubnetId"]))
    checks += [ec2_on(call, lookups, group) for group in call.params.get("SecurityGroupIds") or []]
    return checks


@resolves("ec2", "StopInstances", "StartInstances", "TerminateInstances", "RebootInstances")
def _instances(call: Call, lookups: Lookups) -> list[Authorization]:
    return [ec2_on(call, lookups, instance_id) for instance_id in call.params["InstanceIds"]]


@resolves("ec2", "CreateLaunchTemplateVersion", "ModifyLaunchTemplate", "DeleteLaunchTemplateVersions")
def _launch_template(call: Call, lookups: Lookups) -> list[Authorization]:
    template_id = lookups.launch_template_id(call.params) or "*"
    return [on(call, lookups, "launch-template", LaunchTemplateId=template_id)]


# Auto Scaling ---------------------------------------------------------------------------------------


def group_on(call: Call, lookups: Lookups, name: str) -> Authorization:
    group = lookups.group(name)
    arn = group["AutoScalingGroupARN"] if group else None
    return on(call, lookups, "autoScalingGroup", arn=arn, GroupFriendlyName=name)


@resolves(
    "autoscaling",
    "UpdateAutoScalingGroup",
    "StartInstanceRefresh",
    "CancelInstanceRefresh",
    "RollbackInstanceRefresh",
)
def _group(call: Call, lookups: Lookups) -> list[Authorization]:
    return [group_on(call, lookups, call.params["AutoScalingGroupName"])]


@resolves("autoscaling", "CreateLaunchConfiguration", "DeleteLaunchConfiguration")
def _launch_configuration(call: Call, lookups: Lookups) -> list[Authorization]:
    name = call.params["LaunchConfigurationName"]
    arn = lookups.launch_configuration_arn(name) if call.operation.startswith("Delete") else None
    return [
        on(
            call,
            lookups,
            "launchConfiguration",
            arn=arn,
            existing=False,
            LaunchConfigurationName=name,
        )
    ]


# ECS ------------------------------------------------------------------------------------------------


def _cluster_name(cluster: str | None) -> str:
    return (cluster or "default").rsplit("/", 1)[-1]


def service_arn(call: Call, cluster: str | None, service: str) -> str:
    if service.startswith("arn:"):
        return service
    return f"arn:aws:ecs:{call.region}:{call.account}:service/{_cluster_name(cluster)}/{service}"


def cluster_arn(call: Call, cluster: str | None) -> str:
    if cluster and cluster.startswith("arn:"):
        return cluster
    return f"arn:aws:ecs:{call.region}:{call.account}:cluster/{_cluster_name(cluster)}"


@resolves("ecs", "DescribeServices")
def _describe_services(call: Call, lookups: Lookups) -> list[Authorization]:
    cluster = call.params.get("cluster")
    return [
        on(
            call,
            lookups,
            "service",
            arn=service_arn(call, cluster, s),
            context={"ecs:cluster": cluster_arn(call, cluster)},
        )
        for s in call.params["services"]
    ]


@resolves("ecs", "UpdateService")
def _update_service(call: Call, lookups: Lookups) -> list[Authorization]:
    cluster = call.params.get("cluster")
    arn = service_arn(call, cluster, call.params["service"])
    return [on(call, lookups, "service", arn=arn, context={"ecs:cluster": cluster_arn(call, cluster)})]


@resolves("ecs", "CreateService")
def _create_service(call: Call, lookups: Lookups) -> list[Authorization]:
    cluster = call.params.get("cluster")
    arn = service_arn(call, cluster, call.params["serviceName"])
    tags = tag_list(call.params.get("tags"), "key", "value")
    return [
        on(
            call,
            lookups,
            "service",
            arn=arn,
            existing=False,
            request_tags=tags,
            context={"ecs:cluster": cluster_arn(call, cluster)},
        )
    ]


@resolves("ecs", "RegisterTaskDefinition")
def _register_task_definition(call: Call, lookups: Lookups) -> list[Authorization]:
    tags = tag_list(call.params.get("tags"), "key", "value")
    return [
        on(
            call,
            lookups,
            "task-definition",
            existing=False,
            request_tags=tags,
            TaskDefinitionFamilyName=call.params["family"],
        )
    ]


_ECS_ARN_TYPES = ("service", "task-definition", "cluster", "task-set", "task", "container-instance")


def ecs_resource_type(arn: str) -> str:
    kind = arn.split(":", 5)[5].split("/", 1)[0]
    if kind not in _ECS_ARN_TYPES:
        raise NotModelled(f"ECS resource {arn} of a kind the embedded runtime does not know")
    return kind


@resolves("ecs", "TagResource")
def _ecs_tag_resource(call: Call, lookups: Lookups) -> list[Authorization]:
    arn = call.params["resourceArn"]
    tags = tag_list(call.params.get("tags"), "key", "value")
    return [on(call, lookups, ecs_resource_type(arn), arn=arn, request_tags=tags)]


# ELBv2, RDS -----------------------------------------------------------------------------------------


@resolves("elbv2", "ModifyListener")
def _modify_listener(call: Call, lookups: Lookups) -> list[Authorization]:
    arn = call.params["ListenerArn"]
    kind = "listener/" + arn.split(":listener/", 1)[1].split("/", 1)[0]
    return [on(call, lookups, kind, arn=arn)]


@resolves("rds", "StopDBInstance", "StartDBInstance")
def _db_instance(call: Call, lookups: Lookups) -> list[Authorization]:
    return [on(call, lookups, "db", DbInstanceName=call.params["DBInstanceIdentifier"])]


@resolves("rds", "StopDBCluster", "StartDBCluster")
def _db_cluster(call: Call, lookups: Lookups) -> list[Authorization]:
    return [on(call, lookups, "cluster", DbClusterInstanceName=call.params["DBClusterIdentifier"])]


@resolves("rds", "DescribeDBInstances", "DescribeDBClusters")
def _describe_databases(call: Call, lookups: Lookups) -> list[Authorization]:
    kind, key, name = (
        ("db", "DBInstanceIdentifier", "DbInstanceName")
        if call.operation == "DescribeDBInstances"
        else ("cluster", "DBClusterIdentifier", "DbClusterInstanceName")
    )
    return [on(call, lookups, kind, existing=False, **{name: call.params.get(key) or "*"})]


# Route 53 (global: its ARNs name no region or account) ---------------------------------------------


def hosted_zone(call: Call) -> str:
    return str(call.params.get("HostedZoneId") or call.params.get("Id") or call.params["ResourceId"]).rsplit(
        "/", 1
    )[-1]


@resolves("route53", "GetHostedZone", "ListResourceRecordSets")
def _hosted_zone(call: Call, lookups: Lookups) -> list[Authorization]:
    return [on(call, lookups, "hostedzone", existing=False, Id=hosted_zone(call))]


@resolves("route53", "ChangeResourceRecordSets")
def _change_records(call: Call, lookups: Lookups) -> list[Authorization]:
    changes = call.params["ChangeBatch"]["Changes"]
    # Service Authorization Reference, Route 53 condition keys: the batch's actions, its records' types, and
    # their names normalized (lower case, no final dot).
    context: dict[str, ContextValue] = {
        "route53:ChangeResourceRecordSetsActions": sorted({c["Action"] for c in changes}),
        "route53:ChangeResourceRecordSetsRecordTypes": sorted(
            {c["ResourceRecordSet"]["Type"] for c in changes}
        ),
        "route53:ChangeResourceRecordSetsNormalizedRecordNames": sorted(
            {c["ResourceRecordSet"]["Name"].lower().rstrip(".") for c in changes}
        ),
    }
    return [on(call, lookups, "hostedzone", existing=False, context=context, Id=hosted_zone(call))]


@resolves("route53", "GetChange")
def _change(call: Call, lookups: Lookups) -> list[Authorization]:
    return [on(call, lookups, "change", existing=False, Id=str(call.params["Id"]).rsplit("/", 1)[-1])]


@resolves("route53", "GetHealthCheck", "GetHealthCheckStatus")
def _health_check(call: Call, lookups: Lookups) -> list[Authorization]:
    return [on(call, lookups, "healthcheck", existing=False, Id=call.params["HealthCheckId"])]


@resolves("route53", "ListTagsForResource")
def _route53_tags(call: Call, lookups: Lookups) -> list[Authorization]:
    kind = call.params["ResourceType"]
    return [on(call, lookups, kind, existing=False, Id=hosted_zone(call))]


# Systems Manager ----------------------------------------------------------------------------------


def _document_arn(call: Call, document: str) -> str:
    if document.startswith("arn:"):
        return document
    # AWS's own documents (AWS-RunShellScript, AWS-RestartEC2Instance) belong to no account.
    owner = "" if document.startswith("AWS-") else call.account
    return f"arn:aws:ssm:{call.region}:{owner}:document/{document}"


@resolves("ssm", "DescribeDocument")
def _describe_document(call: Call, lookups: Lookups) -> list[Authorization]:
    return [on(call, lookups, "document", existing=False, arn=_document_arn(call, str(call.params["Name"])))]


@resolves("ssm", "SendCommand")
def _send_command(call: Call, lookups: Lookups) -> list[Authorization]:
    document = str(call.params["DocumentName"])
    checks = [on(call, lookups, "document", existing=False, arn=_document_arn(call, document))]
    action = action_of(call)
    for instance_id in call.params.get("InstanceIds") or []:
        arn = action.arn("instance", call.region, call.account, InstanceId=instance_id)
        checks.append(on(call, lookups, "instance", arn=arn))
    return checks


@resolves("ssm", "StartAutomationExecution")
def _start_automation(call: Call, lookups: Lookups) -> list[Authorization]:
    # The Service Authorization Reference: StartAutomationExecution is authorized on the runbook's
    # automation definition (its name and version), on the document, and on the new execution, which carries
    # the request's tags. The definition of an AWS-owned runbook, like its document, names no account. AWS
    # names the version it resolved (`...:automation-definition/AWS-RestartEC2Instance:1`); the embedded
    # runtime does not look it up and names the one asked for, `$DEFAULT` when none is: a policy should
    # grant `<name>:*`.
    document = str(call.params["DocumentName"])
    region, owner = call.region, "" if document.startswith("AWS-") else call.account
    name = document
    if document.startswith("arn:"):
        region, owner = document.split(":")[3], document.split(":")[4]
        name = document.rsplit("document/", 1)[-1]
    version = str(call.params.get("DocumentVersion") or "$DEFAULT")
    tags = tag_list(call.params["Tags"]) if call.params.get("Tags") else None
    return [
        on(
            call,
            lookups,
            "automation-definition",
            existing=False,
            arn=f"arn:aws:ssm:{region}:{owner}:automation-definition/{name}:{version}",
        ),
        on(call, lookups, "document", existing=False, arn=_document_arn(call, document)),
        on(call, lookups, "automation-execution", existing=False, request_tags=tags),
    ]


@resolves("ssm", "GetAutomationExecution", "StopAutomationExecution")
def _automation_execution(call: Call, lookups: Lookups) -> list[Authorization]:
    execution_id = str(call.params["AutomationExecutionId"])
    return [on(call, lookups, "automation-execution", existing=False, AutomationExecutionId=execution_id)]


# Step Functions, Scheduler, EventBridge, SQS, Lambda, CloudWatch, Secrets Manager ------------------


@resolves("stepfunctions", "StartExecution")
def _start_execution(call: Call, lookups: Lookups) -> list[Authorization]:
    return [on(call, lookups, "statemachine", arn=call.params["stateMachineArn"], existing=False)]


@resolves("stepfunctions", "DescribeExecution", "StopExecution")
def _execution(call: Call, lookups: Lookups) -> list[Authorization]:
    return [on(call, lookups, "execution", arn=call.params["executionArn"], existing=False)]


@resolves("scheduler", "CreateSchedule", "UpdateSchedule", "GetSchedule", "DeleteSchedule")
def _schedule(call: Call, lookups: Lookups) -> list[Authorization]:
    group = call.params.get("GroupName") or "default"
    return [on(call, lookups, "schedule", existing=False, GroupName=group, ScheduleName=call.params["Name"])]


@resolves("events", "PutEvents")
def _put_events(call: Call, lookups: Lookups) -> list[Authorization]:
    """Each entry is authorized on its bus with its own source and detail type (events:source,
    events:detail-type)."""
    kinds = {
        (
            entry.get("EventBusName") or "default",
            str(entry.get("Source", "")),
            str(entry.get("DetailType", "")),
        )
        for entry in call.params["Entries"]
    }
    return [
        on(
            call,
            lookups,
            "event-bus",
            existing=False,
            arn=bus if bus.startswith("arn:") else None,
            context={"events:source": source, "events:detail-type": detail_type},
            EventBusName=bus,
        )
        for bus, source, detail_type in sorted(kinds)
    ]


@resolves("sqs", "SendMessage", "ReceiveMessage", "DeleteMessage", "GetQueueAttributes")
def _queue(call: Call, lookups: Lookups) -> list[Authorization]:
    name = call.params["QueueUrl"].rstrip("/").rsplit("/", 1)[-1]
    return [on(call, lookups, "queue", existing=False, QueueName=name)]


@resolves("sns", "Publish")
def _publish(call: Call, lookups: Lookups) -> list[Authorization]:
    arn = call.params.get("TopicArn") or call.params.get("TargetArn") or ""
    return [on(call, lookups, "topic", existing=False, arn=arn)]


@resolves("lambda", "Invoke")
def _invoke(call: Call, lookups: Lookups) -> list[Authorization]:
    name = call.params["FunctionName"]
    if name.startswith("arn:"):
        name = name.split(":")[6]
    arn = f"arn:aws:lambda:{call.region}:{call.account}:function:{name}"
    return [on(call, lookups, "function", arn=arn)]


@resolves("cloudwatch", "DescribeAlarms")
def _describe_alarms(call: Call, lookups: Lookups) -> list[Authorization]:
    names = call.params.get("AlarmNames") or ["*"]
    return [on(call, lookups, "alarm", existing=False, AlarmName=name) for name in names]


@resolves("cloudwatch", "ListTagsForResource")
def _alarm_tags(call: Call, lookups: Lookups) -> list[Authorization]:
    return [on(call, lookups, "alarm", existing=False, arn=call.params["ResourceARN"])]


@resolves("cloudwatch", "DescribeAlarmHistory")
def _alarm_history(call: Call, lookups: Lookups) -> list[Authorization]:
    return [on(call, lookups, "alarm", existing=False, AlarmName=call.params.get("AlarmName") or "*")]


@resolves("secretsmanager", "GetSecretValue", "DescribeSecret")
def _secret(call: Call, lookups: Lookups) -> list[Authorization]:
    return [on(call, lookups, "Secret", arn=lookups.secret_arn(call.params["SecretId"]))]


# DynamoDB -------------------------------------------------------------------------------------------


def table_on(call: Call, lookups: Lookups, table: str, action: str | None = None) -> Authorization:
    return on(call, lookups, "table", action=action, existing=False, TableName=table)


@resolves("dynamodb", "Scan", "DescribeTable")
def _table(call: Call, lookups: Lookups) -> list[Authorization]:
    return [table_on(call, lookups, call.params["TableName"])]


@resolves("dynamodb", "GetItem", "PutItem", "UpdateItem", "DeleteItem")
def _item(call: Call, lookups: Lookups) -> list[Authorization]:
    # dynamodb:LeadingKeys is the item's partition key value (DynamoDB Developer Guide, "Using IAM policy
    # conditions for fine-grained access control").
    table = call.params["TableName"]
    key = lookups.table_hash_key(table)
    item = call.params.get("Key") or call.params.get("Item") or {}
    value = next(iter((item.get(key) or {}).values()), None) if key else None
    context: dict[str, ContextValue] = {"dynamodb:LeadingKeys": [str(value)]} if value is not None else {}
    return [on(call, lookups, "table", existing=False, context=context, TableName=table)]


@resolves("dynamodb", "Query")
def _query(call: Call, lookups: Lookups) -> list[Authorization]:
    # A query of an index is authorized on the index's ARN only.
    if call.params.get("IndexName"):
        return [
            on(
                call,
                lookups,
                "index",
                existing=False,
                TableName=call.params["TableName"],
                IndexName=call.params["IndexName"],
            )
        ]
    return [table_on(call, lookups, call.params["TableName"])]


_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


@resolves("dynamodb", "TransactWriteItems")
def _transact_write(call: Call, lookups: Lookups) -> list[Authorization]:
    # No permission of its own: each item needs the permission for what it does (DynamoDB Developer
    # Guide, "Using IAM with DynamoDB transactions").
    found = []
    for item in call.params["TransactItems"]:
        ((kind, request),) = item.items()
        found.append(table_on(call, lookups, request["TableName"], action=_TRANSACT_ACTIONS[kind]))
    return found


@resolves("dynamodb", "BatchWriteItem")
def _batch_write(call: Call, lookups: Lookups) -> list[Authorization]:
    found = []
    for table, requests in call.params["RequestItems"].items():
        kinds = {next(iter(r)) for r in requests}
        found += [
            table_on(call, lookups, table, action="PutItem" if kind == "PutRequest" else "DeleteItem")
            for kind in sorted(kinds)
        ]
    return found


# STS ------------------------------------------------------------------------------------------------


@resolves("sts", "AssumeRole")
def _assume_role(call: Call, lookups: Lookups) -> list[Authorization]:
    # The caller's policies must allow each action on the role, and so must the role's trust policy
    # (IAM User Guide, "Cross-account policy evaluation logic"): SetSourceIdentity when the request sets a
    # source identity, TagSession when it passes session tags.
    role_arn = str(call.params["RoleArn"])
    wanted = ["AssumeRole"]
    if call.params.get("SourceIdentity"):
        wanted.append("SetSourceIdentity")
    tags = tag_list(call.params.get("Tags"))
    if tags:
        wanted.append("TagSession")
    authorizations = []
    for name in wanted:
        act = action_of(call, name)
        authorizations.append(
            Authorization(
                action=act,
                resource_type="role",
                arn=role_arn,
                context=request_tag_context(act, "role", tags) if name == "TagSession" else {},
                trust_of=lambda: lookups.role_trust_policy(role_arn),
            )
        )
    return authorizations


# Organizations ------------------------------------------------------------------------------------------


@resolves("organizations", "DescribeAccount")
def _describe_account(call: Call, lookups: Lookups) -> list[Authorization]:
    master, organization = lookups.organization() or (call.account, "o-none")
    return [
        on(
            call,
            lookups,
            "account",
            MasterAccountId=master,
            OrganizationId=organization.removeprefix("o-"),
            AccountId=call.params["AccountId"],
        )
    ]
