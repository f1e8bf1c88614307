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
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock

from botocore import handlers
from botocore.awsrequest import AWSResponse
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from opsflow_local.iam.calls import Authorization, Call, direct_authorizations
from opsflow_local.iam.implicit import implicit_authorizations
from opsflow_local.iam.lookups import Lookups
from opsflow_local.iam.policy import Context, Decision, Request, evaluate
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

    @property
    def message(self) -> str:
        # The wording AWS uses (IAM User Guide, "Troubleshoot access denied error messages").
        action = self.authorization.action.full_name
        why = (
            "with an explicit deny in an identity-based policy"
            if self.decision is Decision.EXPLICIT_DENY
            else f"because no identity-based policy allows the {action} action"
        )
        text = (
            f"User: {self.principal_arn} is not authorized to perform: {action} on resource: "
            f"{self.authorization.arn} {why}"
        )
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
    """The IAM evaluation of one embedded deployment; `install` makes it hold calls until the stack closes."""

    def __init__(self, roles: DeployedRoles, region: str, account: str, admin: Callable[[str], Any]) -> None:
        self.roles = roles
        self.region = region
        self.account = account
        self.lookups = Lookups(admin, region, account)
        self.denials: list[Denial] = []
        self.calls_held = 0
        self._lock = threading.Lock()

    def principal_arn(self, principal: Principal) -> str:
        role = self._role(principal)
        return f"arn:aws:sts::{self.account}:assumed-role/{role.name}/{principal.session_name}"

    def _role(self, principal: Principal) -> Role:
        role = self.roles.by_arn(principal.role_arn)
        if role is None:
            raise LookupError(f"{principal.role_arn} is not a role of the template")
        return role

    def check(self, principal: Principal, call: Call) -> Denial | None:
        """The first authorization of `call` that the principal's policies do not allow, or None."""
        role = self._role(principal)
        with self._lock:
            self.calls_held += 1
        with acting_as(None):  # the lookups are the runtime's, not the principal's
            for authorization in authorizations(call, self.lookups):
                request = Request(
                    action=authorization.action.full_name,
                    resource=authorization.arn,
                    context=self._context(role, authorization),
                )
                decision = evaluate(role.policies, request)
                if decision is not Decision.ALLOW:
                    denial = Denial(self.principal_arn(principal), authorization, decision)
                    with self._lock:
                        self.denials.append(denial)
                    return denial
        return None

    def _context(self, role: Role, authorization: Authorization) -> Context:
        values: dict[str, Any] = {
            "aws:PrincipalArn": role.arn,
            "aws:PrincipalAccount": self.account,
            "aws:PrincipalType": "AssumedRole",
            "aws:RequestedRegion": self.region,
            "aws:ViaAWSService": "true" if authorization.on_behalf_of else "false",
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


def _deactivate(enforcement: IamEnforcement) -> None:
    global _active
    if _active is enforcement:
        _active = None


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
    enforcement, principal = _active, _principal.get()
    if enforcement is None or principal is None:
        return None
    service = model.service_model.service_name
    call = Call(
        service=service,
        operation=model.name,
        params=context.get(PARAMS_KEY, {}),
        region=request_signer.region_name,
        account=enforcement.account,
    )
    denial = enforcement.check(principal, call)
    return None if denial is None else error_response(service, denial)


# Registered once, when the runtime is imported: every botocore session made afterwards, the runtime's
# own included, carries the hooks; they hold a call only while an enforcement is active and the call has
# a principal.
_register_hooks_once()
