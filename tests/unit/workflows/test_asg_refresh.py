"""Instance refresh preferences as AWS names them, and the plan a person reads."""

from __future__ import annotations

from opsflow.workflows.asg_refresh.refresh import RefreshSpec, preferences
from opsflow.workflows.asg_refresh.request import RefreshOptions


def test_options_become_aws_preferences_and_omitted_ones_stay_aws_defaults() -> None:
    options = RefreshOptions.model_validate(
        {
            "min_healthy_percentage": 75,
            "checkpoints": {"percentages": [20, 100], "delay_seconds": 600},
            "alarms": ["5xx"],
        }
    )
    assert preferences(options) == {
        "MinHealthyPercentage": 75,
        "SkipMatching": False,
        "AutoRollback": True,
        "CheckpointPercentages": [20, 100],
        "CheckpointDelay": 600,
        "AlarmSpecification": {"Alarms": ["5xx"]},
    }
    bare = preferences(RefreshOptions())
    assert "InstanceWarmup" not in bare
    assert "MaxHealthyPercentage" not in bare


def test_the_plan_says_what_rolls_back_to_what() -> None:
    spec = RefreshSpec(
        group="web",
        capacity=4,
        template_id="lt-1",
        template_name="web",
        previous_version=3,
        target_version=4,
        options=RefreshOptions.model_validate({"alarms": ["5xx"]}),
    )
    actions = spec.actions()
    assert "onto launch template web version 4" in actions[0]
    assert "Watch alarm(s) 5xx: one in ALARM fails the refresh" in actions
    assert "On failure, AWS rolls the instances back to version 3" in actions
    assert actions[-1] == "On success, make version 4 the template's default"
    assert spec.actions(target="<new>")[-1] == "On success, make version <new> the template's default"
