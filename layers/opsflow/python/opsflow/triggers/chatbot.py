"""Slack through AWS Chatbot: `@aws lambda invoke --function-name <CommandFunction> --payload '{...}'`.

Chatbot invokes the command function directly with the payload typed in the channel and shows what it
returns, so every answer is one short text that reads well there. The payload is either a run request,
exactly as `POST /runs` takes it, or one of the commands `status`, `abort` and `keep_alive`. Bad input
gets the same field-by-field message as the API.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from opsflow.errors import OpsflowError
from opsflow.runs import registry
from opsflow.runs.requests import describe_validation_errors, parse_run_request
from opsflow.runs.start import RunStarter, StartedRun
from opsflow.runs.view import Aborter, abort_run, run_view
from opsflow.store.environments import EnvironmentStore
from opsflow.store.runs import DRY_RUN, Requester, RunStore
from opsflow.workflows.env_power import environments
from opsflow.workflows.env_power.request import ENVIRONMENT_NAME


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    requested_by: str | None = Field(
        default=None, max_length=256, description="Who asked, as the channel knows them (recorded as stated)."
    )


class StatusCommand(_Command):
    command: Literal["status"]
    run_id: str = Field(min_length=1, max_length=80)


class AbortCommand(_Command):
    command: Literal["abort"]
    run_id: str = Field(min_length=1, max_length=80)


class KeepAliveCommand(_Command, environments.KeepAliveRequest):
    command: Literal["keep_alive"]
    environment: str = Field(pattern=ENVIRONMENT_NAME)


COMMANDS: dict[str, type[_Command]] = {
    "status": StatusCommand,
    "abort": AbortCommand,
    "keep_alive": KeepAliveCommand,
}


@dataclass(frozen=True)
class CommandContext:
    starter: RunStarter
    runs: RunStore
    environments: EnvironmentStore
    executions: Aborter
    now: Callable[[], datetime]
    console: Callable[[str], str]  # execution ARN -> console link


def requester_of(payload: Mapping[str, Any]) -> Requester:
    # A direct Lambda invocation carries no caller identity; Chatbot's channel role made it.
    stated = payload.get("requested_by")
    return Requester(kind="chatbot", identity=f"AWS Chatbot ({stated})" if stated else "AWS Chatbot")


def handle(payload: Any, context: CommandContext) -> str:
    """The channel's answer to a payload: never an exception, always a sentence that says what to do."""
    if not isinstance(payload, dict):
        return 'Send a JSON object: a run request (as POST /runs takes it) or {"command": "status", ...}.'
    try:
        command = payload.get("command")
        if command is None:
            return _run(payload, context)
        model = COMMANDS.get(str(command))
        if model is None:
            return (
                f"Unknown command {command!r}. Commands: {', '.join(COMMANDS)}; or send a run request "
                f"(workflow: {', '.join(registry.names(people_only=True))})."
            )
        parsed = model.model_validate(payload)
        if isinstance(parsed, StatusCommand):
            return _status(parsed.run_id, context)
        if isinstance(parsed, AbortCommand):
            return _abort(parsed, context)
        assert isinstance(parsed, KeepAliveCommand)
        return _keep_alive(parsed, context)
    except ValidationError as invalid:
        problems = describe_validation_errors(invalid.errors())
        return "The request is not valid: " + "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
    except OpsflowError as refused:
        return f"Refused: {refused.message}"


def _run(payload: dict[str, Any], context: CommandContext) -> str:
    body = {k: v for k, v in payload.items() if k != "requested_by"}
    request = parse_run_request(body)
    started: StartedRun = context.starter.start(request, requester_of(payload))
    run = started.run
    what = (run.plan or {}).get("summary") or f"{registry.get(run.workflow).title} of {run.target}."
    if run.status == DRY_RUN:
        return f"Dry run {run.run_id}: nothing was changed. {what}"
    again = "" if started.created else " (this request was already made; this is that run)"
    link = f" {context.console(run.execution_arn)}" if run.execution_arn else ""
    return (
        f"Run {run.run_id} {run.status.lower()}{again}: {what} Follow it with "
        f'{{"command": "status", "run_id": "{run.run_id}"}}{link}'
    )


def _status(run_id: str, context: CommandContext) -> str:
    run = context.runs.get(run_id)
    if run is None:
        return f"No run {run_id}."
    view = run_view(run)
    steps = [s for s in view["steps"] if s["status"] != "milestone"]
    last = (
        f" Last step: {steps[-1]['step']} ({steps[-1]['summary'] or steps[-1]['status']})." if steps else ""
    )
    outcome = view["output"] or {}
    said = outcome.get("summary") or outcome.get("message") or ""
    return f"Run {run_id} ({run.workflow}, {run.target}) is {view['status']}.{last} {said}".strip()


def _abort(command: AbortCommand, context: CommandContext) -> str:
    run = context.runs.get(command.run_id)
    if run is None:
        return f"No run {command.run_id}."
    abort_run(run, context.executions, requester_of(command.model_dump()))
    return f"Run {run.run_id} is being stopped; it will show ABORTED and its target is freed."


def _keep_alive(command: KeepAliveCommand, context: CommandContext) -> str:
    request = environments.KeepAliveRequest(until=command.until, reason=command.reason)
    by = requester_of(command.model_dump()).identity
    environments.keep_alive(command.environment, request, by, context.environments, context.now())
    return (
        f"{command.environment} stays up until {command.until:%Y-%m-%d %H:%M %Z}".rstrip()
        + ": the nightly stops before then are skipped, and it stops as usual after."
    )
