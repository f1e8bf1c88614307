"""CodePipeline's Lambda invoke action end to end: the real pipeline handler starts an AMI bake from the
job's UserParameters and follows it with continuation tokens, as CodePipeline would, on the embedded
runtime. Assertions are on the job results CodePipeline received, the run record and Step Functions."""

from __future__ import annotations

import time
from typing import Any

import pytest

from opsflow.errors import AwsCallFailed
from opsflow_local import EmbeddedAws, seed

PIPELINE_FUNCTION = "PipelineFunction"


def invoke(aws: EmbeddedAws, event: dict[str, Any]) -> dict[str, Any]:
    return dict(aws.lambdas.invoke(aws.resource_name(PIPELINE_FUNCTION), event))


def job_id(event: dict[str, Any]) -> str:
    return str(event["CodePipeline.job"]["id"])


def result(aws: EmbeddedAws, event: dict[str, Any]) -> dict[str, Any]:
    results = aws.emulation.codepipeline.results(job_id(event))
    assert len(results) == 1, results
    return results[0]


def run_action(aws: EmbeddedAws, first: dict[str, Any], timeout: float = 60) -> list[dict[str, Any]]:
    """Invoke the first job, then each job CodePipeline dispatches after a continuation token, until a
    result carries none; returns every job's result in order."""
    invoke(aws, first)
    results = [result(aws, first)]
    previous = first
    deadline = time.monotonic() + timeout
    while "continuationToken" in results[-1]:
        assert time.monotonic() < deadline, results[-1]
        time.sleep(0.05)  # CodePipeline comes back later; here, a twentieth of a second later
        following = aws.emulation.codepipeline.continuation_event(job_id(previous))
        invoke(aws, following)
        results.append(result(aws, following))
        previous = following
    return results


def executions(aws: EmbeddedAws) -> list[dict[str, Any]]:
    return list(
        aws.client("stepfunctions").list_executions(
            stateMachineArn=aws.state_machine_arn("AmiBakeStateMachine")
        )["executions"]
    )


def test_a_job_starts_a_bake_and_follows_it_to_its_image(aws: EmbeddedAws, net: seed.Network) -> None:
    instance_id = seed.instance(aws, net, "app-1")
    template_id = seed.launch_template_group(aws, net, "web")
    first = aws.emulation.codepipeline.job_event(
        {"workflow": "ami_bake", "instance_id": instance_id, "asg_name": "web"}
    )

    results = run_action(aws, first)

    run_id = results[0]["continuationToken"]
    view = aws.api.get(f"/runs/{run_id}").json()
    assert view["requester"] == {"kind": "pipeline", "identity": f"codepipeline-job:{job_id(first)}"}
    assert view["status"] == "SUCCEEDED"
    assert len(results) >= 2
    for in_progress in results[:-1]:
        assert in_progress["continuationToken"] == run_id
        assert "outputVariables" not in in_progress
        assert in_progress["executionDetails"]["externalExecutionId"] == run_id
    # While the run goes on, each answer says which step it is at.
    assert any("is running; step " in r["executionDetails"]["summary"] for r in results[1:-1])
    last = results[-1]
    assert last["result"] == "success"
    assert "continuationToken" not in last
    assert last["outputVariables"] == {
        "run_id": run_id,
        "status": "SUCCEEDED",
        "image_id": view["output"]["image_id"],
        "image_name": view["output"]["image_name"],
        "launch_template_id": template_id,
        "launch_template_version": "2",
    }
    assert last["outputVariables"]["image_id"].startswith("ami-")
    assert run_id in last["executionDetails"]["summary"]


def test_a_re_invoked_job_starts_nothing_new(aws: EmbeddedAws, net: seed.Network) -> None:
    instance_id = seed.instance(aws, net, "app-1")
    seed.launch_template_group(aws, net, "web")
    event = aws.emulation.codepipeline.job_event(
        {"workflow": "ami_bake", "instance_id": instance_id, "asg_name": "web"}
    )
    lost = aws.faults.fail_call(
        "codepipeline",
        "PutJobSuccessResult",
        "ServiceFailure",
        "the connection was reset",
        when=lambda params: params["jobId"] == job_id(event),
    )

    # The run started but its report was lost: the error escapes, and Lambda invokes the job again.
    with pytest.raises(AwsCallFailed):
        invoke(aws, event)
    again = invoke(aws, event)

    assert lost.hits == 1
    assert [e["name"] for e in executions(aws)] == [again["run_id"]]
    assert result(aws, event)["continuationToken"] == again["run_id"]
    view = aws.wait_for_run(again["run_id"])
    assert view["requester"]["kind"] == "pipeline"


def test_a_failed_run_fails_the_job_with_its_reason(aws: EmbeddedAws, net: seed.Network) -> None:
    instance_id = seed.instance(aws, net, "app-1")
    seed.launch_template_group(aws, net, "web")
    aws.emulation.ec2.fail_next_image("Snapshot of /dev/sdc failed: internal error")
    first = aws.emulation.codepipeline.job_event(
        {"workflow": "ami_bake", "instance_id": instance_id, "asg_name": "web"}
    )

    results = run_action(aws, first)

    run_id = results[0]["continuationToken"]
    view = aws.api.get(f"/runs/{run_id}").json()
    assert view["status"] == "FAILED"
    last = results[-1]
    assert last["result"] == "failure"
    assert last["failureDetails"]["type"] == "JobFailed"
    assert view["error"]["message"] in last["failureDetails"]["message"]
    assert "Snapshot of /dev/sdc failed" in last["failureDetails"]["message"]
    assert last["failureDetails"]["externalExecutionId"] == run_id


def test_bad_user_parameters_fail_the_job_as_a_configuration_error(aws: EmbeddedAws) -> None:
    not_json = aws.emulation.codepipeline.job_event("{workflow: ami_bake")
    invalid = aws.emulation.codepipeline.job_event(
        {"workflow": "ami_bake", "instance_id": "vm-1", "asg_name": "web", "colour": "red"}
    )

    invoke(aws, not_json)
    invoke(aws, invalid)

    not_json_failure = result(aws, not_json)["failureDetails"]
    assert not_json_failure["type"] == "ConfigurationError"
    assert not_json_failure["message"].startswith(
        "The request is not valid: UserParameters: is not valid JSON ("
    )
    failure = result(aws, invalid)["failureDetails"]
    assert failure["type"] == "ConfigurationError"
    api = aws.api.post(
        "/runs",
        json={"workflow": "ami_bake", "instance_id": "vm-1", "asg_name": "web", "colour": "red"},
        principal="arn:aws:iam::123456789012:user/alice",
    )
    assert api.status_code == 400
    assert failure["message"] == api.json()["message"]
    assert "instance_id: " in failure["message"]
    assert "colour: is not a field of this workflow" in failure["message"]
    assert executions(aws) == []
    empty = aws.emulation.codepipeline.job_event("")
    invoke(aws, empty)
    assert (
        "UserParameters: is empty: set it to a run request as JSON"
        in result(aws, empty)["failureDetails"]["message"]
    )


def test_a_refused_request_fails_the_job_with_the_guards_message(aws: EmbeddedAws, net: seed.Network) -> None:
    instance_id = seed.instance(aws, net, "app-1")
    seed.launch_template_group(aws, net, "web")
    event = aws.emulation.codepipeline.job_event(
        {"workflow": "ami_bake", "instance_id": instance_id, "asg_name": "no-such-group"}
    )

    invoke(aws, event)

    failure = result(aws, event)["failureDetails"]
    assert failure["type"] == "JobFailed"
    assert "no-such-group" in failure["message"]
    assert executions(aws) == []


def test_a_job_invoked_again_after_its_report_gets_the_same_answer_and_reports_nothing_twice(
    aws: EmbeddedAws, net: seed.Network
) -> None:
    instance_id = seed.instance(aws, net, "app-1")
    seed.launch_template_group(aws, net, "web")
    event = aws.emulation.codepipeline.job_event(
        {"workflow": "ami_bake", "instance_id": instance_id, "asg_name": "web"}
    )

    first = invoke(aws, event)
    again = invoke(aws, event)  # an asynchronous retry of the same invocation

    assert again == first
    assert len(aws.emulation.codepipeline.results(job_id(event))) == 1
    assert [e["name"] for e in executions(aws)] == [first["run_id"]]
