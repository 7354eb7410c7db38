"""sutram.approvals.routes end to end through the API Lambda handler, against moto: listing,
reading, deciding (approve, reject, edit), who may decide, once only, deadlines, signed callback
links, and the task token never leaving the store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from sutram import wiring
from sutram.approvals import decisions
from sutram.approvals.links import CALLBACK_PATH, make_links
from sutram.store.approvals import MAX_PROPOSAL_BYTES, ApprovalRecord, ApprovalStore
from tests.unit.support.api import ApiEnvironment, ApiResult, api_environment, call_api, claims_for
from tests.unit.support.approvals import approval_record

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

SECRET = "callback-secret-for-tests"
BASE_URL = "https://api.example/v1"
SCHEMA = {
    "type": "object",
    "properties": {"order": {"type": "integer"}, "amount": {"type": "number", "maximum": 500}},
    "required": ["order", "amount"],
}
PROPOSAL = {"order": 42, "amount": 120.5}
NOT_FOUND = {"error": {"code": "approval_not_found", "message": "no such approval"}}


def task_token(approval_id: str) -> str:
    return f"AAAA-task-token-{approval_id}-ZZZZ"


@dataclass
class Approvals:
    api: ApiEnvironment
    completed: list[tuple[ApprovalRecord, str]]
    bodies: list[str] = field(default_factory=list)  # every response body, to search for task tokens

    @property
    def store(self) -> ApprovalStore:
        return ApprovalStore(wiring.table())

    def open(
        self, step_path: str = "approve_refund", *, tenant: str = "acme", deadline: timedelta = timedelta(hours=48)
    ) -> ApprovalRecord:
        now = datetime.now(UTC)
        record = approval_record(
            step_path,
            tenant=tenant,
            created_at=now - timedelta(hours=1),
            expires_at=now + deadline,
            proposal=PROPOSAL,
            proposal_schema=SCHEMA,
        )
        return self.store.open(record, task_token(record.approval_id))

    def call(
        self,
        method: str,
        path: str,
        *,
        tenant: str = "acme",
        groups: str | None = "finance",
        body: Any = None,
        signed_in: bool = True,
    ) -> ApiResult:
        result = call_api(method, path, claims=claims_for(tenant, groups=groups) if signed_in else None, body=body)
        self.bodies.append(result.text)
        return result

    def decide(self, approval_id: str, body: dict[str, Any], **kwargs: Any) -> ApiResult:
        return self.call("POST", f"/approvals/{approval_id}/decision", body=body, **kwargs)

    def link(self, record: ApprovalRecord, outcome: str, now: datetime | None = None) -> str:
        url = make_links(record, BASE_URL, now or datetime.now(UTC), SECRET)[outcome]
        return url.removeprefix(BASE_URL)

    def status(self, record: ApprovalRecord) -> str:
        stored = self.store.get(record.tenant, record.approval_id)
        assert stored is not None
        return stored.status


@pytest.fixture
def approvals(monkeypatch: pytest.MonkeyPatch) -> Iterator[Approvals]:
    completed: list[tuple[ApprovalRecord, str]] = []
    monkeypatch.setattr(decisions, "complete", lambda record, token, _client: completed.append((record, token)))
    with api_environment(monkeypatch) as api:
        # The link-signing keys, as the stack's secret holds them (sutram.store.signing_keys).
        secret = boto3.client("secretsmanager").create_secret(Name="links", SecretString=json.dumps({"key": SECRET}))
        monkeypatch.setenv("SUTRAM_CALLBACK_SECRET_ARN", secret["ARN"])
        wiring.reset()
        yield Approvals(api, completed)


# --- reading -------------------------------------------------------------------------------------


def test_the_list_holds_the_callers_tenants_pending_approvals_newest_first(approvals: Approvals) -> None:
    first, second = approvals.open("a"), approvals.open("b")
    approvals.open("c", tenant="globex")
    approvals.decide(second.approval_id, {"decision": "approve"})

    pending = approvals.call("GET", "/approvals")
    decided = approvals.call("GET", "/approvals?status=approved")

    assert pending.status == 200
    assert [a["approval_id"] for a in pending.body["approvals"]] == [first.approval_id]
    assert pending.body["next_cursor"] is None
    assert [a["approval_id"] for a in decided.body["approvals"]] == [second.approval_id]


def test_the_list_pages_with_a_cursor_bound_to_the_tenant(approvals: Approvals) -> None:
    for step in ("a", "b", "c"):
        approvals.open(step)

    page = approvals.call("GET", "/approvals?limit=2")
    rest = approvals.call("GET", f"/approvals?limit=2&cursor={page.body['next_cursor']}")
    foreign = approvals.call("GET", f"/approvals?cursor={page.body['next_cursor']}", tenant="globex")

    assert len(page.body["approvals"]) == 2 and len(rest.body["approvals"]) == 1
    assert foreign.status == 400 and foreign.body["error"]["code"] == "invalid_cursor"
    assert approvals.call("GET", "/approvals?status=maybe").status == 400


def test_an_approval_reads_with_its_proposal_group_and_deadline(approvals: Approvals) -> None:
    record = approvals.open()

    result = approvals.call("GET", f"/approvals/{record.approval_id}")

    assert result.status == 200
    assert result.body["proposal"] == PROPOSAL
    assert (result.body["group"], result.body["status"], result.body["decision"]) == ("finance", "pending", None)
    assert "tenant" not in result.body


def test_another_tenants_approval_answers_exactly_like_an_unknown_one(approvals: Approvals) -> None:
    record = approvals.open(tenant="globex")

    unknown = approvals.call("GET", "/approvals/ap-unknown")
    foreign = approvals.call("GET", f"/approvals/{record.approval_id}")
    foreign_decision = approvals.decide(record.approval_id, {"decision": "approve"})

    assert (unknown.status, unknown.body) == (404, NOT_FOUND)
    assert (foreign.status, foreign.body) == (404, NOT_FOUND)
    assert (foreign_decision.status, foreign_decision.body) == (404, NOT_FOUND)
    assert approvals.status(record) == "pending" and approvals.completed == []


# --- deciding ------------------------------------------------------------------------------------


def test_approve_records_the_decision_and_resumes_the_run_with_the_task_token(approvals: Approvals) -> None:
    record = approvals.open()

    result = approvals.decide(record.approval_id, {"decision": "approve", "comment": "fine"})

    assert result.status == 200
    assert result.body["status"] == "approved"
    assert result.body["decision"]["outcome"] == "approve"
    assert (result.body["decision"]["by"], result.body["decision"]["comment"]) == ("ana", "fine")
    ((resumed, token),) = approvals.completed
    assert (resumed.status, token) == ("approved", task_token(record.approval_id))
    assert approvals.status(record) == "approved"


def test_reject_records_the_decision_and_resumes_the_run(approvals: Approvals) -> None:
    record = approvals.open()

    result = approvals.decide(record.approval_id, {"decision": "reject", "comment": "too much"})

    assert (result.status, result.body["status"]) == (200, "rejected")
    assert result.body["decision"]["comment"] == "too much"
    assert [resumed.status for resumed, _ in approvals.completed] == ["rejected"]


def test_an_edited_proposal_is_recorded_next_to_the_original(approvals: Approvals) -> None:
    record = approvals.open()
    edited = {"order": 42, "amount": 99}

    result = approvals.decide(record.approval_id, {"decision": "approve", "proposal": edited})

    assert result.status == 200
    assert result.body["proposal"] == PROPOSAL
    assert result.body["decision"]["edited_proposal"] == edited
    assert approvals.completed[0][0].decision.edited_proposal == edited  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("edited", "field", "message"),
    [
        ({"order": 42, "amount": 900}, "proposal.amount", "must be smaller than or equal to 500"),
        ({"amount": 90}, "proposal.order", "proposal.order is required"),
    ],
)
def test_an_edited_proposal_that_fails_the_schema_is_refused_with_its_field(
    approvals: Approvals, edited: dict[str, Any], field: str, message: str
) -> None:
    record = approvals.open()

    result = approvals.decide(record.approval_id, {"decision": "approve", "proposal": edited})

    assert result.status == 400
    assert (result.body["error"]["code"], result.body["error"]["field"]) == ("invalid_proposal", field)
    assert message in result.body["error"]["message"]
    assert approvals.status(record) == "pending" and approvals.completed == []


def test_an_edited_proposal_too_large_for_the_approval_is_refused(approvals: Approvals) -> None:
    record = approvals.open()
    edited = {"order": 42, "amount": 1, "note": "x" * MAX_PROPOSAL_BYTES}

    result = approvals.decide(record.approval_id, {"decision": "approve", "proposal": edited})

    assert (result.status, result.body["error"]["code"], result.body["error"]["field"]) == (
        400,
        "invalid_proposal",
        "proposal",
    )
    assert result.body["error"]["message"] == f"the proposal is 131110 bytes of JSON; at most {MAX_PROPOSAL_BYTES}"
    assert approvals.status(record) == "pending" and approvals.completed == []


def test_a_second_decision_answers_409_with_the_first(approvals: Approvals) -> None:
    record = approvals.open()
    first = approvals.decide(record.approval_id, {"decision": "approve", "comment": "ok"})

    second = approvals.decide(record.approval_id, {"decision": "reject", "comment": "no"})

    assert second.status == 409
    assert second.body["error"]["code"] == "already_decided"
    assert second.body["approval"]["decision"] == first.body["decision"]
    assert len(approvals.completed) == 1


def test_a_caller_outside_the_approvals_group_may_not_decide(approvals: Approvals) -> None:
    record = approvals.open()

    outsider = approvals.decide(record.approval_id, {"decision": "approve"}, groups="sales,support")
    no_groups = approvals.decide(record.approval_id, {"decision": "approve"}, groups=None)

    assert (outsider.status, outsider.body["error"]["code"]) == (403, "not_allowed")
    assert no_groups.status == 403
    assert approvals.decide(record.approval_id, {"decision": "approve"}, groups="[sales finance]").status == 200
    assert len(approvals.completed) == 1


def test_a_decision_after_the_deadline_answers_409_approval_expired(approvals: Approvals) -> None:
    record = approvals.open(deadline=timedelta(seconds=-1))

    result = approvals.decide(record.approval_id, {"decision": "approve"})

    assert (result.status, result.body["error"]["code"]) == (409, "approval_expired")
    assert approvals.completed == []


def send_task_success_fails(monkeypatch: pytest.MonkeyPatch, code: str, before: Any = None) -> None:
    """SendTaskSuccess answers `code`, as Step Functions does when no task waits on the token."""

    def complete(record: ApprovalRecord, token: str, _client: Any) -> None:
        if before:
            before(record)
        raise ClientError({"Error": {"Code": code, "Message": "Task Timed Out"}}, "SendTaskSuccess")

    monkeypatch.setattr(decisions, "complete", complete)


@pytest.mark.parametrize("code", ["TaskTimedOut", "TaskDoesNotExist", "InvalidToken"])
def test_a_decision_the_run_stopped_waiting_for_answers_409_and_the_approval_lapses(
    approvals: Approvals, monkeypatch: pytest.MonkeyPatch, code: str
) -> None:
    record = approvals.open()
    send_task_success_fails(monkeypatch, code)

    result = approvals.decide(record.approval_id, {"decision": "approve", "comment": "ok"})

    assert (result.status, result.body["error"]["code"]) == (409, "approval_expired")
    assert (
        result.body["error"]["message"] == "the run stopped waiting before this decision reached it; nothing was done"
    )
    stored = approvals.store.get("acme", record.approval_id)
    assert stored is not None and stored.status == "expired"
    assert stored.decision is not None and stored.decision.comment == "ok"  # kept, with no effect
    assert approvals.decide(record.approval_id, {"decision": "reject"}).status == 409


def test_a_decision_a_retried_request_picked_up_answers_200(
    approvals: Approvals, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = approvals.open()
    # A retried request of the approval opened it again with its own token, found the decision and
    # resumed the run with it; the token this decision was sent with is dead.
    send_task_success_fails(monkeypatch, "TaskDoesNotExist", before=lambda r: approvals.store.open(r, "token-2"))

    result = approvals.decide(record.approval_id, {"decision": "approve"})

    assert result.status == 200 and result.body["status"] == "approved"
    assert approvals.status(record) == "approved"


def test_another_failure_to_resume_the_run_answers_500_with_the_decision_recorded(
    approvals: Approvals, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = approvals.open()
    send_task_success_fails(monkeypatch, "ThrottlingException")

    result = approvals.decide(record.approval_id, {"decision": "approve"})

    assert (result.status, result.body["error"]["code"]) == (500, "internal_error")
    assert approvals.status(record) == "approved"


@pytest.mark.parametrize("body", [{"decision": "maybe"}, {}, {"decision": "approve", "extra": 1}])
def test_an_invalid_decision_body_answers_400(approvals: Approvals, body: dict[str, Any]) -> None:
    record = approvals.open()
    result = approvals.decide(record.approval_id, body)
    assert (result.status, result.body["error"]["code"]) == (400, "invalid_request")


# --- signed callback links -------------------------------------------------------------------------


def test_a_callback_link_decides_without_a_session_and_records_who_and_when(approvals: Approvals) -> None:
    record = approvals.open()
    path = approvals.link(record, "reject")

    preview = approvals.call("GET", path, signed_in=False)
    assert (preview.status, preview.body["status"]) == (200, "pending")
    assert approvals.completed == []

    result = approvals.call("POST", path, signed_in=False)

    assert result.status == 200
    assert result.body["status"] == "rejected"
    assert result.body["decision"]["by"] == "callback link (finance)"
    assert datetime.fromisoformat(result.body["decision"]["at"]) > datetime.now(UTC) - timedelta(minutes=1)
    assert [token for _, token in approvals.completed] == [task_token(record.approval_id)]


def _forged(path: str) -> str:
    payload, _, _signature = path.removeprefix(CALLBACK_PATH).partition(".")
    return f"{CALLBACK_PATH}{payload}.{'A' * 43}"


def test_a_forged_altered_or_expired_link_is_refused_and_changes_nothing(approvals: Approvals) -> None:
    record = approvals.open()
    good = approvals.link(record, "approve")
    other_approval = approvals.link(approvals.open("other"), "approve")
    refused = [
        _forged(good),
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        other_approval.rpartition(".")[0] + "." + good.rpartition(".")[2],  # another link's signature
        approvals.link(record, "approve", now=datetime.now(UTC) - timedelta(hours=25)),
        CALLBACK_PATH + "garbage",
    ]

    results = [approvals.call("POST", path, signed_in=False) for path in refused]

    assert [(r.status, r.body["error"]["code"]) for r in results] == [(403, "invalid_link")] * len(refused)
    assert approvals.status(record) == "pending" and approvals.completed == []


def test_a_used_link_and_its_pair_are_refused_and_change_nothing(approvals: Approvals) -> None:
    record = approvals.open()
    approve, reject = approvals.link(record, "approve"), approvals.link(record, "reject")
    first = approvals.call("POST", approve, signed_in=False)

    again = approvals.call("POST", approve, signed_in=False)
    pair = approvals.call("POST", reject, signed_in=False)

    assert first.status == 200
    assert [(r.status, r.body["error"]["code"]) for r in (again, pair)] == [(409, "already_decided")] * 2
    assert again.body["approval"]["decision"] == first.body["decision"]
    assert approvals.status(record) == "approved" and len(approvals.completed) == 1


def test_the_approval_routes_still_need_a_session(approvals: Approvals) -> None:
    record = approvals.open()
    assert approvals.call("GET", "/approvals", signed_in=False).status == 401
    assert approvals.decide(record.approval_id, {"decision": "approve"}, signed_in=False).status == 401


def test_openapi_json_documents_the_approval_routes_and_that_callbacks_need_no_session(
    approvals: Approvals,
) -> None:
    paths = approvals.call("GET", "/openapi.json", signed_in=False).body["paths"]

    assert {"/approvals", "/approvals/{approval_id}", "/approvals/{approval_id}/decision"} <= set(paths)
    assert set(paths["/approvals/{approval_id}/decision"]["post"]["responses"]) == {
        *("200", "400", "401", "403", "404", "409"),
        *("413", "415"),  # a body no route may read
        *("429", "500"),  # any operation: throttled, an internal error
    }
    assert set(paths["/approvals/{approval_id}"]["get"]["responses"]) == {"200", "401", "404", "429", "500"}
    assert "security" not in paths["/approvals"]["get"]  # the document's default: the Cognito token
    assert [paths["/callbacks/approvals/{token}"][verb]["security"] for verb in ("get", "post")] == [[], []]


# --- the task token ------------------------------------------------------------------------------


def test_no_response_of_the_whole_flow_contains_the_task_token(approvals: Approvals) -> None:
    records = [approvals.open(step) for step in ("a", "b", "c", "d")]
    a, b, c, d = (record.approval_id for record in records)
    approvals.call("GET", "/approvals")
    approvals.call("GET", f"/approvals/{a}")
    approvals.decide(a, {"decision": "approve", "proposal": {"order": 1, "amount": 9000}})
    approvals.decide(a, {"decision": "approve", "proposal": {"order": 1, "amount": 1}}, groups="sales")
    approvals.decide(a, {"decision": "approve", "proposal": {"order": 1, "amount": 1}})
    approvals.decide(a, {"decision": "reject"})
    approvals.call("GET", f"/approvals/{a}")
    approvals.call("GET", "/approvals?status=approved")
    approvals.call("GET", approvals.link(records[1], "reject"), signed_in=False)
    approvals.call("POST", approvals.link(records[1], "reject"), signed_in=False)
    approvals.call("POST", approvals.link(records[1], "approve"), signed_in=False)
    approvals.decide(b, {"decision": "approve"})
    approvals.call("GET", "/approvals?status=rejected")
    approvals.decide(c, {"decision": "reject", "comment": "no"})
    approvals.call("GET", f"/approvals/{d}", tenant="globex")

    assert len(approvals.bodies) == 15 and len(approvals.completed) == 3
    for approval_id in (a, b, c, d):
        token = task_token(approval_id)
        assert not [body for body in approvals.bodies if token in body or "task_token" in body]
    assert not [body for body in approvals.bodies if "task-token" in body]
