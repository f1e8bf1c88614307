"""A runbook action is checked when its rule is put, not when a failure fires it: the document must be an
Automation document the rule's account and region have, given every parameter it requires and none it lacks."""

from __future__ import annotations

from opsflow.aws.ssm import Ssm
from opsflow.errors import InvalidField
from opsflow.remediation.rules import Runbook

# What Opsflow itself fills in: the role the runbook runs as is the stack's runbook role.
FILLED_IN = frozenset({"AutomationAssumeRole"})


def check(runbook: Runbook, ssm: Ssm, where: str) -> None:
    """Raise InvalidField naming the field to fix, unless `runbook` can run in `where` ("account/region")."""
    document = ssm.document(runbook.document, runbook.document_version)
    if document is None:
        version = f" version {runbook.document_version}" if runbook.document_version else ""
        raise InvalidField(
            "action.document",
            f"no Systems Manager document {runbook.document}{version} in {where}: name an AWS-owned runbook "
            "(AWS-RestartEC2Instance) or one of yours there",
        )
    if document.document_type != "Automation":
        raise InvalidField(
            "action.document",
            f"{runbook.document} is a {document.document_type} document; a runbook is an Automation document",
        )
    given = sorted(FILLED_IN & set(runbook.parameters))
    if given:
        raise InvalidField(
            f"action.parameters.{given[0]}",
            "is filled in by Opsflow: the runbook runs as the stack's runbook role (RunbookPolicyArns adds to "
            "what it may do)",
        )
    unknown = sorted(set(runbook.parameters) - set(document.parameters))
    if unknown:
        raise InvalidField(
            f"action.parameters.{unknown[0]}",
            f"is not a parameter of {runbook.document}; it takes {', '.join(sorted(document.parameters)) or 'none'}",
        )
    missing = [name for name in document.required if name not in runbook.parameters and name not in FILLED_IN]
    if missing:
        raise InvalidField(
            "action.parameters",
            f"{runbook.document} requires {', '.join(missing)}; "
            'give it (`{"InstanceId": ["{{resource}}"]}` passes the resource acted on)',
        )
