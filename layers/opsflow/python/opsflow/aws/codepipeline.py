"""CodePipeline adapter: a Lambda invoke action reports its job's outcome with PutJobSuccessResult or
PutJobFailureResult; without one of them the action hangs until CodePipeline times it out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opsflow.aws.errors import aws_call

if TYPE_CHECKING:
    from mypy_boto3_codepipeline import CodePipelineClient
    from mypy_boto3_codepipeline.literals import FailureTypeType
    from mypy_boto3_codepipeline.type_defs import FailureDetailsTypeDef


class CodePipeline:
    def __init__(self, client: CodePipelineClient) -> None:
        self._codepipeline = client

    def put_job_success(
        self,
        job_id: str,
        *,
        continuation_token: str | None = None,
        execution_details: dict[str, Any] | None = None,
        output_variables: dict[str, str] | None = None,
    ) -> None:
        arguments: dict[str, Any] = {"jobId": job_id}
        if continuation_token:
            arguments["continuationToken"] = continuation_token
        if execution_details:
            arguments["executionDetails"] = execution_details
        if output_variables:
            arguments["outputVariables"] = output_variables
        with aws_call("PutJobSuccessResult"):
            self._codepipeline.put_job_success_result(**arguments)

    def put_job_failure(
        self,
        job_id: str,
        *,
        failure_type: FailureTypeType,
        message: str,
        external_execution_id: str | None = None,
    ) -> None:
        details: FailureDetailsTypeDef = {"type": failure_type, "message": message}
        if external_execution_id:
            details["externalExecutionId"] = external_execution_id
        with aws_call("PutJobFailureResult"):
            self._codepipeline.put_job_failure_result(jobId=job_id, failureDetails=details)
