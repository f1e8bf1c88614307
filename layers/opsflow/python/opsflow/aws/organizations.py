"""AWS Organizations adapter: whether an account is an active member of the hub's organization."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from opsflow.aws.errors import aws_call, error_code

# What a hub that is neither the management account nor a delegated administrator hears, or one outside an
# organization: no discovery there, and accounts are registered by hand.
_NOT_DISCOVERABLE = frozenset(
    {"AccessDenied", "AccessDeniedException", "AWSOrganizationsNotInUseException", "AccountNotFoundException"}
)


class Organizations:
    def __init__(self, client: Any) -> None:
        self._organizations = client

    def active_member(self, account: str) -> str | None:
        """The account's name if it is an ACTIVE member of the organization, else None."""
        try:
            found = self._organizations.describe_account(AccountId=account)["Account"]
        except ClientError as error:
            if error_code(error) in _NOT_DISCOVERABLE:
                return None
            with aws_call("DescribeAccount"):
                raise
        state = found.get("State") or found.get("Status")
        return str(found.get("Name") or account) if state == "ACTIVE" else None
