"""Hold every AWS call an Opsflow function or state machine makes to the IAM policies of its role.

A call made inside a Lambda handler runs as that function's role, a call made by a Step Functions
execution (its Lambda invokes) as the state machine's role, exactly as deployed. Calls made by tests,
the demo or the runtime itself carry no principal and are not held (they stand for the operator).

The hook sits in botocore (`before-parameter-build` keeps the caller's parameters, `before-call`
answers a denied call with the error AWS returns), so the application's code and clients are the
deployed ones, and its adapters see the same `ClientError` they would see on AWS.
"""

from __future__ import annotations

import contextvars
import io
import json
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock

from botocore import handlers
from botocore.awsrequest import AWSResponse
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.sts.models import sts_backends

from opsflow_local.iam.calls import Authorization, Call, direct_authorizations
from opsflow_local.iam.implicit import implicit_authorizations
from opsflow_local.iam.lookups import AdminClients, Lookups
from opsflow_local.iam.policy import Context, Decision, Request, evaluate, names_role, resource_policy
from opsflow_local.iam.roles import DeployedRoles, Role


def authorizations(call: Call, lookups: Lookups) -> list[Authorization]:
    """Everything AWS authorizes for one call: its action, then what it checks on the caller's behalf."""
    return direct_authorizations(call, lookups) + implicit_authorizations(call, lookups)


@dataclass(frozen=True)
class Principal:
    role_arn: str
    session_name: str


_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "opsflow_principal", default=None
)


@contextmanager
def acting_as(principal: Principal | None) -> Iterator[None]:
    """Run the block as `principal` (None: as the operator, not held to any policy)."""
    token = _principal.set(principal)
    try:
        yield
    finally:
        _principal.reset(token)


@dataclass(frozen=True)
class Denial:
    principal_arn: str
    authorization: Authorization
    decision: Decision
    # The role's trust policy refused it (or there is no such role), not the caller's own policies.
    by_trust: bool = False

    @property
    def message(self) -> str:
        # The wording AWS uses (IAM User Guide, "Troubleshoot access denied error messages"); a refusal by a
        # role's trust policy names no policy type.
        action = self.authorization.action.full_name
        text = f"User: {self.principal_arn} is not authorized to perform: {action} on resource: {self.authorization.arn}"
        if self.by_trust:
            return text
        why = (
            "with an explicit deny in an identity-based policy"
            if self.decision is Decision.EXPLICIT_DENY
            else f"because no identity-based policy allows the {action} action"
        )
        text += f" {why}"
        if self.authorization.on_behalf_of:
            text += f" (checked by AWS for {self.authorization.on_behalf_of})"
        return text


# Error codes as each service's API reference names its access-denied error.
_ERROR_CODES = {
    "ec2": ("UnauthorizedOperation", 403),
    "autoscaling": ("AccessDenied", 403),
    "elbv2": ("AccessDenied", 403),
    "rds": ("AccessDenied", 403),
    "iam": ("AccessDenied", 403),
    "sts": ("AccessDenied", 403),
    "sqs": ("AccessDenied", 403),
}


def error_response(service: str, denial: Denial) -> tuple[AWSResponse, dict[str, Any]]:
    code, status = _ERROR_CODES.get(service, ("AccessDeniedException", 400))
    message = denial.message
    if service == "ec2":
        message = (
            f"You are not authorized to perform this operation. {message}. Encoded authorization failure "
            "message: (the embedded runtime does not encode it)"
        )
    body = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return AWSResponse("https://iam.embedded", status, {}, io.BytesIO(json.dumps(body).encode())), body


class IamEnforcement:
    """The IAM evaluation of one embedded deployment (the hub, and the spoke stacks of other accounts);
    `install` makes it hold calls until the stack closes."""

    def __init__(self, roles: DeployedRoles, region: str, account: str, admin: AdminClients) -> None:
        self.roles = roles
        self.region = region
        self.account = account
        # The organization every embedded account belongs to (aws:PrincipalOrgID), when one is simulated.
        self.organization_id: str | None = None
        self.denials: list[Denial] = []
        self.calls_held = 0
        # Calls held by the account and region they were made in, and by operation ("sts:AssumeRole").
        self.calls_by_place: Counter[tuple[str, str]] = Counter()
        self.calls_by_operation: Counter[str] = Counter()
        self._admin = admin
        self._lookups: dict[tuple[str, str], Lookups] = {}
        self._spoke_roles: dict[str, Role] = {}
        self._sessions: dict[str, Principal | None] = {}  # access key id -> the deployed role it signs as
        self._lock = threading.Lock()

    def add_roles(self, roles: Iterable[Role]) -> None:
        """Roles a spoke stack created in another account: calls signed with their sessions are held too."""
        for role in roles:
            self._spoke_roles[role.arn] = role

    def lookups(self, account: str, region: str) -> Lookups:
        with self._lock:
            if (account, region) not in self._lookups:
                self._lookups[(account, region)] = Lookups(self._admin, region, account)
            return self._lookups[(account, region)]

    def principal_arn(self, principal: Principal) -> str:
        role = self._role(principal)
        return f"arn:aws:sts::{_account_of(role.arn)}:assumed-role/{role.name}/{principal.session_name}"

    def _role(self, principal: Principal) -> Role:
        role = self.roles.by_arn(principal.role_arn) or self._spoke_roles.get(principal.role_arn)
        if role is None:
            raise LookupError(f"{principal.role_arn} is not a role of the template or of a spoke stack")
        return role

    def account_of(self, principal: Principal) -> str:
        return _account_of(self._role(principal).arn)

    def session_principal(self, access_key: str | None) -> Principal | None:
        """The deployed role a session's credentials were issued for (a spoke role a function assumed), or
        None for the operator's and the functions' own credentials."""
        if not access_key:
            return None
        with self._lock:
            if access_key in self._sessions:
                return self._sessions[access_key]
        found = None
        for account in list(sts_backends.values()):
            for backend in list(account.values()):
                for assumed in list(backend.assumed_roles):
                    if assumed.access_key_id == access_key and assumed.role_arn in self._spoke_roles:
                        found = Principal(assumed.role_arn, assumed.session_name)
        with self._lock:
            self._sessions[access_key] = found
        return found

    def check(self, principal: Principal, call: Call) -> Denial | None:
        """The first authorization of `call` that the principal's policies do not allow, or None."""
        role = self._role(principal)
        with self._lock:
            self.calls_held += 1
            self.calls_by_place[(call.account, call.region)] += 1
            self.calls_by_operation[f"{call.service}:{call.operation}"] += 1
        with acting_as(None):  # the lookups are the runtime's, not the principal's
            for authorization in authorizations(call, self.lookups(call.account, call.region)):
                context = self._context(role, call, authorization)
                request = Request(
                    action=authorization.action.full_name, resource=authorization.arn, context=context
                )
                identity = decision = evaluate(role.policies, request)
                if authorization.trust_of is not None:
                    decision = _with_trust(identity, authorization, role, context)
                if decision is not Decision.ALLOW:
                    by_trust = identity is Decision.ALLOW
                    denial = Denial(self.principal_arn(principal), authorization, decision, by_trust)
                    with self._lock:
                        self.denials.append(denial)
                    return denial
        return None

    def _context(self, role: Role, call: Call, authorization: Authorization) -> Context:
        values: dict[str, Any] = {
            "aws:PrincipalArn": role.arn,
            "aws:PrincipalAccount": _account_of(role.arn),
            "aws:PrincipalType": "AssumedRole",
            "aws:RequestedRegion": call.region,
            "aws:ViaAWSService": "true" if authorization.on_behalf_of else "false",
            **({"aws:PrincipalOrgID": self.organization_id} if self.organization_id else {}),
            **authorization.context,
        }
        return Context(values, lookup=authorization.lookup_key)

    # Installation ------------------------------------------------------------------------------

    def install(self, stack: ExitStack) -> None:
        global _active
        _active = self
        stack.callback(_deactivate, self)
        enforcement = self

        original = ExecutionWorker._execution_logic

        def execution_logic(worker: ExecutionWorker) -> None:
            # An execution's Tasks run as the state machine's role.
            details = worker._evaluation_details
            role_arn = details.aws_execution_details.role_arn
            principal = (
                Principal(role_arn, details.execution_details.name)
                if enforcement.roles.by_arn(role_arn)
                else None
            )
            with acting_as(principal):
                original(worker)

        stack.enter_context(mock.patch.object(ExecutionWorker, "_execution_logic", execution_logic))


_active: IamEnforcement | None = None
_hooks_registered = False
PARAMS_KEY = "opsflow_iam_params"


def _account_of(arn: str) -> str:
    return arn.split(":")[4]


def _with_trust(identity: Decision, authorization: Authorization, role: Role, context: Context) -> Decision:
    """Add a role's trust policy to the identity decision, as IAM does: the trust policy must always allow
    ("IAM role trust policies ... must explicitly allow access for principals", Policy evaluation logic);
    across accounts the caller's identity policy must allow too ("Cross-account policy evaluation logic"),
    and so it must within one account unless the trust policy names the caller's role itself rather than
    its account. An explicit deny in either wins; a role that does not exist allows nothing."""
    assert authorization.trust_of is not None
    trust_policy = authorization.trust_of()
    trust = (
        Decision.IMPLICIT_DENY
        if trust_policy is None
        else resource_policy(
            trust_policy, role.arn, _account_of(role.arn), authorization.action.full_name, context
        )
    )
    if Decision.EXPLICIT_DENY in (identity, trust):
        return Decision.EXPLICIT_DENY
    if trust is not Decision.ALLOW:
        return Decision.IMPLICIT_DENY
    same_account = _account_of(authorization.arn) == _account_of(role.arn)
    if same_account and trust_policy is not None and names_role(trust_policy, role.arn):
        return Decision.ALLOW
    return identity


def _deactivate(enforcement: IamEnforcement) -> None:
    global _active
    if _active is enforcement:
        _active = None


def _access_key(request_signer: Any) -> str | None:
    credentials = getattr(request_signer, "_credentials", None)
    if credentials is None:
        return None
    frozen = (
        credentials.get_frozen_credentials()
        if hasattr(credentials, "get_frozen_credentials")
        else credentials
    )
    return getattr(frozen, "access_key", None)


def _register_hooks_once() -> None:
    # Every botocore session created from now on registers these (moto registers its own stub the same way).
    global _hooks_registered
    if _hooks_registered:
        return
    handlers.BUILTIN_HANDLERS.append(("before-parameter-build", _keep_params))
    handlers.BUILTIN_HANDLERS.append(("before-call", _authorize))
    _hooks_registered = True


def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context[PARAMS_KEY] = dict(params)


def _authorize(
    model: Any, context: dict[str, Any], request_signer: Any, **_: Any
) -> tuple[AWSResponse, dict[str, Any]] | None:
    enforcement = _active
    if enforcement is None:
        return None
    # A call signed with a spoke role's session runs as that role, in its account, whoever makes it.
    principal = enforcement.session_principal(_access_key(request_signer)) or _principal.get()
    if principal is None:
        return None
    service = model.service_model.service_name
    call = Call(
        service=service,
        operation=model.name,
        params=context.get(PARAMS_KEY, {}),
        region=request_signer.region_name,
        account=enforcement.account_of(principal),
    )
    denial = enforcement.check(principal, call)
    return None if denial is None else error_response(service, denial)


# Registered once, when the runtime is imported: every botocore session made afterwards, the runtime's
# own included, carries the hooks; they hold a call only while an enforcement is active and the call has
# a principal.
_register_hooks_once()
