"""Fixtures of the runs tests: the API handler on moto resources shaped like the stack's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.support.api import ApiEnvironment, api_environment


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiEnvironment]:
    with api_environment(monkeypatch) as environment:
        yield environment
