"""A target's key is what locks and run records hold: the hub's own targets keep the form records carry."""

from __future__ import annotations

import pytest

from opsflow.aws.target import Target

LISTENER = (
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2"
)


@pytest.mark.parametrize(
    ("target", "key"),
    [
        (Target("asg", "web"), "asg:web"),
        (Target("ecs", "prod/web"), "ecs:prod/web"),
        (Target("listener", LISTENER), f"listener:{LISTENER}"),
        (Target("asg", "web", "111122223333", "eu-west-1"), "asg:web@111122223333/eu-west-1"),
        (Target("ecs", "prod/web", region="eu-west-1"), "ecs:prod/web@/eu-west-1"),
        (Target("asg", "team@web"), "asg:team@web"),
        (
            Target("asg", "team@web", "111122223333", "us-gov-west-1"),
            "asg:team@web@111122223333/us-gov-west-1",
        ),
    ],
)
def test_a_key_reads_back_as_the_same_target(target: Target, key: str) -> None:
    assert target.key == key
    assert Target.from_key(key) == target


def test_a_target_is_described_for_people() -> None:
    assert Target("asg", "web").describe() == "Auto Scaling group web"
    assert (
        Target("env", "qa", "111122223333", "eu-west-1").describe()
        == "environment qa in 111122223333/eu-west-1"
    )
    assert Target.from_key("not-a-key") == Target("", "not-a-key")
