"""What AWS knows when it authorizes a call and the caller does not say: a resource's current tags, a
group's ARN, a launch template's contents. Read as the operator, through the embedded account."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

# The operator's client for (service, account, region).
AdminClients = Callable[[str, str, str], Any]


class Lookups:
    """Reads in one account and region, as the operator."""

    def __init__(self, admin: AdminClients, region: str, account: str) -> None:
        self._admin = admin
        self.region = region
        self.account = account
        self._hash_keys: dict[str, str] = {}

    def _client(self, service: str, region: str | None = None) -> Any:
        return self._admin(service, self.account, region or self.region)

    # Tags of existing resources, by ARN ---------------------------------------------------------

    def tags(self, arn: str) -> dict[str, str]:
        service = arn.split(":", 5)[2]
        resource = arn.split(":", 5)[5]
        try:
            if service == "ec2":
                resource_id = resource.split("/", 1)[1]
                # An image's ARN names its region (a CopyImage source is in another one).
                described = self._client("ec2", arn.split(":", 5)[3] or None).describe_tags(
                    Filters=[{"Name": "resource-id", "Values": [resource_id]}]
                )["Tags"]
                return {t["Key"]: t["Value"] for t in described}
            if service == "autoscaling":
                name = resource.rsplit("autoScalingGroupName/", 1)[-1]
                groups = self._client("autoscaling").describe_auto_scaling_groups(
                    AutoScalingGroupNames=[name]
                )
                return {t["Key"]: t["Value"] for group in groups["AutoScalingGroups"] for t in group["Tags"]}
            if service == "ecs":
                listed = self._client("ecs").list_tags_for_resource(resourceArn=arn)["tags"]
                return {t["key"]: t["value"] for t in listed}
            if service == "elasticloadbalancing":
                described = self._client("elbv2").describe_tags(ResourceArns=[arn])["TagDescriptions"]
                return {t["Key"]: t["Value"] for d in described for t in d["Tags"]}
            if service == "rds":
                listed = self._client("rds").list_tags_for_resource(ResourceName=arn)["TagList"]
                return {t["Key"]: t["Value"] for t in listed}
            if service == "lambda":
                return dict(self._client("lambda").list_tags(Resource=arn)["Tags"])
            if service == "secretsmanager":
                described = self._client("secretsmanager").describe_secret(SecretId=arn)
                return {t["Key"]: t["Value"] for t in described.get("Tags", [])}
        except ClientError:
            return {}  # a resource that does not exist has no tags; the call itself then fails as AWS fails it
        raise NotImplementedError(f"the embedded runtime does not read the tags of {arn}")

    # Resources named in a request by name -------------------------------------------------------

    def group(self, name: str) -> dict[str, Any] | None:
        groups = self._client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])
        found = groups["AutoScalingGroups"]
        return dict(found[0]) if found else None

    def launch_configuration_arn(self, name: str) -> str | None:
        found = self._client("autoscaling").describe_launch_configurations(LaunchConfigurationNames=[name])
        configurations = found["LaunchConfigurations"]
        return str(configurations[0]["LaunchConfigurationARN"]) if configurations else None

    def launch_template_id(self, template: dict[str, Any]) -> str | None:
        """The id of a launch template given as {LaunchTemplateId} or {LaunchTemplateName}."""
        if template.get("LaunchTemplateId"):
            return str(template["LaunchTemplateId"])
        name = template.get("LaunchTemplateName")
        if not name:
            return None
        try:
            found = self._client("ec2").describe_launch_templates(LaunchTemplateNames=[name])
        except ClientError:
            return None
        return str(found["LaunchTemplates"][0]["LaunchTemplateId"]) if found["LaunchTemplates"] else None

    def launch_template_data(self, template_id: str, version: str | None) -> dict[str, Any]:
        """The data of a launch template version ($Default when none is given, as Auto Scaling uses)."""
        try:
            found = self._client("ec2").describe_launch_template_versions(
                LaunchTemplateId=template_id, Versions=[str(version or "$Default")]
            )
        except ClientError:
            return {}
        versions = found["LaunchTemplateVersions"]
        return dict(versions[0]["LaunchTemplateData"]) if versions else {}

    def table_hash_key(self, table: str) -> str | None:
        """The name of a table's partition key; None for a table that does not exist."""
        if table not in self._hash_keys:
            try:
                schema = self._client("dynamodb").describe_table(TableName=table)["Table"]["KeySchema"]
            except ClientError:
                return None
            self._hash_keys[table] = next(k["AttributeName"] for k in schema if k["KeyType"] == "HASH")
        return self._hash_keys[table]

    def secret(self, secret_id: str) -> dict[str, Any] | None:
        try:
            return dict(self._client("secretsmanager").describe_secret(SecretId=secret_id))
        except ClientError:
            return None

    def topic_key(self, topic_arn: str) -> str | None:
        """The KMS key a topic is encrypted under (its KmsMasterKeyId), None for a topic without one."""
        try:
            region = topic_arn.split(":")[3]
            attributes = self._client("sns", region).get_topic_attributes(TopicArn=topic_arn)["Attributes"]
        except (ClientError, IndexError):
            return None
        return attributes.get("KmsMasterKeyId") or None

    def kms_key_arn(self, key_id: str, region: str | None = None) -> str | None:
        """The ARN of a customer managed key, None for an AWS managed one (`alias/aws/...`)."""
        if key_id.startswith("alias/aws/"):
            return None
        try:
            metadata = self._client("kms", region).describe_key(KeyId=key_id)["KeyMetadata"]
        except ClientError:
            return None
        return None if metadata.get("KeyManager") == "AWS" else str(metadata["Arn"])

    def instance_profile_role_arns(self, profile: dict[str, Any]) -> list[str]:
        """The roles in an instance profile given as {Arn} or {Name}: the roles passed to EC2."""
        name = profile.get("Name") or str(profile.get("Arn", "")).rsplit("/", 1)[-1]
        if not name:
            return []
        try:
            found = self._client("iam").get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
        except ClientError:
            return []
        return [str(role["Arn"]) for role in found["Roles"]]

    def role_trust_policy(self, role_arn: str) -> dict[str, Any] | None:
        """A role's trust policy, read in the role's own account; None when there is no such role."""
        account = role_arn.split(":")[4]
        try:
            role = self._admin("iam", account, self.region).get_role(RoleName=role_arn.rsplit("/", 1)[-1])[
                "Role"
            ]
        except (ClientError, LookupError):
            return None  # no such role, or an account with nothing in it
        document = role["AssumeRolePolicyDocument"]
        if isinstance(document, str):
            document = json.loads(urllib.parse.unquote(document))
        return dict(document)

    def organization(self) -> tuple[str, str] | None:
        """The management account and id of the organization the account is in, if any."""
        try:
            found = self._client("organizations").describe_organization()["Organization"]
        except ClientError:
            return None
        return str(found["MasterAccountId"]), str(found["Id"])

    def secret_arn(self, secret_id: str) -> str:
        described = self.secret(secret_id)
        if described is None:
            return f"arn:aws:secretsmanager:{self.region}:{self.account}:secret:{secret_id}"
        return str(described["ARN"])
