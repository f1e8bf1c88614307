from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from opsflow.runs.requests import describe_validation_errors, parse_run_request
from opsflow.workflows.ami_bake.request import AmiBakeRequest
from opsflow.workflows.asg_refresh.request import AsgRefreshRequest

VALID = {"workflow": "ami_bake", "instance_id": "i-0123456789abcdef0", "asg_name": "web"}


def problems_for(payload: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        parse_run_request(payload)
    return {p["field"]: p["problem"] for p in describe_validation_errors(caught.value.errors())}


def test_defaults_are_the_careful_ones() -> None:
    request = parse_run_request(VALID)
    assert isinstance(request, AmiBakeRequest)
    assert request.no_reboot is True
    assert request.keep_images == 5
    assert request.dry_run is False
    assert request.target().key == "asg:web"


def test_missing_field_is_named() -> None:
    assert problems_for({"workflow": "asg_refresh"}) == {"asg_name": "is required"}


def test_a_bake_names_both_ways_to_give_what_it_images() -> None:
    assert problems_for({"workflow": "ami_bake", "asg_name": "web"}) == {
        "(body)": "give exactly one of instance_id (an instance to image) or builder"
    }


def test_unknown_workflow_lists_the_known_ones() -> None:
    assert problems_for({"workflow": "reboot_everything"}) == {
        "workflow": "must be one of: ami_bake, asg_refresh, env_power, ecs_blue_green, dns_shift, ami_lifecycle"
    }


def test_unknown_fields_and_wrong_types_are_refused_not_coerced() -> None:
    problems = problems_for({**VALID, "keep_images": "5", "colour": "blue"})
    assert problems["keep_images"] == "input should be a valid integer"
    assert problems["colour"] == "is not a field of this workflow"


def test_instance_id_must_look_like_one() -> None:
    assert "instance_id" in problems_for({**VALID, "instance_id": "web-1"})


@pytest.mark.parametrize("key", ["opsflow:run-id", "aws:cloudformation:stack-name", "OPSFLOW:x"])
def test_reserved_tag_keys_are_refused(key: str) -> None:
    assert "is reserved" in problems_for({**VALID, "tags": {key: "x"}})["tags"]


def test_image_name_template_fields_are_checked() -> None:
    problem = problems_for({**VALID, "image_name": "{asg_name}-{colour}"})["image_name"]
    assert "colour" in problem
    assert "{timestamp}" in problem


def test_keep_images_is_bounded() -> None:
    assert "keep_images" in problems_for({**VALID, "keep_images": 0})


def test_a_body_that_is_not_an_object_is_explained() -> None:
    assert problems_for([1, 2]) == {"(body)": "the body must be a JSON object"}


REFRESH = {"workflow": "asg_refresh", "asg_name": "web"}


def test_refresh_defaults_are_the_careful_ones() -> None:
    request = parse_run_request(REFRESH)
    assert isinstance(request, AsgRefreshRequest)
    assert (request.min_healthy_percentage, request.auto_rollback, request.skip_matching) == (90, True, False)
    assert request.target().key == "asg:web"
    assert request.refresh_options().auto_rollback is True


def test_checkpoints_must_ascend() -> None:
    problems = problems_for({**REFRESH, "checkpoints": {"percentages": [50, 20]}})
    assert "ascending" in problems["checkpoints.percentages"]


def test_healthy_percentages_are_bounded_together() -> None:
    problems = problems_for({**REFRESH, "min_healthy_percentage": 0, "max_healthy_percentage": 150})
    assert "at most 100" in problems["(body)"] or any("at most 100" in p for p in problems.values())


def test_a_bake_takes_refresh_options_but_not_a_version_or_group() -> None:
    problems = problems_for({**VALID, "refresh": {"launch_template_version": 3}})
    assert problems == {"refresh.launch_template_version": "is not a field of this workflow"}


def test_checkpoint_delay_may_be_called_delay() -> None:
    request = parse_run_request({**REFRESH, "checkpoints": {"percentages": [50], "delay": 120}})
    assert isinstance(request, AsgRefreshRequest)
    assert request.checkpoints is not None
    assert request.checkpoints.delay_seconds == 120


def test_checkpoint_waits_are_bounded() -> None:
    problems = problems_for(
        {**REFRESH, "checkpoints": {"percentages": [10, 20, 30, 40], "delay_seconds": 43200}}
    )
    assert "at most 12 hours" in problems["checkpoints"]
