from __future__ import annotations

from collections.abc import Iterator

import pytest

from opsflow_local import EmbeddedAws, seed


@pytest.fixture
def aws() -> Iterator[EmbeddedAws]:
    with EmbeddedAws() as embedded:
        yield embedded


@pytest.fixture
def net(aws: EmbeddedAws) -> seed.Network:
    return seed.network(aws)
