"""Who may see what: the tenant comes from the caller's Cognito ID token, and nothing else.

ada works for tenant acme, grace for tenant globex; both hold real ID tokens from the local Cognito.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from localcloud.session import DEMO_PASSWORD
from tests.support import b64url_json, jwt_parts, signed_token

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

DOCUMENT = {"title": "Board minutes", "content": "Ines Duarte opened the meeting. The budget was approved."}
NO_SUCH_RUN = {"error": {"code": "run_not_found", "message": "no such run"}}
UNAUTHORIZED = {"message": "Unauthorized"}
CURSOR_REFUSED = "the cursor is not one this API returned to you"


@pytest.fixture(scope="module")
def adas_run(api) -> dict[str, Any]:
    return api.run_to_end({"document": DOCUMENT}, user="ada")


@pytest.fixture(scope="module")
def graces_run(api) -> dict[str, Any]:
    return api.run_to_end({"document": DOCUMENT}, user="grace")


# --- tenant isolation ---------------------------------------------------------------------------------


def test_another_tenants_run_answers_404_with_the_same_body_as_an_unknown_run(api, adas_run):
    # When grace asks for ada's run, for a well-formed id nobody has, and for a malformed one
    theirs = api.get(f"/runs/{adas_run['run_id']}", user="grace")
    unknown = api.get("/runs/r-00000000000000000000000000", user="grace")
    malformed = api.get("/runs/not-a-run-id", user="grace")

    # Then the three answers cannot be told apart
    for response in (theirs, unknown, malformed):
        assert response.status_code == 404
        assert response.headers["Content-Type"] == "application/json"
        assert response.json() == NO_SUCH_RUN
    assert theirs.content == unknown.content == malformed.content
    assert api.get(f"/runs/{adas_run['run_id']}", user="ada").status_code == 200


def test_another_tenants_run_steps_answer_404_with_the_same_body_as_an_unknown_run(api, adas_run):
    theirs = api.get(f"/runs/{adas_run['run_id']}/steps", user="grace")
    unknown = api.get("/runs/r-00000000000000000000000000/steps", user="grace")

    assert (theirs.status_code, unknown.status_code) == (404, 404)
    assert theirs.json() == unknown.json() == NO_SUCH_RUN
    assert len(api.get(f"/runs/{adas_run['run_id']}/steps", user="ada").json()["steps"]) == 4


def test_a_tenant_lists_only_its_own_runs(api, adas_run, graces_run):
    # When
    graces = api.get("/runs", user="grace", limit=100).json()
    adas = api.get("/runs", user="ada", limit=100).json()

    # Then
    grace_ids = [run["run_id"] for run in graces["runs"]]
    ada_ids = [run["run_id"] for run in adas["runs"]]
    assert grace_ids == list(reversed(api.started["grace"]))  # newest first, exactly the runs grace started
    assert graces_run["run_id"] in grace_ids and adas_run["run_id"] in ada_ids
    assert set(grace_ids).isdisjoint(ada_ids)
    assert graces["next_cursor"] is None and adas["next_cursor"] is None


def test_the_same_idempotency_key_in_two_tenants_starts_two_runs(api):
    # When
    adas = api.start({"document": DOCUMENT}, user="ada", idempotency_key="e2e-shared-key")
    graces = api.start({"document": DOCUMENT}, user="grace", idempotency_key="e2e-shared-key")

    # Then
    assert (adas.status_code, graces.status_code) == (201, 201)
    assert adas.json()["run_id"] != graces.json()["run_id"]
    assert api.wait(adas.json()["run_id"], user="ada")["status"] == "SUCCEEDED"
    assert api.wait(graces.json()["run_id"], user="grace")["status"] == "SUCCEEDED"


# --- listing, page by page ----------------------------------------------------------------------------


def test_runs_are_listed_newest_first_two_at_a_time_until_the_cursor_runs_out(api):
    # Given three new runs of acme
    newest_first = [api.run_to_end({"document": DOCUMENT})["run_id"] for _ in range(3)][::-1]

    # When ada follows next_cursor with limit=2
    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = api.get("/runs", **params)
        assert response.status_code == 200
        page = response.json()
        pages.append([run["run_id"] for run in page["runs"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 50, "next_cursor never ran out"

    # Then the newest runs come first, every page but the last is full, and nothing repeats or is missed
    assert pages[0] == newest_first[:2]
    assert pages[1][0] == newest_first[2]
    assert all(len(page) == 2 for page in pages[:-1]) and 1 <= len(pages[-1]) <= 2
    everything = api.get("/runs", limit=100).json()
    assert [run_id for page in pages for run_id in page] == [run["run_id"] for run in everything["runs"]]


def test_a_cursor_issued_to_one_tenant_is_refused_for_another(api):
    # Given a cursor ada got (she has at least two runs by now)
    api.run_to_end({"document": DOCUMENT})
    api.run_to_end({"document": DOCUMENT})
    adas_cursor = api.get("/runs", user="ada", limit=1).json()["next_cursor"]
    assert adas_cursor

    # When grace presents it
    response = api.get("/runs", user="grace", limit=1, cursor=adas_cursor)

    # Then
    assert response.status_code == 400
    assert response.json() == {"error": {"code": "invalid_cursor", "message": CURSOR_REFUSED, "field": "cursor"}}


def _invalid(code: str, field: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message, "field": field}


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"cursor": "bm90LWEtY3Vyc29y"}, _invalid("invalid_cursor", "cursor", CURSOR_REFUSED)),
        ({"limit": 0}, _invalid("invalid_request", "limit", "Input should be greater than or equal to 1")),
        ({"limit": 101}, _invalid("invalid_request", "limit", "Input should be less than or equal to 100")),
        (
            {"status": "running"},
            _invalid(
                "invalid_request",
                "status",
                "Input should be 'RUNNING', 'PAUSED', 'SUCCEEDED', 'FAILED', 'COMPENSATED' or 'ABORTED'",
            ),
        ),
    ],
    ids=["forged-cursor", "limit-0", "limit-101", "lower-case-status"],
)
def test_a_listing_with_an_invalid_query_answers_400_naming_the_parameter(api, params, error):
    response = api.get("/runs", **params)

    assert response.status_code == 400
    assert response.json() == {"error": error}


def test_a_status_filter_lists_only_runs_with_that_status(api, adas_run):
    failed = api.get("/runs", status="FAILED", limit=100).json()
    succeeded = api.get("/runs", status="SUCCEEDED", limit=100).json()

    assert failed == {"runs": [], "next_cursor": None}
    assert adas_run["run_id"] in [run["run_id"] for run in succeeded["runs"]]
    assert {run["status"] for run in succeeded["runs"]} == {"SUCCEEDED"}


# --- authentication: API Gateway's Cognito authorizer answers before the handler ----------------------


def _forged_signature(tokens: dict[str, str]) -> str:
    """ada's exact claims and key id, signed with a key that is not the user pool's."""
    header, claims = jwt_parts(tokens["ada"])
    return signed_token(claims, kid=header["kid"])


def _tenant_rewritten(tokens: dict[str, str]) -> str:
    """grace's token with its tenant claim changed to acme, keeping grace's valid signature."""
    header, _, signature = tokens["grace"].split(".")
    claims = jwt_parts(tokens["grace"])[1]
    return ".".join([header, b64url_json({**claims, "custom:tenant": "acme"}), signature])


def _access_token(tokens: dict[str, str]) -> str:
    """A genuine access token of ada: valid, but not the ID token the authorizer wants."""
    del tokens
    cognito = boto3.client("cognito-idp")
    pool_id = cognito.list_user_pools(MaxResults=1)["UserPools"][0]["Id"]
    client_id = cognito.list_user_pool_clients(UserPoolId=pool_id, MaxResults=1)["UserPoolClients"][0]["ClientId"]
    result = cognito.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "ada", "PASSWORD": DEMO_PASSWORD},
    )
    return str(result["AuthenticationResult"]["AccessToken"])


CREDENTIALS = {
    "no-authorization-header": lambda tokens: None,
    "empty": lambda tokens: "",
    "not-a-jwt": lambda tokens: "let-me-in",
    "forged-signature": _forged_signature,
    "tenant-claim-rewritten": _tenant_rewritten,
    "access-token-not-id-token": _access_token,
}


@pytest.mark.parametrize("credential", CREDENTIALS, ids=list(CREDENTIALS))
def test_a_request_without_a_valid_id_token_answers_401_and_never_reaches_the_handler(
    api, cloud, sutram, adas_run, credential
):
    # Given
    authorization = CREDENTIALS[credential](sutram.tokens)
    headers = {} if authorization is None else {"Authorization": authorization}
    handler_invocations, executions = cloud.api_invocations, len(cloud.executions())

    # When
    start = api.request(
        "POST", "/workflows/document-analysis/runs", user=None, headers=headers, json={"input": {"document": DOCUMENT}}
    )
    read = api.request("GET", f"/runs/{adas_run['run_id']}", user=None, headers=headers)

    # Then
    assert (start.status_code, read.status_code) == (401, 401)
    assert start.json() == read.json() == UNAUTHORIZED
    assert cloud.api_invocations == handler_invocations
    assert len(cloud.executions()) == executions


def test_a_valid_id_token_reaches_the_handler(api, cloud):
    before = cloud.api_invocations

    assert api.get("/runs", user="ada", limit=1).status_code == 200
    assert cloud.api_invocations == before + 1
