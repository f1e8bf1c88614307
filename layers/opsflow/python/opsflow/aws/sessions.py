"""Clients in the account and region a run acts on.

The hub's own account uses the function's credentials in any region. Another account is reached only
through its spoke role (`spoke/template.yaml`), assumed with the run's id as `SourceIdentity` and as a
session tag, so the spoke's CloudTrail names the Opsflow run behind every call. Credentials are kept until
shortly before they expire; the hub's own credentials are never used for a spoke's resources.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.exceptions import ClientError

from opsflow.aws.errors import from_client_error
from opsflow.errors import Refused

SESSION_SECONDS = 3600
# Credentials are renewed this long before they expire, so no call is signed with ones about to lapse.
RENEW_BEFORE = timedelta(minutes=5)
# A warm function serves many runs; each keeps its own sessions (their SourceIdentity differs).
KEPT_SESSIONS = 128
# What both SourceIdentity ([\w+=,.@-]) and a session tag value ([\p{L}\p{Z}\p{N}_.:/=+\-@]) take, in ASCII
# (STS API Reference, AssumeRole): the run id is both.
_IDENTITY_CHARACTERS = re.compile(r"[^A-Za-z0-9_+=.@-]")
_ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException"})


class SpokeUnreachable(Refused):
    """The account's spoke role could not be assumed: its stack is missing, or trusts another hub."""

    code = "SpokeUnreachable"

    def __init__(self, message: str, account: str, region: str | None) -> None:
        super().__init__(message)
        self.account = account
        self.region = region


@dataclass(frozen=True)
class Home:
    """Where Opsflow is deployed, and the name its spoke role has in every other account."""

    account: str
    region: str
    stack_name: str
    spoke_role_name: str

    @classmethod
    def from_env(cls) -> Home:
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""
        stack = os.environ.get("HUB_STACK_NAME", "opsflow")
        return cls(
            account=os.environ.get("HUB_ACCOUNT_ID", ""),
            region=region,
            stack_name=stack,
            spoke_role_name=os.environ.get("SPOKE_ROLE_NAME") or spoke_role_name(stack),
        )

    def is_home_account(self, account: str | None) -> bool:
        return account is None or account == self.account

    def role_arn(self, account: str) -> str:
        return f"arn:{partition(self.region)}:iam::{account}:role/{self.spoke_role_name}"

    def spoke_stack_advice(self, account: str, region: str | None) -> str:
        """What a person does about an account Opsflow cannot reach."""
        return (
            f"deploy spoke/template.yaml to account {account}"
            f"{f' in {region}' if region else ''} as stack {spoke_stack_name(self.stack_name)} with "
            f"HubAccountId={self.account} and HubStackName={self.stack_name} "
            "(or add the account to the hub's StackSet), then register it with PUT /accounts/"
            f"{account}"
        )


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def spoke_role_name(hub_stack: str) -> str:
    """The spoke role's name carries the hub's stack name: two hubs in one organization never collide."""
    return f"{hub_stack}-spoke-execution"[:64]


def spoke_stack_name(hub_stack: str) -> str:
    return f"{hub_stack}-spoke"


def source_identity(acting_for: str) -> str:
    cleaned = _IDENTITY_CHARACTERS.sub("-", acting_for)[:64]
    return cleaned if len(cleaned) >= 2 else f"opsflow-{cleaned}"


@dataclass(frozen=True)
class _Credentials:
    access_key: str
    secret_key: str
    token: str
    expires: datetime


class Sessions:
    """One factory keyed by (service, account, region) for the run being served (`acting_for`)."""

    def __init__(
        self,
        home: Home,
        hub_client: Callable[[str, str | None], Any],
        make_client: Callable[..., Any] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.home = home
        self._hub_client = hub_client
        self._make_client = make_client or _boto3_client
        self._now = now
        self._credentials: OrderedDict[tuple[str, str], _Credentials] = OrderedDict()
        self._clients: OrderedDict[tuple[str, str, str, str], tuple[_Credentials, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.assumed = 0  # role assumptions made, for benchmarks

    def client(self, service: str, account: str | None, region: str | None, acting_for: str) -> Any:
        region = region or self.home.region
        if self.home.is_home_account(account):
            return self._hub_client(service, region)
        assert account is not None
        credentials = self.credentials(account, acting_for, region)
        key = (service, account, region, acting_for)
        with self._lock:
            kept = self._clients.get(key)
            if kept is not None and kept[0] is credentials:
                self._clients.move_to_end(key)
                return kept[1]
        made = self._make_client(
            service,
            region_name=region,
            aws_access_key_id=credentials.access_key,
            aws_secret_access_key=credentials.secret_key,
            aws_session_token=credentials.token,
        )
        with self._lock:
            self._clients[key] = (credentials, made)
            while len(self._clients) > KEPT_SESSIONS * 4:
                self._clients.popitem(last=False)
        return made

    def credentials(self, account: str, acting_for: str, region: str | None = None) -> _Credentials:
        key = (account, acting_for)
        with self._lock:
            kept = self._credentials.get(key)
            if kept is not None and kept.expires - RENEW_BEFORE > self._now():
                self._credentials.move_to_end(key)
                return kept
        assumed = self._assume(account, acting_for, region)
        with self._lock:
            self._credentials[key] = assumed
            while len(self._credentials) > KEPT_SESSIONS:
                self._credentials.popitem(last=False)
        return assumed

    def _assume(self, account: str, acting_for: str, region: str | None) -> _Credentials:
        identity = source_identity(acting_for)
        sts = self._hub_client("sts", self.home.region)
        try:
            answer = sts.assume_role(
                RoleArn=self.home.role_arn(account),
                RoleSessionName=f"opsflow-{identity}"[:64],
                DurationSeconds=SESSION_SECONDS,
                SourceIdentity=identity,
                Tags=[{"Key": "opsflow:run", "Value": identity}],
            )
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in _ACCESS_DENIED:
                raise SpokeUnreachable(
                    f"Opsflow cannot assume its role {self.home.role_arn(account)} in account {account}: "
                    f"{self.home.spoke_stack_advice(account, region)}",
                    account,
                    region,
                ) from error
            raise from_client_error("AssumeRole", error) from error
        with self._lock:
            self.assumed += 1
        given = answer["Credentials"]
        expires = given["Expiration"]
        if isinstance(expires, str):
            expires = datetime.fromisoformat(expires.replace("Z", "+00:00"))
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        return _Credentials(given["AccessKeyId"], given["SecretAccessKey"], given["SessionToken"], expires)


_shared: list[boto3.session.Session] = []
_shared_lock = threading.Lock()


def _boto3_client(service: str, **kwargs: Any) -> Any:
    """A client on one shared boto3 session (a new session loads the endpoint data again: 0.1 s), made
    under a lock: a session does not make clients safely from several threads at once."""
    from opsflow.aws.clients import CONFIG

    with _shared_lock:
        if not _shared:
            _shared.append(boto3.session.Session())
        return _shared[0].client(service, config=CONFIG, **kwargs)  # type: ignore[call-overload]
