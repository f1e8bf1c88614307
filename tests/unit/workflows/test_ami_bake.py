"""AMI bake logic that needs no AWS: naming, failure wording, the run's result and error."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from opsflow.runs.steps import describe_failure
from opsflow.workflows.ami_bake.image import image_name
from opsflow.workflows.ami_bake.request import AmiBakeRequest
from opsflow.workflows.ami_bake.results import run_error, run_result
from opsflow.workflows.ami_bake.state import BakeState


def bake_state(**results: Any) -> BakeState:
    return BakeState.model_validate(
        {
            "run_id": "ami-bake-1",
            "workflow": "ami_bake",
            "target": "asg:web",
            "request": {"workflow": "ami_bake", "instance_id": "i-0123456789abcdef0", "asg_name": "web"},
            **results,
        },
        strict=False,
    )


def test_image_name_fills_the_template() -> None:
    request = AmiBakeRequest.model_validate(
        {
            "workflow": "ami_bake",
            "instance_id": "i-0123456789abcdef0",
            "asg_name": "web",
            "image_name": "{asg_name}/{instance_id}/{run_id}/{timestamp}",
        }
    )
    name = image_name(request, "ami-bake-1", datetime(2026, 11, 24, 1, 2, 3, tzinfo=UTC))
    assert name == "web/i-0123456789abcdef0/ami-bake-1/20261124-010203"


def test_lambda_errors_are_described_by_their_message_not_their_json() -> None:
    error = {
        "Error": "ImageFailed",
        "Cause": json.dumps(
            {"errorType": "ImageFailed", "errorMessage": "image ami-1 ended failed: bad disk"}
        ),
    }
    assert describe_failure(error) == "ImageFailed: image ami-1 ended failed: bad disk"
    assert describe_failure({"Error": "States.Timeout", "Cause": ""}) == "States.Timeout"
    assert describe_failure(None) == "unknown error"


def test_error_of_names_the_step_and_whether_the_group_is_unchanged() -> None:
    failure = {
        "failed_step": "publish",
        "error": {
            "Error": "AwsCallFailed",
            "Cause": json.dumps({"errorMessage": "CreateLaunchTemplateVersion failed"}),
        },
    }
    error = run_error(
        bake_state(**failure, rollback={"undone": ["deregistered image ami-1"], "problems": []})
    )
    assert error["step"] == "publish"
    assert error["message"] == "AwsCallFailed: CreateLaunchTemplateVersion failed"
    assert error["group_unchanged"] is True
    assert error["rollback"] == {"undone": ["deregistered image ami-1"], "problems": []}
    problem = {"undone": [], "problems": ["deleted snapshot snap-1: InvalidSnapshot.InUse"]}
    assert run_error(bake_state(**failure, rollback=problem))["group_unchanged"] is False


def test_result_of_reports_before_and_after_and_prune_warnings() -> None:
    state = bake_state(
        guard={
            "source": {
                "kind": "launch_template",
                "template_id": "lt-1",
                "template_name": "web",
                "version": 3,
                "version_ref": "$Default",
                "image_id": "ami-1",
            }
        },
        image={
            "image_id": "ami-2",
            "name": "web-1",
            "created_at": "2026-11-24T01:02:03+00:00",
            "snapshots": [{"device": "/dev/xvda"}],
        },
        publish={"kind": "launch_template", "template_id": "lt-1", "version": 4},
        prune_error={"Error": "AwsCallFailed", "Cause": "{}"},
    )
    result = run_result(state)
    assert result["group"] == {
        "name": "web",
        "before": "launch template lt-1 version $Default",
        "after": "launch template lt-1 version 4",
    }
    assert result["warnings"]
    assert "pruning old images failed" in result["warnings"][0]
