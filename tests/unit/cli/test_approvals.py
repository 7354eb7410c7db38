"""`sutram approvals`, `approve` and `reject` against the real API handler, served by the local HTTP adapter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sutram import wiring
from sutram.approvals import decisions
from sutram.handlers.api import handler as api_handler
from sutram.store.approvals import ApprovalStore
from tests.support import run_cli
from tests.unit.support.api import api_environment, claims_for
from tests.unit.support.approvals import approval_record
from tests.unit.support.http import serving

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

CLAIMS = {f"token-{group}": claims_for("acme", user=f"ana-{group}", groups=group) for group in ("finance", "sales")}
SCHEMA = {"type": "object", "properties": {"amount": {"type": "number", "maximum": 500}}, "required": ["amount"]}


@dataclass
class CliEnvironment:
    base_url: str
    capsys: pytest.CaptureFixture[str]
    resumed: list[str]

    def run(self, *argv: str, token: str = "token-finance") -> tuple[int, str, str]:
        return run_cli(self.capsys, self.base_url, token, *argv)

    def open(self, step_path: str) -> str:
        now = datetime.now(UTC)
        record = approval_record(
            step_path,
            created_at=now,
            expires_at=now + timedelta(hours=4),
            summary=f"Refund for {step_path}",
            proposal={"amount": 120},
            proposal_schema=SCHEMA,
        )
        return ApprovalStore(wiring.table()).open(record, f"task-token-{step_path}").approval_id


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path) -> Iterator[CliEnvironment]:
    resumed: list[str] = []
    monkeypatch.setattr(decisions, "complete", lambda record, token, _client: resumed.append(token))
    with api_environment(monkeypatch), serving(api_handler, CLAIMS.get) as base_url:
        yield CliEnvironment(base_url, capsys, resumed)


def test_approvals_lists_pending_approvals_and_says_when_there_are_none(env: CliEnvironment) -> None:
    assert env.run("approvals") == (0, "no pending approvals\n", "")
    approval_id = env.open("refund")

    code, out, _ = env.run("approvals")

    assert code == 0
    assert out.startswith(approval_id) and "pending" in out and "finance  refunds/refund  Refund for refund" in out
    code, out, _ = env.run("approvals", "--json")
    assert [a["approval_id"] for a in json.loads(out)["approvals"]] == [approval_id]


def test_approve_with_an_edited_proposal_and_a_comment(env: CliEnvironment) -> None:
    approval_id = env.open("refund")

    code, out, err = env.run("approve", approval_id, "--comment", "ok", "--proposal", '{"amount": 99}')

    assert (code, err) == (0, "")
    assert out.startswith(f"approved {approval_id} (approve by ana-finance at ")
    assert out.rstrip().endswith("with an edited proposal)")
    assert env.resumed == ["task-token-refund"]
    assert env.run("approvals", "--status", "approved")[1].startswith(approval_id)


def test_reject_needs_a_comment(env: CliEnvironment) -> None:
    approval_id = env.open("refund")
    with pytest.raises(SystemExit) as exited:
        env.run("reject", approval_id)
    assert exited.value.code == 2

    code, out, _ = env.run("reject", approval_id, "--comment", "too much")

    assert code == 0 and out.startswith(f"rejected {approval_id} (reject by ana-finance")


def test_a_second_decision_exits_1_and_shows_the_first(env: CliEnvironment) -> None:
    approval_id = env.open("refund")
    env.run("approve", approval_id)

    code, out, err = env.run("reject", approval_id, "--comment", "no")

    assert (code, out) == (1, "")
    assert "[HTTP 409, already_decided]; it was approve by ana-finance at " in err
    assert env.resumed == ["task-token-refund"]


@pytest.mark.parametrize(
    ("argv", "token", "expected"),
    [
        (("--proposal", '{"amount": 900}'), "token-finance", "(field: proposal.amount) [HTTP 400, invalid_proposal]"),
        ((), "token-sales", "[HTTP 403, not_allowed]"),
    ],
)
def test_a_refused_decision_exits_1_with_the_apis_reason(
    env: CliEnvironment, argv: tuple[str, ...], token: str, expected: str
) -> None:
    approval_id = env.open("refund")

    code, _, err = env.run("approve", approval_id, *argv, token=token)

    assert code == 1 and expected in err
    assert env.resumed == []


def test_an_unknown_approval_exits_1(env: CliEnvironment) -> None:
    code, _, err = env.run("approve", "ap-nope")
    assert code == 1 and "[HTTP 404, approval_not_found]" in err
