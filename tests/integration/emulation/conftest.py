from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from moto import mock_aws

from opsflow_local.emulation.ec2 import Ec2Emulation


@pytest.fixture
def ec2_emulation() -> Iterator[Ec2Emulation]:
    """moto with the EC2 emulation installed; images stay pending for 60 AWS seconds = 60 ms."""
    emulation = Ec2Emulation(time_scale=0.001)
    with ExitStack() as stack:
        emulation.install(stack)
        stack.enter_context(mock_aws())
        yield emulation
