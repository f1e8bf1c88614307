"""What every workflow's rollback reports, and how a failed run's record accounts for it."""

from __future__ import annotations

from pydantic import BaseModel, Field

from opsflow.runs.steps import CaughtError, StepResult


class RolledBack(StepResult):
    """A rollback step's result: what it undid, and what it could not."""

    undone: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)


class RollbackAccount(BaseModel):
    """The `rollback` of a failed run's record."""

    undone: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, rollback: RolledBack | None, rollback_error: CaughtError | None) -> RollbackAccount:
        """From the rollback step's result, or from its error when the rollback itself failed."""
        if rollback_error is not None:
            return cls(problems=[rollback_error.describe()])
        if rollback is not None:
            return cls(undone=rollback.undone, problems=rollback.problems)
        return cls()


class RunFailure(BaseModel):
    """What every failed run's record says: the step, the error, why in a sentence, and the rollback."""

    step: str
    error: str
    message: str
    rollback: RollbackAccount
