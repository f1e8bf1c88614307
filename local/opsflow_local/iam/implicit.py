"""The permissions AWS checks on the caller beyond the called action, each from its documentation.

- Auto Scaling, creating or updating a group with a launch template (Auto Scaling User Guide, "Control
  Amazon EC2 launch template usage in Auto Scaling groups" and "Permissions required to call Amazon EC2
  Auto Scaling API actions"): `ec2:RunInstances` on what the group would launch, `iam:PassRole` for the
  template's instance profile, `ec2:CreateTags` (ec2:CreateAction = RunInstances) when the template tags
  what it launches, `ssm:GetParameters` when its image is `resolve:ssm:`. The group's subnets come from
  `VPCZoneIdentifier`, not the template ("the subnet settings of the Auto Scaling group take
  precedence"), so for them ec2:IsLaunchTemplateResource is false. StartInstanceRefresh with a
  DesiredConfiguration is held to the same check: the refresh updates the group to that configuration.
- CreateLaunchConfiguration (the same API permissions page): the EC2 reads it lists, and
  `iam:PassRole` for an instance profile.
- CreateLaunchTemplateVersion whose image is `resolve:ssm:` (EC2 User Guide, "Use a Systems Manager
  parameter instead of an AMI ID"): `ssm:GetParameters`.
- CreateImage and other EC2 creates with TagSpecifications (EC2 User Guide, "Grant permission to tag
  resources during creation"): `ec2:CreateTags` on each new resource, with ec2:CreateAction.
- ECS tag-on-create (ECS Developer Guide, "Grant permission to tag resources on creation"):
  `ecs:TagResource` with ecs:CreateAction; RegisterTaskDefinition's task and execution roles need
  `iam:PassRole` (iam:PassedToService = ecs-tasks.amazonaws.com).
- Secrets Manager (User Guide, "Secret encryption and decryption"): reading a secret under a customer
  managed key needs `kms:Decrypt` on it, through Secrets Manager (kms:ViaService, the SecretARN
  encryption context).
- SNS (Developer Guide, "Securing Amazon SNS data with server-side encryption"): publishing to a topic
  under a customer managed key needs `kms:GenerateDataKey*` and `kms:Decrypt` on it, through SNS
  (kms:ViaService); a topic under the AWS managed key (`alias/aws/sns`) needs neither.
- EventBridge Scheduler (User Guide, "Set up the execution role"): CreateSchedule/UpdateSchedule pass the
  target's role: `iam:PassRole` (iam:PassedToService = scheduler.amazonaws.com).
- Systems Manager Automation (User Guide, "Setting up Automation"): StartAutomationExecution with an
  `AutomationAssumeRole` parameter passes that role: `iam:PassRole` (iam:PassedToService = ssm.amazonaws.com).
"""

from __future__ import annotations

from typing import Any

from opsflow_local.iam import reference
from opsflow_local.iam.calls import (
    Authorization,
    Call,
    on,
    request_tag_context,
    service_arn,
    spec_tags,
    tag_list,
)
from opsflow_local.iam.lookups import Lookups
from opsflow_local.iam.policy import ContextValue


def implicit_authorizations(call: Call, lookups: Lookups) -> list[Authorization]:
    checks = _IMPLICIT.get((call.service, call.operation))
    found = checks(call, lookups) if checks else []
    for authorization in found:
        authorization.on_behalf_of = f"{call.service}:{call.operation}"
    return found


def _action(service: str, name: str) -> reference.Action:
    return reference.action(service, name)


def _authorization(
    service: str,
    name: str,
    resource_type: str,
    arn: str,
    context: dict[str, ContextValue] | None = None,
    tags_of: Any = None,
) -> Authorization:
    return Authorization(
        action=_action(service, name),
        resource_type=resource_type,
        arn=arn,
        context=dict(context or {}),
        tags_of=tags_of,
    )


def _pass_role(role_arn: str, service: str) -> Authorization:
    return _authorization("iam", "PassRole", "role", role_arn, {"iam:PassedToService": service})


def _create_tags(
    call: Call, resource_type: str, arn: str, create_action: str, tags: dict[str, str]
) -> Authorization:
    action = _action("ec2", "CreateTags")
    context: dict[str, ContextValue] = {"ec2:CreateAction": create_action}
    context.update(request_tag_context(action, resource_type, tags))
    return Authorization(action=action, resource_type=resource_type, arn=arn, context=context)


# Auto Scaling with a launch template ---------------------------------------------------------------


def _launch_template_of(call: Call) -> dict[str, Any] | None:
    params = call.params
    if call.operation == "StartInstanceRefresh":
        params = params.get("DesiredConfiguration") or {}
    if params.get("LaunchTemplate"):
        return dict(params["LaunchTemplate"])
    mixed = params.get("MixedInstancesPolicy") or {}
    specification = (mixed.get("LaunchTemplate") or {}).get("LaunchTemplateSpecification")
    return dict(specification) if specification else None


def _group_launch_checks(call: Call, lookups: Lookups) -> list[Authorization]:
    template = _launch_template_of(call)
    if template is None:
        return []
    template_id = lookups.launch_template_id(template)
    if template_id is None:
        return []  # the call itself fails: the template does not exist
    data = lookups.launch_template_data(template_id, template.get("Version"))
    group = lookups.group(call.params["AutoScalingGroupName"]) or {}
    subnets = [
        s.strip()
        for s in str(call.params.get("VPCZoneIdentifier") or group.get("VPCZoneIdentifier") or "").split(",")
        if s.strip()
    ]
    template_arn = f"arn:aws:ec2:{call.region}:{call.account}:launch-template/{template_id}"
    run = _action("ec2", "RunInstances")

    launched_tags = {
        str(spec.get("ResourceType")): tag_list(spec.get("Tags"))
        for spec in data.get("TagSpecifications") or []
    }

    def launch(resource_type: str, from_template: bool, existing: bool, **ids: str) -> Authorization:
        return on(
            call,
            lookups,
            resource_type,
            action=run,
            existing=existing,
            request_tags=None if existing else launched_tags.get(resource_type),
            context={"ec2:LaunchTemplate": template_arn, "ec2:IsLaunchTemplateResource": from_template},
            **ids,
        )

    checks = [launch("launch-template", True, True, LaunchTemplateId=template_id)]
    image = str(data.get("ImageId") or "")
    if image.startswith("resolve:ssm:"):
        checks.append(_image_parameter(call, image))
    elif image:
        checks.append(launch("image", True, True, ImageId=image))
    checks += [
        launch("instance", True, False),
        launch("volume", True, False),
        launch("network-interface", True, False),
    ]
    interfaces = data.get("NetworkInterfaces") or []
    groups = list(data.get("SecurityGroupIds") or []) + [g for i in interfaces for g in i.get("Groups", [])]
    checks += [launch("security-group", True, True, SecurityGroupId=g) for g in groups]
    checks += [launch("subnet", False, True, SubnetId=s) for s in subnets]
    if data.get("KeyName"):
        checks.append(launch("key-pair", True, True, KeyPairName=str(data["KeyName"])))
    profile = data.get("IamInstanceProfile")
    if profile:
        checks += [
            _pass_role(arn, "ec2.amazonaws.com") for arn in lookups.instance_profile_role_arns(profile)
        ]
    for kind, tags in launched_tags.items():
        if kind in ("instance", "volume", "network-interface"):
            checks.append(
                _create_tags(call, kind, run.arn(kind, call.region, call.account), "RunInstances", tags)
            )
    return checks


def _image_parameter(call: Call, image: str) -> Authorization:
    parameter = image.removeprefix("resolve:ssm:").split(":", 1)[0].lstrip("/")
    # AWS's public parameters (/aws/service/...) belong to no account.
    account = "" if parameter.startswith("aws/") else call.account
    arn = f"arn:aws:ssm:{call.region}:{account}:parameter/{parameter}"
    return _authorization("ssm", "GetParameters", "parameter", arn)


def _template_version_image(call: Call, lookups: Lookups) -> list[Authorization]:
    # EC2 User Guide, "Use a Systems Manager parameter instead of an AMI ID": the parameter is read to
    # validate it when the version is created.
    image = str((call.params.get("LaunchTemplateData") or {}).get("ImageId") or "")
    return [_image_parameter(call, image)] if image.startswith("resolve:ssm:") else []


def _launch_configuration_checks(call: Call, lookups: Lookups) -> list[Authorization]:
    reads = [
        "DescribeImages",
        "DescribeInstances",
        "DescribeInstanceAttribute",
        "DescribeKeyPairs",
        "DescribeSecurityGroups",
    ]
    checks = [_authorization("ec2", name, "", "*") for name in reads]
    profile = call.params.get("IamInstanceProfile")
    if profile:
        as_profile = {"Arn": profile} if str(profile).startswith("arn:") else {"Name": profile}
        checks += [
            _pass_role(arn, "ec2.amazonaws.com") for arn in lookups.instance_profile_role_arns(as_profile)
        ]
    return checks


# Tags on create ---------------------------------------------------------------------------------------


def _create_image_tags(call: Call, lookups: Lookups) -> list[Authorization]:
    """CreateImage and CopyImage with TagSpecifications: ec2:CreateTags with ec2:CreateAction."""
    checks = []
    for kind in ("image", "snapshot"):
        tags = spec_tags(call, kind)
        if tags is not None:
            arn = _action("ec2", "CreateTags").arn(kind, call.region, call.account)
            checks.append(_create_tags(call, kind, arn, call.operation, tags))
    return checks


def _ecs_tags_on_create(call: Call, lookups: Lookups) -> list[Authorization]:
    checks = []
    tags = tag_list(call.params.get("tags"), "key", "value")
    if call.operation == "CreateService":
        kind, arn = "service", service_arn(call, call.params.get("cluster"), call.params["serviceName"])
        # The role ECS uses for a classic load balancer; a task's roles are passed with its definition.
        passed = [(call.params.get("role"), "ecs.amazonaws.com")]
    else:
        kind = "task-definition"
        arn = f"arn:aws:ecs:{call.region}:{call.account}:task-definition/{call.params['family']}:*"
        passed = [
            (call.params.get(key), "ecs-tasks.amazonaws.com") for key in ("taskRoleArn", "executionRoleArn")
        ]
    if tags:
        action = _action("ecs", "TagResource")
        context: dict[str, ContextValue] = {"ecs:CreateAction": call.operation}
        context.update(request_tag_context(action, kind, tags))
        checks.append(Authorization(action=action, resource_type=kind, arn=arn, context=context))
    return checks + [_pass_role(str(role), service) for role, service in passed if role]


# Secrets Manager, SNS, Scheduler --------------------------------------------------------------------


def _topic_key(call: Call, lookups: Lookups) -> list[Authorization]:
    topic_arn = str(call.params.get("TopicArn") or call.params.get("TargetArn") or "")
    key_id = lookups.topic_key(topic_arn)
    key_arn = lookups.kms_key_arn(key_id, region=topic_arn.split(":")[3]) if key_id else None
    if key_arn is None:
        return []
    context: dict[str, ContextValue] = {"kms:ViaService": f"sns.{topic_arn.split(':')[3]}.amazonaws.com"}
    return [
        _authorization("kms", "GenerateDataKey", "key", key_arn, context),
        _authorization("kms", "Decrypt", "key", key_arn, context),
    ]


def _secret_key(call: Call, lookups: Lookups) -> list[Authorization]:
    secret = lookups.secret(call.params["SecretId"])
    if secret is None:
        return []
    key_arn = lookups.kms_key_arn(str(secret.get("KmsKeyId") or "alias/aws/secretsmanager"))
    if key_arn is None:
        return []
    context: dict[str, ContextValue] = {
        "kms:ViaService": f"secretsmanager.{call.region}.amazonaws.com",
        "kms:EncryptionContext:SecretARN": str(secret["ARN"]),
    }
    return [_authorization("kms", "Decrypt", "key", key_arn, context)]


def _schedule_role(call: Call, lookups: Lookups) -> list[Authorization]:
    role = (call.params.get("Target") or {}).get("RoleArn")
    return [_pass_role(str(role), "scheduler.amazonaws.com")] if role else []


def _automation_role(call: Call, lookups: Lookups) -> list[Authorization]:
    roles = (call.params.get("Parameters") or {}).get("AutomationAssumeRole") or []
    return [_pass_role(str(role), "ssm.amazonaws.com") for role in roles if role]


def _run_instances_checks(call: Call, lookups: Lookups) -> list[Authorization]:
    """A direct RunInstances: iam:PassRole for the instance profile's role, ec2:CreateTags on what it tags."""
    checks = []
    profile = call.params.get("IamInstanceProfile")
    if profile:
        checks += [
            _pass_role(arn, "ec2.amazonaws.com") for arn in lookups.instance_profile_role_arns(dict(profile))
        ]
    run = _action("ec2", "RunInstances")
    for kind in ("instance", "volume", "network-interface"):
        tags = spec_tags(call, kind)
        if tags:
            checks.append(
                _create_tags(call, kind, run.arn(kind, call.region, call.account), "RunInstances", tags)
            )
    return checks


_IMPLICIT = {
    ("ec2", "RunInstances"): _run_instances_checks,
    ("autoscaling", "CreateAutoScalingGroup"): _group_launch_checks,
    ("autoscaling", "UpdateAutoScalingGroup"): _group_launch_checks,
    ("autoscaling", "StartInstanceRefresh"): _group_launch_checks,
    ("autoscaling", "CreateLaunchConfiguration"): _launch_configuration_checks,
    ("ec2", "CreateImage"): _create_image_tags,
    ("ec2", "CopyImage"): _create_image_tags,
    ("ec2", "CreateLaunchTemplateVersion"): _template_version_image,
    ("ecs", "CreateService"): _ecs_tags_on_create,
    ("ecs", "RegisterTaskDefinition"): _ecs_tags_on_create,
    ("secretsmanager", "GetSecretValue"): _secret_key,
    ("sns", "Publish"): _topic_key,
    ("scheduler", "CreateSchedule"): _schedule_role,
    ("scheduler", "UpdateSchedule"): _schedule_role,
    ("ssm", "StartAutomationExecution"): _automation_role,
}
