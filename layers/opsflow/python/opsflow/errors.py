"""Domain errors. Each carries a message written for the person who asked for the run."""

from __future__ import annotations


class OpsflowError(Exception):
    """Base class: the message says what happened and, where possible, what to do."""

    code = "OpsflowError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(OpsflowError):
    code = "NotFound"


class NotOptedIn(OpsflowError):
    """The target lacks the opt-in tag: Opsflow will not touch it."""

    code = "NotOptedIn"


class Refused(OpsflowError):
    """A pre-flight check failed: the run would be unsafe or cannot work."""

    code = "Refused"


class Busy(OpsflowError):
    """Another run holds the target."""

    code = "Busy"


class LockLost(OpsflowError):
    """A run's lock on its target expired and another run took it: the run must not act any more."""

    code = "LockLost"


class IdempotencyConflict(OpsflowError):
    """The same idempotency key was used for a different request."""

    code = "IdempotencyConflict"


class ImageFailed(OpsflowError):
    """The AMI ended in a state other than `available`."""

    code = "ImageFailed"


class CopyFailed(OpsflowError):
    """A copy of the image into another region ended failed, or took too long."""

    code = "CopyFailed"


class ImageTimeout(OpsflowError):
    code = "ImageTimeout"


class AwsCallFailed(OpsflowError):
    """An AWS call failed with a code the adapters do not map to anything more specific."""

    code = "AwsCallFailed"

    def __init__(self, operation: str, aws_code: str, message: str) -> None:
        super().__init__(f"{operation} failed: {aws_code}: {message}")
        self.operation = operation
        self.aws_code = aws_code
        self.aws_message = message


class AwsTransient(AwsCallFailed):
    """AWS throttled the call or failed on its side (a 5xx, a timeout) after the SDK's own retries: the state
    machines retry the step with backoff (their `AwsTransient` retrier) instead of failing the run."""

    code = "AwsTransient"


class TransientRetriesExhausted(AwsCallFailed):
    """A step kept failing with transient errors for longer than its retry budget: the run gives up."""

    code = "TransientRetriesExhausted"


class InvalidField(OpsflowError):
    """A field of a request that is well formed but wrong once checked against AWS (a runbook that does not
    exist): answered like a validation error, naming the field."""

    code = "ValidationError"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class Unauthenticated(OpsflowError):
    """A request to a route API Gateway does not authorize carries no credentials the function accepts."""

    code = "Unauthenticated"


class BadSignature(OpsflowError):
    """A request's signature or token is not the one the shared secret gives, or its timestamp is too old."""

    code = "BadSignature"


class Replayed(OpsflowError):
    """A signed request (or delivery) that was already accepted once, sent again."""

    code = "Replayed"
