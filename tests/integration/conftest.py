"""Integration-tier fixtures: the module's local cloud with a fresh composition root per test, the
model calls its sandboxes make, and faults injected into them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from localcloud.cloud import LocalCloud, Tally
from sutram import wiring


@pytest.fixture
def cloud(local_cloud: Any) -> Iterator[Any]:
    wiring.reset()
    yield local_cloud
    wiring.reset()


@pytest.fixture
def model_calls(cloud: LocalCloud) -> Tally:
    """Counts the model calls the step Lambdas make from now on, by the first line of each prompt."""
    return cloud.tally("model_calls")


@pytest.fixture
def inject_faults(cloud: LocalCloud) -> Iterator[Callable[[str], None]]:
    """Like deploying with SUTRAM_FAULTS=spec, for the rest of the test: crash a step at a named point
    on its first attempt."""
    yield cloud.inject_faults
    cloud.inject_faults("")
