"""CodePipeline job results, which moto 5.2.5 does not implement (PutJobSuccessResult and
PutJobFailureResult raise NotImplementedError), emulated as the CodePipeline API Reference
(PutJobSuccessResult, PutJobFailureResult, ExecutionDetails, FailureDetails, JobData) and the User Guide
("AWS Lambda invoke action reference", "Invoke an AWS Lambda function in a pipeline", "Quotas in AWS
CodePipeline") document them:

- a Lambda invoke action's job is dispatched to the function as the User Guide's JSON event
  (`job_event`); the function must answer with one result, success or failure;
- `jobId` must match `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}` (ValidationException);
  a job CodePipeline never dispatched is JobNotFoundException; a job that already has its result is no
  longer in progress, so a second result is refused with InvalidJobStateException;
- `failureDetails.type` is one of JobFailed, ConfigurationError, PermissionError, RevisionOutOfSync,
  RevisionUnavailable, SystemUnavailable; `failureDetails.message` is 1 to 5000 characters and
  `externalExecutionId` 1 to 1500 (ValidationException);
- `continuationToken` is 1 to 2048 characters; `executionDetails.summary` 1 to 2048,
  `externalExecutionId` 1 to 1500, `percentComplete` 0 to 100 (ValidationException);
- `outputVariables` "can be included only when there is no continuation token on the request"
  (ValidationException); keys match `[A-Za-z0-9@\\-_]+` (ValidationException); all of an action's output
  variables together hold at most 122880 bytes (OutputVariablesSizeExceededException);
- success with a continuation token keeps the action in progress: CodePipeline dispatches a new job, with a
  new id and the same configuration, whose data carries that token (`continuation_event`).
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from moto.codepipeline.responses import CodePipelineResponse
from moto.core.exceptions import JsonRESTError

JOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
OUTPUT_VARIABLE_KEY = re.compile(r"[A-Za-z0-9@\-_]+")
FAILURE_TYPES = frozenset(
    {
        "JobFailed",
        "ConfigurationError",
        "PermissionError",
        "RevisionOutOfSync",
        "RevisionUnavailable",
        "SystemUnavailable",
    }
)
OUTPUT_VARIABLES_MAX_BYTES = 122_880
IN_PROGRESS = "InProgress"


class CodePipelineError(JsonRESTError):
    code = 400

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(error_type, message)


def _validation(message: str) -> CodePipelineError:
    return CodePipelineError("ValidationException", message)


@dataclass
class Job:
    job_id: str
    event: dict[str, Any]
    status: str = IN_PROGRESS  # InProgress | Succeeded | Failed
    result: dict[str, Any] | None = None


@dataclass
class CodePipelineEmulation:
    account_id: str = "123456789012"
    _jobs: dict[str, Job] = field(default_factory=dict)
    _mutex: threading.Lock = field(default_factory=threading.Lock)

    def install(self, stack: ExitStack) -> None:
        emulation = self

        def put_job_success_result(response: CodePipelineResponse) -> str:
            emulation.put_job_success_result(
                response._get_param("jobId"),
                continuation_token=response._get_param("continuationToken"),
                execution_details=response._get_param("executionDetails"),
                output_variables=response._get_param("outputVariables"),
                current_revision=response._get_param("currentRevision"),
            )
            return "{}"

        def put_job_failure_result(response: CodePipelineResponse) -> str:
            emulation.put_job_failure_result(
                response._get_param("jobId"), response._get_param("failureDetails") or {}
            )
            return "{}"

        for name, method in {
            "put_job_success_result": put_job_success_result,
            "put_job_failure_result": put_job_failure_result,
        }.items():
            stack.enter_context(mock.patch.object(CodePipelineResponse, name, method, create=True))

    # What CodePipeline dispatches ---------------------------------------------------------------

    def job_event(
        self,
        user_parameters: str | dict[str, Any] | None,
        *,
        job_id: str | None = None,
        continuation_token: str | None = None,
        function_name: str = "opsflow-PipelineFunction",
        pipeline_context: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Dispatch a job of a Lambda invoke action: the event CodePipeline invokes the function with, as
        the User Guide's example shows it. A dict `user_parameters` is sent as its JSON text."""
        if isinstance(user_parameters, dict):
            user_parameters = json.dumps(user_parameters)
        job_id = job_id or str(uuid.uuid4())
        configuration: dict[str, Any] = {"FunctionName": function_name}
        if user_parameters is not None:
            configuration["UserParameters"] = user_parameters
        data: dict[str, Any] = {
            "actionConfiguration": {"configuration": configuration},
            "inputArtifacts": [],
            "outputArtifacts": [],
            "artifactCredentials": {
                "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
                "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "sessionToken": "an-example-session-token",
            },
        }
        if continuation_token is not None:
            data["continuationToken"] = continuation_token
        if pipeline_context is not None:
            data["pipelineContext"] = pipeline_context
        event = {"CodePipeline.job": {"id": job_id, "accountId": self.account_id, "data": data}}
        with self._mutex:
            # A re-invoked job (Lambda's retry of the same invocation) is the same job.
            self._jobs.setdefault(job_id, Job(job_id=job_id, event=copy.deepcopy(event)))
        return event

    def continuation_event(self, job_id: str) -> dict[str, Any]:
        """The next job CodePipeline dispatches after `job_id` succeeded with a continuation token: a new
        job id, the same action configuration, and the token in its data."""
        with self._mutex:
            job = self._jobs[job_id]
            token = (job.result or {}).get("continuationToken")
            if job.status != "Succeeded" or not token:
                raise LookupError(
                    f"job {job_id} is {job.status} without a continuation token: nothing follows it"
                )
            data = job.event["CodePipeline.job"]["data"]
        return self.job_event(
            data["actionConfiguration"]["configuration"].get("UserParameters"),
            continuation_token=token,
            function_name=data["actionConfiguration"]["configuration"]["FunctionName"],
            pipeline_context=data.get("pipelineContext"),
        )

    # Test hooks ---------------------------------------------------------------------------------

    def results(self, job_id: str) -> list[dict[str, Any]]:
        """The result the job worker reported for the job, as a list (a job takes at most one): each a
        dict with `result` ("success" or "failure") and the request's fields by their API names."""
        with self._mutex:
            job = self._jobs.get(job_id)
            return [copy.deepcopy(job.result)] if job and job.result else []

    def status(self, job_id: str) -> str:
        with self._mutex:
            return self._jobs[job_id].status

    # API ----------------------------------------------------------------------------------------

    def put_job_success_result(
        self,
        job_id: str | None,
        *,
        continuation_token: str | None = None,
        execution_details: dict[str, Any] | None = None,
        output_variables: dict[str, str] | None = None,
        current_revision: dict[str, Any] | None = None,
    ) -> None:
        if continuation_token is not None and not 1 <= len(continuation_token) <= 2048:
            raise _validation("continuationToken must be 1 to 2048 characters long")
        if execution_details:
            _check_execution_details(execution_details)
        if output_variables:
            if continuation_token:
                raise _validation("outputVariables can be included only when there is no continuationToken")
            for key in output_variables:
                if not OUTPUT_VARIABLE_KEY.fullmatch(key):
                    raise _validation(f"outputVariables key {key!r} must match [A-Za-z0-9@\\-_]+")
            size = sum(len(k.encode()) + len(str(v).encode()) for k, v in output_variables.items())
            if size > OUTPUT_VARIABLES_MAX_BYTES:
                raise CodePipelineError(
                    "OutputVariablesSizeExceededException",
                    f"output variables hold {size} bytes; an action may produce at most "
                    f"{OUTPUT_VARIABLES_MAX_BYTES}",
                )
        result: dict[str, Any] = {"result": "success"}
        for key, value in (
            ("continuationToken", continuation_token),
            ("executionDetails", execution_details),
            ("outputVariables", output_variables),
            ("currentRevision", current_revision),
        ):
            if value is not None:
                result[key] = value
        self._finish(job_id, "Succeeded", result)

    def put_job_failure_result(self, job_id: str | None, failure_details: dict[str, Any]) -> None:
        failure_type = failure_details.get("type")
        if failure_type not in FAILURE_TYPES:
            raise _validation(
                f"failureDetails.type {failure_type!r} must be one of {', '.join(sorted(FAILURE_TYPES))}"
            )
        message = failure_details.get("message")
        if not isinstance(message, str) or not 1 <= len(message) <= 5000:
            raise _validation("failureDetails.message must be 1 to 5000 characters long")
        external = failure_details.get("externalExecutionId")
        if external is not None and not 1 <= len(external) <= 1500:
            raise _validation("failureDetails.externalExecutionId must be 1 to 1500 characters long")
        self._finish(job_id, "Failed", {"result": "failure", "failureDetails": failure_details})

    def _finish(self, job_id: str | None, status: str, result: dict[str, Any]) -> None:
        if not job_id or not JOB_ID.fullmatch(job_id):
            raise _validation(f"jobId {job_id!r} must match {JOB_ID.pattern}")
        with self._mutex:
            job = self._jobs.get(job_id)
            if job is None:
                raise CodePipelineError("JobNotFoundException", f"job {job_id} was not found")
            if job.status != IN_PROGRESS:
                raise CodePipelineError(
                    "InvalidJobStateException",
                    f"job {job_id} is {job.status}; its result was already reported",
                )
            job.status = status
            job.result = result


def _check_execution_details(details: dict[str, Any]) -> None:
    summary = details.get("summary")
    if summary is not None and not 1 <= len(summary) <= 2048:
        raise _validation("executionDetails.summary must be 1 to 2048 characters long")
    external = details.get("externalExecutionId")
    if external is not None and not 1 <= len(external) <= 1500:
        raise _validation("executionDetails.externalExecutionId must be 1 to 1500 characters long")
    percent = details.get("percentComplete")
    if percent is not None and not 0 <= int(percent) <= 100:
        raise _validation("executionDetails.percentComplete must be between 0 and 100")
