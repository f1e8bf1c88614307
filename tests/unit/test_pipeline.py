"""The CodePipeline trigger's decisions, with in-memory fakes: what each job is answered."""

from __future__ import annotations

from typing import Any

import pytest

from opsflow.errors import Busy
from opsflow.runs.requests import RunRequest
from opsflow.runs.start import StartedRun
from opsflow.store.runs import Requester, Run
from opsflow.triggers import codepipeline as pipeline

JOB = "11111111-abcd-1111-abcd-111111abcdef"
BAKE = '{"workflow": "ami_bake", "instance_id": "i-0123456789abcdef0", "asg_name": "web"}'


class Reporter:
    def __init__(self, fail: bool = False) -> None:
        self.reports: list[tuple[str, str, dict[str, Any]]] = []
        self.fail = fail

    def put_job_success(self, job_id: str, **kwargs: Any) -> None:
        if self.fail:
            raise RuntimeError("CodePipeline is unreachable")
        self.reports.append(("success", job_id, kwargs))

    def put_job_failure(self, job_id: str, **kwargs: Any) -> None:
        if self.fail:
            raise RuntimeError("CodePipeline is unreachable")
        self.reports.append(("failure", job_id, kwargs))


def run(run_id: str = "ami-bake-1", status: str = "RUNNING") -> Run:
    return Run(
        run_id=run_id,
        workflow="ami_bake",
        target="asg:web",
        status=status,
        requester=Requester("pipeline", "x"),
        request={},
        request_hash="h",
        created_at="t",
        updated_at="t",
    )


def never_started(request: RunRequest, requester: Requester, key: str) -> StartedRun:
    raise AssertionError("no run may start")


def no_run(run_id: str) -> dict[str, Any] | None:
    return None


def test_the_requester_names_the_pipeline_execution_when_the_event_has_one() -> None:
    event = {
        "CodePipeline.job": {
            "id": JOB,
            "data": {"pipelineContext": {"pipelineName": "release", "pipelineExecutionId": "e-1"}},
        }
    }

    assert pipeline.PipelineJob.from_event(event).requester == Requester(
        "pipeline", "codepipeline:release/e-1"
    )
    assert pipeline.PipelineJob(JOB).requester == Requester("pipeline", f"codepipeline-job:{JOB}")


def test_an_event_without_a_job_id_is_not_a_job() -> None:
    with pytest.raises(ValueError, match=r"CodePipeline\.job\.id"):
        pipeline.PipelineJob.from_event({"detail": {}})


def test_the_job_id_is_the_idempotency_key() -> None:
    calls: list[tuple[str, str]] = []

    def start(request: RunRequest, requester: Requester, key: str) -> StartedRun:
        calls.append((requester.identity, key))
        return StartedRun(run=run(), created=True)

    outcome = pipeline.decide(pipeline.PipelineJob(JOB, user_parameters=BAKE), start, no_run)

    assert calls == [(f"codepipeline-job:{JOB}", JOB)]
    assert outcome.continuation_token == "ami-bake-1"


def test_a_busy_target_fails_the_job_with_the_guards_message() -> None:
    def start(request: RunRequest, requester: Requester, key: str) -> StartedRun:
        raise Busy("Auto Scaling group web is busy with run ami-bake-0")

    outcome = pipeline.decide(pipeline.PipelineJob(JOB, user_parameters=BAKE), start, no_run)

    assert (outcome.succeeded, outcome.failure_type) == (False, "JobFailed")
    assert outcome.summary == "Auto Scaling group web is busy with run ami-bake-0"


def test_missing_user_parameters_are_a_configuration_error() -> None:
    outcome = pipeline.decide(pipeline.PipelineJob(JOB), never_started, no_run)

    assert outcome.failure_type == "ConfigurationError"
    assert outcome.summary.startswith("The request is not valid: ")


def test_a_token_naming_no_run_fails_the_job() -> None:
    outcome = pipeline.decide(
        pipeline.PipelineJob(JOB, continuation_token="ami-bake-9"), never_started, no_run
    )

    assert not outcome.succeeded
    assert "ami-bake-9" in outcome.summary


def test_a_dry_run_ends_the_action_at_once() -> None:
    def start(request: RunRequest, requester: Requester, key: str) -> StartedRun:
        return StartedRun(run=run(status="DRY_RUN"), created=True)

    def read(run_id: str) -> dict[str, Any]:
        return {"run_id": run_id, "status": "DRY_RUN", "steps": [], "output": None}

    outcome = pipeline.decide(pipeline.PipelineJob(JOB, user_parameters=BAKE), start, read)

    assert outcome.succeeded
    assert outcome.continuation_token is None
    assert outcome.output_variables == {"run_id": "ami-bake-1", "status": "DRY_RUN"}


@pytest.mark.parametrize("status", ["FAILED", "ABORTED", "TIMED_OUT"])
def test_a_run_that_did_not_succeed_fails_the_job_with_its_reason_clipped(status: str) -> None:
    reporter = Reporter()

    def read(run_id: str) -> dict[str, Any]:
        return {"run_id": run_id, "status": status, "error": {"step": "publish", "message": "x" * 6000}}

    pipeline.handle_job(pipeline.PipelineJob(JOB, continuation_token="r-1"), never_started, read, reporter)

    [(kind, job_id, details)] = reporter.reports
    assert (kind, job_id, details["failure_type"]) == ("failure", JOB, "JobFailed")
    assert details["message"].startswith(f"Opsflow run r-1 {status} at step publish: xxx")
    assert len(details["message"]) == pipeline.FAILURE_MESSAGE_MAX_LENGTH
    assert details["external_execution_id"] == "r-1"


def test_a_running_run_continues_with_the_same_token_and_no_variables() -> None:
    reporter = Reporter()

    def read(run_id: str) -> dict[str, Any]:
        step = {"step": "check_image", "status": "waiting", "summary": "s" * 3000, "attempts": 4}
        return {"run_id": run_id, "status": "RUNNING", "steps": [step]}

    pipeline.handle_job(pipeline.PipelineJob(JOB, continuation_token="r-1"), never_started, read, reporter)

    [(kind, _, details)] = reporter.reports
    assert kind == "success"
    assert details["continuation_token"] == "r-1"
    assert details["output_variables"] is None
    summary = details["execution_details"]["summary"]
    assert summary.startswith("Opsflow run r-1 is running; step check_image waiting: sss")
    assert len(summary) == pipeline.SUMMARY_MAX_LENGTH


def test_an_unexpected_error_is_reported_as_a_failure_and_not_raised() -> None:
    reporter = Reporter()
    seen: list[Exception] = []

    def read(run_id: str) -> dict[str, Any]:
        raise KeyError("status")

    outcome = pipeline.handle_job(
        pipeline.PipelineJob(JOB, continuation_token="r-1"), never_started, read, reporter, seen.append
    )

    assert not outcome.succeeded
    assert [type(error) for error in seen] == [KeyError]
    [(kind, _, details)] = reporter.reports
    assert kind == "failure"
    assert details["message"].startswith(f"Opsflow could not process CodePipeline job {JOB}: KeyError")


def test_a_report_that_fails_raises_so_lambda_retries_the_job() -> None:
    with pytest.raises(RuntimeError, match="unreachable"):
        pipeline.handle_job(pipeline.PipelineJob(JOB), never_started, no_run, Reporter(fail=True))


def test_a_blue_green_deploy_hands_the_live_side_to_the_next_stages() -> None:
    view = {
        "run_id": "ecs-blue-green-1",
        "status": "SUCCEEDED",
        "output": {
            "live": {"service": "web-green", "target_group": "arn:aws:elasticloadbalancing:tg/web-green/1"},
            "task_definition": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:2",
        },
    }

    assert pipeline.output_variables(view) == {
        "run_id": "ecs-blue-green-1",
        "status": "SUCCEEDED",
        "live_service": "web-green",
        "live_target_group": "arn:aws:elasticloadbalancing:tg/web-green/1",
        "task_definition": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:2",
    }
