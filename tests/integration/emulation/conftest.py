from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from moto import mock_aws

from opsflow_local.emulation.autoscaling import AutoScalingEmulation
from opsflow_local.emulation.ec2 import Ec2Emulation


@pytest.fixture
def ec2_emulation() -> Iterator[Ec2Emulation]:
    """moto with the EC2 emulation installed; images stay pending for 60 AWS seconds = 60 ms."""
    emulation = Ec2Emulation(time_scale=0.001)
    with ExitStack() as stack:
        emulation.install(stack)
        stack.enter_context(mock_aws())
        yield emulation


@pytest.fixture
def autoscaling_emulation() -> Iterator[AutoScalingEmulation]:
    """moto with instance refresh emulated; one AWS second lasts a millisecond."""
    # Pending (and Cancelling) for 200 AWS seconds = 0.2 s: long enough to observe on a busy machine.
    emulation = AutoScalingEmulation(time_scale=0.001, pending_seconds=200)
    with ExitStack() as stack:
        Ec2Emulation(time_scale=0.001).install(stack)
        emulation.install(stack)
        stack.enter_context(mock_aws())
        yield emulation
