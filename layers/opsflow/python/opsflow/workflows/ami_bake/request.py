"""The AMI bake request."""

from __future__ import annotations

import re
import string
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from opsflow.aws.regions import check_region
from opsflow.aws.target import Target
from opsflow.runs.requests import REQUEST_CONFIG, RESERVED_TAG_PREFIXES, RunRequest
from opsflow.workflows.asg_refresh.request import RefreshOptions

IMAGE_NAME_FIELDS = frozenset({"asg_name", "instance_id", "run_id", "timestamp"})


class Builder(BaseModel):
    """A temporary instance to put new code on and image: launched like the group's instances (its launch
    template version's or launch configuration's image, instance type, security groups and instance
    profile, in one of its subnets) unless told otherwise, then given an SSM Run Command, and terminated
    whatever happens."""

    model_config = REQUEST_CONFIG

    image_id: Annotated[str, Field(pattern=r"^ami-[0-9a-f]{8,17}$")] | None = Field(
        default=None, description="Launch from this image; default: the image the group launches from."
    )
    instance_type: Annotated[str, Field(pattern=r"^[a-z0-9-]+\.[a-z0-9]+$")] | None = None
    subnet_id: Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")] | None = None
    instance_profile: Annotated[str, Field(min_length=1, max_length=2048)] | None = Field(
        default=None,
        description="Name or ARN; its role must let Systems Manager manage the instance "
        "(AmazonSSMManagedInstanceCore). Default: the group's.",
    )
    commands: (
        Annotated[list[Annotated[str, Field(min_length=1, max_length=4096)]], Field(max_length=100)] | None
    ) = Field(default=None, description="Shell lines to run with AWS-RunShellScript, as root, in order.")
    document: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_.:/-]{3,128}$")] | None = Field(
        default=None, description="An SSM Command document to run instead of commands."
    )
    parameters: dict[str, list[str]] = Field(
        default_factory=dict, description='The document\'s parameters, e.g. {"version": ["2.4.1"]}.'
    )
    timeout_seconds: Annotated[int, Field(ge=60, le=172800)] = Field(
        default=3600, description="How long the commands may run before the bake fails."
    )

    @model_validator(mode="after")
    def _one_way_to_run(self) -> Builder:
        if self.document is None and not self.commands:
            raise ValueError("give commands (shell lines to run on the builder) or a document")
        if self.document is not None and self.commands:
            raise ValueError("give commands or a document, not both")
        if self.parameters and self.document is None:
            raise ValueError("parameters are a document's; with commands, put the values in the commands")
        return self


AccountId = Annotated[str, Field(pattern=r"^\d{12}$")]
RegionName = Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")]
_KMS_KEY = re.compile(
    r"^arn:aws[a-z-]*:kms:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d):(?P<account>\d{12}):(?:key|alias)/[A-Za-z0-9/_:-]+$"
)


class TemplateTarget(BaseModel):
    """A launch template (in an account and region) to give a version that launches the region's copy."""

    model_config = REQUEST_CONFIG

    name: Annotated[
        str, Field(pattern=r"^[a-zA-Z0-9().\-/_]{3,128}$", description="The launch template's name.")
    ]
    region: RegionName
    account: AccountId | None = Field(default=None, description="Default: the group's account.")
    make_default: bool = Field(
        default=True, description="Make the new version the template's default (groups on $Default use it)."
    )

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        return check_region(value)


class Distribution(BaseModel):
    """Where the baked image goes once it is available: copies in other regions of the group's account,
    shared with accounts, organizations or OUs, and launched by the named launch templates."""

    model_config = REQUEST_CONFIG

    regions: Annotated[list[RegionName], Field(max_length=30)] = Field(
        default_factory=list, description="Regions to copy the image into (not the one it is baked in)."
    )
    accounts: Annotated[list[AccountId], Field(max_length=100)] = Field(
        default_factory=list, description="Accounts that may launch the image and its copies."
    )
    organizations: Annotated[
        list[
            Annotated[
                str, Field(pattern=r"^arn:aws[a-z-]*:organizations::\d{12}:organization/o-[a-z0-9]{10,32}$")
            ]
        ],
        Field(max_length=10),
    ] = Field(default_factory=list, description="Organizations (ARNs) whose accounts may launch them.")
    organizational_units: Annotated[
        list[
            Annotated[
                str,
                Field(
                    pattern=r"^arn:aws[a-z-]*:organizations::\d{12}:ou/o-[a-z0-9]{10,32}/ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$"
                ),
            ]
        ],
        Field(max_length=50),
    ] = Field(default_factory=list, description="Organizational units (ARNs) whose accounts may launch them.")
    kms_key_ids: dict[RegionName, str] = Field(
        default_factory=dict,
        description="Per region, the KMS key (ARN, in that region) to encrypt its copy with. An image "
        "encrypted with the AWS managed key aws/ebs cannot be shared: give a customer managed key.",
    )
    share_snapshots: bool = Field(
        default=False,
        description="Also let the accounts create volumes from the snapshots, which they need to copy the "
        "image into their own account (organizations and OUs cannot be given this).",
    )
    launch_templates: Annotated[list[TemplateTarget], Field(max_length=50)] = Field(default_factory=list)

    @field_validator("regions")
    @classmethod
    def _known_distinct_regions(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("names a region twice")
        return [check_region(region) for region in value]

    @field_validator("accounts")
    @classmethod
    def _distinct_accounts(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("names an account twice")
        return value

    @field_validator("kms_key_ids")
    @classmethod
    def _keys_in_their_regions(cls, value: dict[str, str]) -> dict[str, str]:
        for region, key in value.items():
            check_region(region)
            found = _KMS_KEY.match(key)
            if found is None:
                raise ValueError(
                    f"{region}: {key!r} is not a KMS key or alias ARN (arn:aws:kms:{region}:<account>:key/<id>); "
                    "an ARN says which region the key is in"
                )
            if found["region"] != region:
                raise ValueError(
                    f"{region}: key {key} is in {found['region']}; a copy in {region} is encrypted with a key "
                    f"in {region}"
                )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Distribution:
        extra = sorted(set(self.kms_key_ids) - set(self.regions))
        if extra:
            raise ValueError(
                f"kms_key_ids names {', '.join(extra)}, which regions does not: keys are for the copies"
            )
        seen: set[tuple[str | None, str, str]] = set()
        sharing = bool(self.organizations or self.organizational_units)
        for template in self.launch_templates:
            where = (template.account, template.region, template.name)
            if where in seen:
                raise ValueError(f"launch_templates names {template.name} in {template.region} twice")
            seen.add(where)
            if template.account and template.account not in self.accounts and not sharing:
                raise ValueError(
                    f"launch_templates: {template.name} is in account {template.account}, which may not launch "
                    "the image: add the account to accounts (or its organization or OU)"
                )
        if not (self.regions or self.accounts or self.organizations or self.organizational_units):
            raise ValueError(
                "give regions to copy the image into, or accounts, organizations or OUs to share it with"
            )
        if self.share_snapshots and not self.accounts:
            raise ValueError("share_snapshots gives accounts snapshot permissions: give accounts too")
        return self

    @property
    def shares(self) -> bool:
        return bool(self.accounts or self.organizations or self.organizational_units)


class AmiBakeRequest(RunRequest):
    """Image an instance, or a builder given new code, and publish the image to an Auto Scaling group's
    launch template or configuration."""

    workflow: Literal["ami_bake"]
    instance_id: Annotated[str, Field(pattern=r"^i-[0-9a-f]{8,17}$")] | None = Field(
        default=None, description="The instance to image (or give builder)."
    )
    builder: Builder | None = Field(
        default=None,
        description="Launch a builder, run commands on it and image it (instead of instance_id).",
    )
    asg_name: Annotated[str, Field(min_length=1, max_length=255, description="The group to publish to.")]
    image_name: Annotated[
        str,
        Field(
            min_length=3,
            max_length=128,
            description="AMI name template; fields: {asg_name}, {instance_id}, {run_id}, {timestamp}.",
        ),
    ] = "{asg_name}-{timestamp}"
    no_reboot: bool = Field(default=True, description="Image without rebooting the instance.")
    tags: dict[str, str] = Field(default_factory=dict, description="Extra tags for the image and snapshots.")
    keep_images: Annotated[int, Field(ge=1, le=100, description="Images baked for the group to keep.")] = 5
    refresh: RefreshOptions | None = Field(
        default=None, description="Roll the group's instances onto the new image with an instance refresh."
    )
    distribute: Distribution | None = Field(
        default=None,
        description="Copy the image into other regions, share it with accounts, and publish it to their "
        "launch templates, before it is published to the group.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> AmiBakeRequest:
        if (self.instance_id is None) == (self.builder is None):
            raise ValueError("give exactly one of instance_id (an instance to image) or builder")
        return self

    @field_validator("image_name")
    @classmethod
    def _known_fields_only(cls, value: str) -> str:
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as error:
            raise ValueError(f"is not a valid name template: {error}") from error
        unknown = fields - IMAGE_NAME_FIELDS
        if unknown:
            raise ValueError(
                f"uses unknown field(s) {', '.join(sorted(unknown))}; "
                f"available: {', '.join('{' + f + '}' for f in sorted(IMAGE_NAME_FIELDS))}"
            )
        return value

    @field_validator("tags")
    @classmethod
    def _no_reserved_tags(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > 40:
            raise ValueError("may hold at most 40 tags (AWS allows 50 per resource; Opsflow adds its own)")
        for key, tag_value in value.items():
            if key.lower().startswith(RESERVED_TAG_PREFIXES):
                raise ValueError(f"tag key {key!r} is reserved (keys starting with aws: or opsflow:)")
            if not 1 <= len(key) <= 128 or len(tag_value) > 256:
                raise ValueError(f"tag {key!r}: keys are 1-128 characters, values at most 256")
        return value

    def target(self) -> Target:
        return self.located("asg", self.asg_name)

    def places(self) -> list[Target]:
        """The group's place, each region its image is copied into, and each launch template's place."""
        target = self.target()
        if self.distribute is None:
            return [target]
        places = [target]
        for region in self.distribute.regions:
            places.append(Target("asg", self.asg_name, self.account, region))
        for template in self.distribute.launch_templates:
            places.append(Target("asg", self.asg_name, template.account or self.account, template.region))
        unique: dict[tuple[str | None, str | None], Target] = {}
        for place in places:
            unique.setdefault((place.account, place.region), place)
        return list(unique.values())
