"""CodePipeline's Lambda invoke action: a pipeline stage starts an Opsflow run and waits for its outcome.

The action's `UserParameters` is a run request as JSON, the same model `POST /runs` takes. The first
invocation of a job starts the run, with the job id as idempotency key so that a re-invoked job never
starts a second one, and answers PutJobSuccessResult with the run id as continuation token. CodePipeline
then invokes the function again, as a new job carrying that token, for as long as an answer carries one
(the User Guide's "continuation token" pattern), so a run may last longer than a Lambda invocation. Each
of those answers reports the run's progress; the last one reports its outcome: success with output
variables for the stages after it, or failure with the run's reason.

Every job gets an answer: an action without one hangs until CodePipeline times it out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from opsflow.aws.stepfunctions import Execution
from opsflow.errors import OpsflowError
from opsflow.runs import registry
from opsflow.runs.requests import RunRequest, describe_validation_errors, parse_run_request
from opsflow.runs.start import StartedRun
from opsflow.runs.view import run_view
from opsflow.store.runs import RUNNING, Requester, RunStore

# Limits of the CodePipeline API Reference (ExecutionDetails, FailureDetails) and of the User Guide's
# quotas ("a maximum size limit of 122880 bytes for all output variables combined" for an action).
SUMMARY_MAX_LENGTH = 2048
FAILURE_MESSAGE_MAX_LENGTH = 5000
EXTERNAL_EXECUTION_ID_MAX_LENGTH = 1500
OUTPUT_VARIABLES_MAX_BYTES = 122_880

FailureType = Literal["JobFailed", "ConfigurationError"]
StartRun = Callable[[RunRequest, Requester, str], StartedRun]
# A run as GET /runs/{run_id} shows it, or None when there is no such run.
ReadRun = Callable[[str], dict[str, Any] | None]


class JobReporter(Protocol):
    def put_job_success(
        self,
        job_id: str,
        *,
        continuation_token: str | None = None,
        execution_details: dict[str, Any] | None = None,
        output_variables: dict[str, str] | None = None,
    ) -> None: ...

    def put_job_failure(
        self,
        job_id: str,
        *,
        failure_type: FailureType,
        message: str,
        external_execution_id: str | None = None,
    ) -> None: ...


@dataclass(frozen=True)
class PipelineJob:
    """The parts of CodePipeline's job event that Opsflow reads. The event also carries temporary
    credentials for the artifact bucket (`artifactCredentials`): it is never logged."""

    job_id: str
    user_parameters: str | None = None
    continuation_token: str | None = None
    # The User Guide's Lambda event has no pipelineContext; GetJobDetails and custom-action jobs do.
    pipeline_name: str | None = None
    pipeline_execution_id: str | None = None

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> PipelineJob:
        job = event.get("CodePipeline.job")
        if not isinstance(job, Mapping) or not job.get("id"):
            raise ValueError("not a CodePipeline job event: CodePipeline.job.id is missing")
        data = job.get("data") or {}
        configuration = (data.get("actionConfiguration") or {}).get("configuration") or {}
        context = data.get("pipelineContext") or {}
        parameters = configuration.get("UserParameters")
        return cls(
            job_id=str(job["id"]),
            user_parameters=None if parameters is None else str(parameters),
            continuation_token=str(data["continuationToken"]) if data.get("continuationToken") else None,
            pipeline_name=str(context["pipelineName"]) if context.get("pipelineName") else None,
            pipeline_execution_id=(
                str(context["pipelineExecutionId"]) if context.get("pipelineExecutionId") else None
            ),
        )

    @property
    def requester(self) -> Requester:
        if self.pipeline_name:
            identity = f"codepipeline:{self.pipeline_name}"
            if self.pipeline_execution_id:
                identity += f"/{self.pipeline_execution_id}"
        else:
            identity = f"codepipeline-job:{self.job_id}"
        return Requester(kind="pipeline", identity=identity)


@dataclass(frozen=True)
class JobOutcome:
    """What CodePipeline is told: success (with a continuation token while the run goes on) or failure."""

    succeeded: bool
    summary: str
    run_id: str | None = None
    continuation_token: str | None = None
    output_variables: dict[str, str] = field(default_factory=dict)
    failure_type: FailureType = "JobFailed"

    def as_dict(self) -> dict[str, Any]:
        return {
            "result": "success" if self.succeeded else "failure",
            "run_id": self.run_id,
            "continuation_token": self.continuation_token,
            "summary": self.summary,
            "output_variables": self.output_variables,
            "failure_type": None if self.succeeded else self.failure_type,
        }


class InvalidUserParameters(Exception):
    def __init__(self, problems: list[dict[str, str]]) -> None:
        summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
        # Worded exactly as POST /runs words a 400, so a request fixed for one trigger works in the other.
        super().__init__(f"The request is not valid: {summary}")
        self.problems = problems


def parse_user_parameters(text: str | None) -> RunRequest:
    """The run request in the action's UserParameters; raises InvalidUserParameters."""
    if not text or not text.strip():
        raise InvalidUserParameters(
            [
                {
                    "field": "UserParameters",
                    "problem": 'is empty: set it to a run request as JSON, e.g. {"workflow": "ami_bake", '
                    '"instance_id": "i-0123456789abcdef0", "asg_name": "web"}',
                }
            ]
        )
    try:
        payload = json.loads(text)
    except ValueError as error:
        raise InvalidUserParameters(
            [
                {
                    "field": "UserParameters",
                    "problem": f"is not valid JSON ({error}); give a run request as JSON",
                }
            ]
        ) from error
    try:
        return parse_run_request(payload)
    except ValidationError as error:
        raise InvalidUserParameters(describe_validation_errors(error.errors())) from error


def handle_job(
    job: PipelineJob,
    start: StartRun,
    read_run: ReadRun,
    reporter: JobReporter,
    on_unexpected: Callable[[Exception], None] = lambda error: None,
) -> JobOutcome:
    """Decide the job's outcome and report it. An unexpected error is reported as a failure too, since
    CodePipeline would otherwise wait for the action's timeout; only a failed report raises."""
    try:
        outcome = decide(job, start, read_run)
    except Exception as error:  # noqa: BLE001 - reported to CodePipeline below, and to on_unexpected
        on_unexpected(error)
        outcome = JobOutcome(
            succeeded=False,
            summary=f"Opsflow could not process CodePipeline job {job.job_id}: {type(error).__name__}: "
            f"{error}",
            run_id=job.continuation_token,
        )
    report(job.job_id, outcome, reporter)
    return outcome


def decide(job: PipelineJob, start: StartRun, read_run: ReadRun) -> JobOutcome:
    if job.continuation_token:
        return follow_run(job.continuation_token, read_run)
    return start_run(job, start, read_run)


def start_run(job: PipelineJob, start: StartRun, read_run: ReadRun) -> JobOutcome:
    try:
        request = parse_user_parameters(job.user_parameters)
    except InvalidUserParameters as invalid:
        return JobOutcome(succeeded=False, failure_type="ConfigurationError", summary=str(invalid))
    try:
        started = start(request, job.requester, job.job_id)
    except OpsflowError as refused:  # busy, not opted in, refused by the pre-flight, not found
        return JobOutcome(succeeded=False, summary=refused.message)
    run = started.run
    if run.status != RUNNING:
        # A dry run, or a re-invoked job whose run has already ended.
        return follow_run(run.run_id, read_run)
    verb = "started" if started.created else "was already started by this job"
    return JobOutcome(
        succeeded=True,
        run_id=run.run_id,
        continuation_token=run.run_id,
        summary=f"Opsflow run {run.run_id} ({registry.get(run.workflow).title} on {run.target}) {verb}.",
    )


def follow_run(run_id: str, read_run: ReadRun) -> JobOutcome:
    view = read_run(run_id)
    if view is None:
        return JobOutcome(
            succeeded=False,
            run_id=run_id,
            summary=f"the continuation token names run {run_id}, which is not in Opsflow's runs table",
        )
    status = str(view["status"])
    if status == RUNNING:
        return JobOutcome(succeeded=True, run_id=run_id, continuation_token=run_id, summary=_progress(view))
    if status in ("SUCCEEDED", "DRY_RUN", "SKIPPED"):
        return JobOutcome(
            succeeded=True,
            run_id=run_id,
            summary=_ended(view),
            output_variables=output_variables(view),
        )
    error = view.get("error") or {}
    step = error.get("step")
    reason = error.get("message") or f"the run ended {status}"
    where = f" at step {step}" if step and step != "unknown" else ""
    return JobOutcome(
        succeeded=False, run_id=run_id, summary=f"Opsflow run {run_id} {status}{where}: {reason}"
    )


def output_variables(view: Mapping[str, Any]) -> dict[str, str]:
    """The run's results as variables for the stages after the action (`#{namespace.image_id}`)."""
    variables = {"run_id": str(view["run_id"]), "status": str(view["status"])}
    output = view.get("output") or {}
    for key in ("image_id", "image_name", "refresh_id"):
        if output.get(key):
            variables[key] = str(output[key])
    published = output.get("published") or {}
    if published.get("kind") == "launch_template":
        variables["launch_template_id"] = str(published["template_id"])
        variables["launch_template_version"] = str(published["version"])
    elif published.get("kind") == "launch_configuration":
        variables["launch_configuration_name"] = str(published["name"])
    elif output.get("template_id") and output.get("version"):
        variables["launch_template_id"] = str(output["template_id"])
        variables["launch_template_version"] = str(output["version"])
    live = output.get("live") or {}
    if live.get("service"):  # a blue/green deploy: which side serves now, and with what
        variables["live_service"] = str(live["service"])
        variables["live_target_group"] = str(live["target_group"])
        variables["task_definition"] = str(output.get("task_definition"))
    return variables


def report(job_id: str, outcome: JobOutcome, reporter: JobReporter) -> None:
    external_id = outcome.run_id[:EXTERNAL_EXECUTION_ID_MAX_LENGTH] if outcome.run_id else None
    if not outcome.succeeded:
        reporter.put_job_failure(
            job_id,
            failure_type=outcome.failure_type,
            message=_clip(outcome.summary, FAILURE_MESSAGE_MAX_LENGTH),
            external_execution_id=external_id,
        )
        return
    details: dict[str, Any] = {"summary": _clip(outcome.summary, SUMMARY_MAX_LENGTH)}
    if external_id:
        details["externalExecutionId"] = external_id
    reporter.put_job_success(
        job_id,
        continuation_token=outcome.continuation_token,
        execution_details=details,
        # CodePipeline takes output variables only on the answer that ends the action.
        output_variables=None if outcome.continuation_token else _within_quota(outcome.output_variables),
    )


def run_reader(runs: RunStore, describe_execution: Callable[[str], Execution]) -> ReadRun:
    """Read a run as GET /runs/{run_id} shows it: a run whose execution was stopped or timed out before
    its record was settled already reports the execution's status."""

    def read(run_id: str) -> dict[str, Any] | None:
        run = runs.get(run_id)
        if run is None:
            return None
        execution = (
            describe_execution(run.execution_arn) if run.execution_arn and run.status == RUNNING else None
        )
        return run_view(run, execution)

    return read


def _progress(view: Mapping[str, Any]) -> str:
    steps = view.get("steps") or []
    text = f"Opsflow run {view['run_id']} is running"
    if steps:
        last = steps[-1]
        text += f"; step {last['step']} {last['status']}"
        if last.get("summary"):
            text += f": {last['summary']}"
        if int(last.get("attempts") or 1) > 1:
            text += f" ({last['attempts']} polls)"
    return text


def _ended(view: Mapping[str, Any]) -> str:
    steps = [str(step["step"]) for step in view.get("steps") or []]
    text = f"Opsflow run {view['run_id']} {view['status']}"
    summary = (view.get("output") or {}).get("summary")
    if summary:
        text += f": {summary}"
    if steps:
        text += f" (steps: {' -> '.join(dict.fromkeys(steps))})"
    return text


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _within_quota(variables: dict[str, str]) -> dict[str, str]:
    kept: dict[str, str] = {}
    size = 0
    for key, value in variables.items():
        size += len(key.encode()) + len(value.encode())
        if size > OUTPUT_VARIABLES_MAX_BYTES:
            break
        kept[key] = value
    return kept
