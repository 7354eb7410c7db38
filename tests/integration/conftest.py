"""Integration-tier fixtures: the session's local cloud with a fresh composition root per test, and
the step runtime observed or crashed on purpose."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

from localcloud.observe import ModelCallCounter, count_model_calls
from sutram import wiring
from tests.support import set_faults


@pytest.fixture
def cloud(local_cloud: Any) -> Iterator[Any]:
    wiring.reset()
    yield local_cloud
    wiring.reset()


@pytest.fixture
def model_calls(cloud: Any) -> ModelCallCounter:
    """Counts the model calls the step Lambdas make, by the first line of each prompt."""
    return count_model_calls()


@pytest.fixture
def inject_faults(cloud: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    return partial(set_faults, monkeypatch)
