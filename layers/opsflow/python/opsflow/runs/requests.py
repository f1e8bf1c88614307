"""What every run request shares, and how a request from any trigger is read: the model comes from the
registry, so each workflow's own model (`opsflow.workflows.<name>.request`) is the one every trigger uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from opsflow.aws.target import Target

# Tag keys Opsflow writes itself; a request may not set them.
RESERVED_TAG_PREFIXES = ("aws:", "opsflow:")

# Each model's validator is built when it first validates, not at import: a steps function validates only
# its own workflow's request, and most API routes validate none.
REQUEST_CONFIG = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)


class RunRequest(BaseModel):
    """The base of every workflow's request model; each sets `workflow` to its own literal name."""

    model_config = REQUEST_CONFIG

    workflow: str
    dry_run: bool = Field(default=False, description="Return the plan and change nothing.")
    account: Annotated[
        str | None,
        Field(
            pattern=r"^\d{12}$",
            description="The AWS account the target is in (12 digits; default: the hub's). Another account "
            "must be registered (PUT /accounts/{account}) and carry the spoke stack.",
        ),
    ] = None
    region: Annotated[
        str | None,
        Field(
            pattern=r"^[a-z]{2}(-[a-z]+)+-\d$",
            description="The region the target is in (default: the hub's); one the account is registered for.",
        ),
    ] = None

    def target(self) -> Target:
        raise NotImplementedError

    def places(self) -> list[Target]:
        """Every account and region the run acts in: its target's, unless the workflow spans several."""
        return [self.target()]

    def located(self, kind: str, name: str) -> Target:
        """A target in the request's account and region."""
        return Target(kind, name, self.account, self.region)

    def at_home(self, account: str, region: str) -> RunRequest:
        """The request with the hub's own account and region left unsaid, so one group asked for with and
        without them is one target with one lock."""
        return self.model_copy(
            update={
                "account": None if self.account == account else self.account,
                "region": None if self.region == region else self.region,
            }
        )

    def holds(self) -> list[Target]:
        """What a run locks while it runs: its target, and whatever else another run must not touch."""
        return [self.target()]


def parse_run_request(payload: Any, strict: bool | None = None, people_only: bool = True) -> RunRequest:
    """Validate a request from any trigger; raises pydantic's ValidationError. `strict=False` with
    `people_only=False` reads one back from its JSON record, whichever workflow wrote it."""
    from opsflow.runs import registry

    return registry.request_adapter(people_only).validate_python(payload, strict=strict)


def describe_validation_errors(errors: Sequence[Any], what: str = "workflow") -> list[dict[str, str]]:
    """Each problem as `{field, problem}`, worded for a person fixing their request (`what` the body is: a
    workflow's request, a remediation rule).

    Takes pydantic's error dicts (`ValidationError.errors()`, or Powertools' RequestValidationError)."""
    problems = []
    for item in errors:
        location = ".".join(_field_path(item["loc"]))
        kind = item["type"]
        if kind == "json_invalid":
            location, message = "(body)", "is not valid JSON"
        elif kind == "missing" and not location:
            message = (
                "a JSON object with a workflow field is required"
                if what == "workflow"
                else f"a JSON object (the {what}) is required"
            )
        elif kind == "missing":
            message = "is required"
        elif kind == "extra_forbidden":
            message = f"is not a field of this {what}"
        elif kind in ("union_tag_invalid", "union_tag_not_found") and location in ("", "workflow"):
            location = location or "workflow"
            message = f"must be one of: {', '.join(_workflow_names())}"
        elif kind == "union_tag_invalid":
            expected = str((item.get("ctx") or {}).get("expected_tags", "")).replace("'", "")
            tag = (item.get("ctx") or {}).get("tag", "")
            discriminator = str((item.get("ctx") or {}).get("discriminator", "")).strip("'")
            location = f"{location}.{discriminator}" if location and discriminator else location
            message = f"{tag!r} is not one of: {expected}" if expected else item["msg"]
        elif kind == "union_tag_not_found":
            field = str((item.get("ctx") or {}).get("discriminator", "type")).strip("'")
            message = f"needs a {field} field saying which kind it is"
        elif kind in ("json_invalid", "model_attributes_type", "dict_type") and not location:
            message = "the body must be a JSON object"
        else:
            message = item["msg"]
            if message.startswith("Value error, "):
                message = message[len("Value error, ") :]
            message = message[0].lower() + message[1:] if message else message
        problems.append({"field": location or "(body)", "problem": message})
    return problems


def _field_path(loc: Sequence[Any]) -> list[str]:
    """The field's path as people write it: without `body`, and without the tag pydantic adds after a tagged
    union's field (a workflow's name, a rule's trigger or action kind)."""
    workflows = _workflow_names(False)
    path: list[str] = []
    for part in loc:
        if part == "body" or part in workflows:
            continue
        if path and path[-1] in ("trigger", "action") and isinstance(part, str) and part in _rule_kinds():
            continue
        path.append(str(part))
    return path


def _rule_kinds() -> frozenset[str]:
    from opsflow.remediation.rules import KINDS

    return KINDS


def _workflow_names(people_only: bool = True) -> tuple[str, ...]:
    from opsflow.runs import registry

    return registry.names(people_only)
