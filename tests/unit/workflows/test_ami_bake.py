"""AMI bake logic that needs no AWS: naming, failure wording, the run's result and error."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from opsflow.workflows.ami_bake import steps as ami_bake
from opsflow.workflows.ami_bake.request import AmiBakeRequest


def test_image_name_fills_the_template() -> None:
    request = AmiBakeRequest.model_validate(
        {
            "workflow": "ami_bake",
            "instance_id": "i-0123456789abcdef0",
            "asg_name": "web",
            "image_name": "{asg_name}/{instance_id}/{run_id}/{timestamp}",
        }
    )
    name = ami_bake.image_name(request, "ami-bake-1", datetime(2026, 11, 24, 1, 2, 3, tzinfo=UTC))
    assert name == "web/i-0123456789abcdef0/ami-bake-1/20261124-010203"


def test_lambda_errors_are_described_by_their_message_not_their_json() -> None:
    error = {
        "Error": "ImageFailed",
        "Cause": json.dumps(
            {"errorType": "ImageFailed", "errorMessage": "image ami-1 ended failed: bad disk"}
        ),
    }
    assert ami_bake.describe_failure(error) == "ImageFailed: image ami-1 ended failed: bad disk"
    assert ami_bake.describe_failure({"Error": "States.Timeout", "Cause": ""}) == "States.Timeout"
    assert ami_bake.describe_failure(None) == "unknown error"


def test_error_of_names_the_step_and_whether_the_group_is_unchanged() -> None:
    state = {
        "failed_step": "publish",
        "error": {
            "Error": "AwsCallFailed",
            "Cause": json.dumps({"errorMessage": "CreateLaunchTemplateVersion failed"}),
        },
        "rollback": {"undone": ["deregistered image ami-1"], "problems": []},
    }
    error = ami_bake.error_of(state)
    assert error["step"] == "publish"
    assert error["message"] == "AwsCallFailed: CreateLaunchTemplateVersion failed"
    assert error["group_unchanged"] is True
    state["rollback"] = {"undone": [], "problems": ["deleted snapshot snap-1: InvalidSnapshot.InUse"]}
    assert ami_bake.error_of(state)["group_unchanged"] is False


def test_result_of_reports_before_and_after_and_prune_warnings() -> None:
    state = {
        "request": {"asg_name": "web"},
        "guard": {
            "source": {
                "kind": "launch_template",
                "template_id": "lt-1",
                "version": 3,
                "version_ref": "$Default",
            }
        },
        "image": {"image_id": "ami-2", "name": "web-1", "snapshots": [{"device": "/dev/xvda"}]},
        "publish": {"kind": "launch_template", "template_id": "lt-1", "version": 4},
        "prune_error": {"Error": "AwsCallFailed", "Cause": "{}"},
    }
    result = ami_bake.result_of(state)
    assert result["group"] == {
        "name": "web",
        "before": "launch template lt-1 version $Default",
        "after": "launch template lt-1 version 4",
    }
    assert result["warnings"]
    assert "pruning old images failed" in result["warnings"][0]
