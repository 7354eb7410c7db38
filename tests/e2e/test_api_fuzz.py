"""Every route of the API fuzzed by schemathesis over real HTTP, as an approver of tenant acme: no
answer is a server error, and every answer is one the OpenAPI document describes (status, headers,
body schema). Every check runs (tests/e2e/schemathesis.toml says what this API rightly answers
where a check cannot tell). The examples per route are bounded so the suite stays fast, and
derandomized so a failure repeats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from localcloud.session import LocalSession

EXAMPLES_PER_ROUTE = 40


@pytest.fixture(scope="module")
def openapi(sutram: LocalSession) -> Any:
    import requests

    document = requests.get(
        f"{sutram.api_url}/openapi.json", headers={"Authorization": sutram.tokens["ada"]}, timeout=10
    ).json()
    config = SchemathesisConfig.from_path(Path(__file__).with_name("schemathesis.toml"))
    schema = schemathesis.openapi.from_dict(document, config=config)
    schema.config.update(base_url=sutram.api_url)
    return schema


schema = schemathesis.pytest.from_fixture("openapi")


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_ROUTE, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_answer_of_every_route_is_documented_and_none_is_a_server_error(case: Any, sutram: LocalSession) -> None:
    case.call_and_validate(headers={"Authorization": sutram.tokens["ada"]}, timeout=30)
