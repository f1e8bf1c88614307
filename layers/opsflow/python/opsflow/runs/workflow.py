"""What Opsflow knows about one workflow, written once in the workflow's package and read through the
registry by everything that lists workflows: the starter, run_ended, notifications, the API, the CLI and
Chatbot.

The hooks import the workflow's code when called, so a trigger's cold start loads only request models."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opsflow.runs.config import StarterConfig, StepsConfig
    from opsflow.runs.requests import RunRequest
    from opsflow.runs.steps import StepRunner
    from opsflow.store.runs import Run

Plan = dict[str, Any]
PutBackDone = dict[str, Any]


@dataclass(frozen=True)
class Workflow:
    name: str
    # For people: "AMI bake".
    title: str
    request: type[RunRequest]
    # What the run would do, read without changing anything; raises if it cannot run safely.
    preflight: Callable[[Any, StarterConfig], Plan]
    # The steps Lambda's dispatcher: the workflow's step table on the shared runner.
    steps: Callable[[StepsConfig], StepRunner]
    # For a run whose execution ended without its finish step: undo what must never be left half-done
    # and say what was done, or None when there was nothing to undo.
    put_back: Callable[[Run], PutBackDone | None] | None = None
    # What a notification says of a run: its title for this request ("Environment stop"), and the one
    # sentence about a run that succeeded. By default the workflow's title and the result's summary.
    run_title: Callable[[dict[str, Any]], str] | None = None
    success_summary: Callable[[dict[str, Any], str], str] | None = None
    # False for a workflow only Opsflow starts (a remediation, once its rule's guard let it act): POST /runs,
    # Chatbot, schedules and pipelines refuse it.
    asked_by_people: bool = True

    def title_of(self, request: dict[str, Any]) -> str:
        return self.run_title(request) if self.run_title else self.title

    def summarize_success(self, result: dict[str, Any], target_name: str) -> str:
        if self.success_summary is not None:
            return self.success_summary(result, target_name)
        return str(result.get("summary") or f"{target_name} done.")

    @property
    def title_in_a_sentence(self) -> str:
        """The title mid-sentence: "environment power", while "AMI bake" keeps its acronym."""
        first, _, rest = self.title.partition(" ")
        return self.title if first.isupper() else f"{first.lower()} {rest}".rstrip()

    @property
    def dashed_name(self) -> str:
        """`ami-bake`: template.yaml names the workflow's state machine `<stack>-ami-bake`."""
        return self.name.replace("_", "-")

    def state_machine_arn(self, prefix: str) -> str:
        """The state machine's ARN from the trigger functions' STATE_MACHINE_ARN_PREFIX
        (`arn:...:stateMachine:<stack>-`)."""
        return f"{prefix}{self.dashed_name}"


def lazy(module: str, name: str) -> Callable[..., Any]:
    """A hook that imports `module` on its first call, so registering a workflow loads none of its code."""

    def hook(*args: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args)

    hook.__qualname__ = f"{module}.{name}"
    return hook
