"""The CodePipeline job-result emulation against the CodePipeline API Reference (PutJobSuccessResult,
PutJobFailureResult, ExecutionDetails, FailureDetails) and the User Guide ("AWS Lambda invoke action
reference", "Invoke an AWS Lambda function in a pipeline", "Quotas in AWS CodePipeline")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from opsflow_local.emulation.codepipeline import CodePipelineEmulation

DOCUMENTED_EVENT = Path(__file__).resolve().parents[3] / "events" / "codepipeline" / "job.json"


@pytest.fixture
def emulation() -> Iterator[CodePipelineEmulation]:
    emulation = CodePipelineEmulation()
    with ExitStack() as stack:
        emulation.install(stack)
        stack.enter_context(mock_aws())
        yield emulation


@pytest.fixture
def codepipeline(emulation: CodePipelineEmulation) -> Any:
    return boto3.client("codepipeline", region_name="us-east-1")


def job(emulation: CodePipelineEmulation, **kwargs: Any) -> str:
    return str(emulation.job_event('{"workflow": "ami_bake"}', **kwargs)["CodePipeline.job"]["id"])


def error_code(raised: pytest.ExceptionInfo[ClientError]) -> str:
    return str(raised.value.response["Error"]["Code"])


def test_moto_alone_does_not_implement_job_results() -> None:
    # Why this emulation exists: if moto ever implements them, re-check what it does before keeping it.
    with mock_aws():
        client = boto3.client("codepipeline", region_name="us-east-1")
        with pytest.raises(NotImplementedError):
            client.put_job_success_result(jobId="11111111-abcd-1111-abcd-111111abcdef")


def test_the_job_event_has_the_documented_shape(emulation: CodePipelineEmulation) -> None:
    documented = json.loads(DOCUMENTED_EVENT.read_text())["CodePipeline.job"]
    event = emulation.job_event({"workflow": "ami_bake"}, continuation_token="run-1")["CodePipeline.job"]

    assert set(event) == set(documented)
    assert set(event["data"]) <= set(documented["data"])
    assert {"actionConfiguration", "inputArtifacts", "outputArtifacts", "artifactCredentials"} <= set(
        event["data"]
    )
    assert set(event["data"]["actionConfiguration"]["configuration"]) == {"FunctionName", "UserParameters"}
    # UserParameters is a string: a dict is sent as its JSON text.
    assert json.loads(event["data"]["actionConfiguration"]["configuration"]["UserParameters"]) == {
        "workflow": "ami_bake"
    }
    assert event["data"]["continuationToken"] == "run-1"
    assert "pipelineContext" not in event["data"]


def test_success_is_recorded_with_its_token_details_and_variables(
    emulation: CodePipelineEmulation, codepipeline: Any
) -> None:
    first, last = job(emulation), job(emulation)

    codepipeline.put_job_success_result(
        jobId=first,
        continuationToken="run-1",
        executionDetails={"summary": "baking", "externalExecutionId": "run-1", "percentComplete": 40},
    )
    codepipeline.put_job_success_result(jobId=last, outputVariables={"image_id": "ami-0123", "run-id@1": "x"})

    assert emulation.results(first) == [
        {
            "result": "success",
            "continuationToken": "run-1",
            "executionDetails": {"summary": "baking", "externalExecutionId": "run-1", "percentComplete": 40},
        }
    ]
    assert emulation.results(last) == [
        {"result": "success", "outputVariables": {"image_id": "ami-0123", "run-id@1": "x"}}
    ]
    assert emulation.status(first) == emulation.status(last) == "Succeeded"


def test_failure_is_recorded_with_its_details(emulation: CodePipelineEmulation, codepipeline: Any) -> None:
    job_id = job(emulation)

    codepipeline.put_job_failure_result(
        jobId=job_id,
        failureDetails={"type": "ConfigurationError", "message": "bad", "externalExecutionId": "r"},
    )

    assert emulation.results(job_id) == [
        {
            "result": "failure",
            "failureDetails": {"type": "ConfigurationError", "message": "bad", "externalExecutionId": "r"},
        }
    ]
    assert emulation.status(job_id) == "Failed"


def test_a_job_with_a_result_takes_no_other(emulation: CodePipelineEmulation, codepipeline: Any) -> None:
    job_id = job(emulation)
    codepipeline.put_job_success_result(jobId=job_id)

    for report in (
        lambda: codepipeline.put_job_success_result(jobId=job_id),
        lambda: codepipeline.put_job_failure_result(
            jobId=job_id, failureDetails={"type": "JobFailed", "message": "late"}
        ),
    ):
        with pytest.raises(ClientError) as raised:
            report()
        assert error_code(raised) == "InvalidJobStateException"
    assert emulation.results(job_id) == [{"result": "success"}]


def test_an_unknown_job_is_not_found_and_a_malformed_id_is_invalid(codepipeline: Any) -> None:
    with pytest.raises(ClientError) as raised:
        codepipeline.put_job_success_result(jobId="22222222-abcd-2222-abcd-222222abcdef")
    assert error_code(raised) == "JobNotFoundException"

    with pytest.raises(ClientError) as raised:
        codepipeline.put_job_failure_result(
            jobId="not-a-job-id", failureDetails={"type": "JobFailed", "message": "x"}
        )
    assert error_code(raised) == "ValidationException"


@pytest.mark.parametrize(
    "details",
    [
        {"type": "Timeout", "message": "the type is not one of the enum"},
        {"type": "JobFailed", "message": "m" * 5001},
        {"type": "JobFailed", "message": "m", "externalExecutionId": "e" * 1501},
    ],
)
def test_failure_details_are_validated(
    emulation: CodePipelineEmulation, codepipeline: Any, details: dict[str, str]
) -> None:
    job_id = job(emulation)

    with pytest.raises(ClientError) as raised:
        codepipeline.put_job_failure_result(jobId=job_id, failureDetails=details)

    assert error_code(raised) == "ValidationException"
    assert emulation.status(job_id) == "InProgress"


def test_a_failure_message_of_5000_characters_is_accepted(
    emulation: CodePipelineEmulation, codepipeline: Any
) -> None:
    job_id = job(emulation)

    codepipeline.put_job_failure_result(
        jobId=job_id, failureDetails={"type": "JobFailed", "message": "m" * 5000}
    )

    assert emulation.status(job_id) == "Failed"


@pytest.mark.parametrize(
    "arguments",
    [
        {"continuationToken": "t" * 2049},
        {"executionDetails": {"summary": "s" * 2049}},
        {"executionDetails": {"externalExecutionId": "e" * 1501}},
        {"executionDetails": {"percentComplete": 101}},
        # "outputVariables can be included only when there is no continuation token on the request"
        {"continuationToken": "run-1", "outputVariables": {"image_id": "ami-0123"}},
        {"outputVariables": {"image id": "a space is not in [A-Za-z0-9@\\-_]+"}},
    ],
)
def test_success_arguments_are_validated(
    emulation: CodePipelineEmulation, codepipeline: Any, arguments: dict[str, Any]
) -> None:
    job_id = job(emulation)

    with pytest.raises(ClientError) as raised:
        codepipeline.put_job_success_result(jobId=job_id, **arguments)

    assert error_code(raised) == "ValidationException"
    assert emulation.results(job_id) == []


def test_output_variables_are_limited_to_122880_bytes_in_all(
    emulation: CodePipelineEmulation, codepipeline: Any
) -> None:
    too_big, just_fits = job(emulation), job(emulation)

    with pytest.raises(ClientError) as raised:
        codepipeline.put_job_success_result(jobId=too_big, outputVariables={"a": "x" * 122880})
    codepipeline.put_job_success_result(jobId=just_fits, outputVariables={"a": "x" * 122879})

    assert error_code(raised) == "OutputVariablesSizeExceededException"
    assert emulation.status(too_big) == "InProgress"
    assert emulation.status(just_fits) == "Succeeded"


def test_a_continuation_token_leads_to_a_new_job_carrying_it(
    emulation: CodePipelineEmulation, codepipeline: Any
) -> None:
    first = emulation.job_event({"workflow": "ami_bake"}, function_name="deploy-fn")
    first_id = first["CodePipeline.job"]["id"]
    codepipeline.put_job_success_result(jobId=first_id, continuationToken="run-1")

    following = emulation.continuation_event(first_id)["CodePipeline.job"]

    assert following["id"] != first_id
    assert following["data"]["continuationToken"] == "run-1"
    assert (
        following["data"]["actionConfiguration"] == first["CodePipeline.job"]["data"]["actionConfiguration"]
    )
    assert emulation.status(following["id"]) == "InProgress"


def test_a_job_that_ended_the_action_has_no_continuation(
    emulation: CodePipelineEmulation, codepipeline: Any
) -> None:
    job_id = job(emulation)
    codepipeline.put_job_success_result(jobId=job_id, outputVariables={"run_id": "r"})

    with pytest.raises(LookupError):
        emulation.continuation_event(job_id)
