"""sutram.runs.routes end to end through the API Lambda handler, against moto: starting runs
(idempotency, validation, failed starts), reading runs and steps, listing with filters and cursors,
tenants, auth."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from infra import constants as infra_constants
from sutram import wiring
from sutram.api.app import app
from sutram.runs import routes as runs_routes
from sutram.store import runs as run_store
from sutram.store.checkpoints import StepKey
from sutram.store.dynamo import RETENTION_SECONDS
from tests.support import b64url_json, from_b64url_json
from tests.unit.support.api import VALID_INPUT, WORKFLOW, ApiEnvironment, api_environment, call_api, claims_for

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

RUN_NOT_FOUND = {"error": {"code": "run_not_found", "message": "no such run"}}


@pytest.fixture
def ticking_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each run is created one second after the previous one, so the newest-first order is known."""
    seconds = count()
    start = datetime(2025, 1, 1, tzinfo=UTC)
    real_backend = wiring.runs_backend
    monkeypatch.setitem(
        app.dependency_overrides,
        runs_routes.backend,
        lambda: dataclasses.replace(real_backend(), now=lambda: start + timedelta(seconds=next(seconds))),
    )


# --- starting runs ------------------------------------------------------------------------------


def test_start_answers_201_with_the_run_and_starts_its_execution(api: ApiEnvironment) -> None:
    result = api.start()

    assert result.status == 201
    run_id = result.body["run_id"]
    assert run_id.startswith("r-") and len(run_id) == 28
    assert result.body["workflow"] == WORKFLOW
    assert result.body["status"] == "RUNNING"
    assert result.body["links"] == {"run": f"/runs/{run_id}", "steps": f"/runs/{run_id}/steps"}
    (execution,) = api.executions()
    assert execution["name"] == run_id
    started = api.stepfunctions.describe_execution(executionArn=execution["executionArn"])
    assert json.loads(started["input"]) == {
        "run": {"tenant": "acme", "run_id": run_id, "workflow": WORKFLOW},
        "input": VALID_INPUT,
    }
    item = api.table.get_item(Key={"pk": f"TENANT#acme#RUN#{run_id}", "sk": "RUN"})["Item"]
    assert item["execution_arn"] == execution["executionArn"]
    assert item["gsi1pk"] == "TENANT#acme"
    assert item["gsi1sk"] == f"{item['created_at']}#{run_id}"
    assert json.loads(item["input"]) == VALID_INPUT
    assert int(item["expires_at"]) > datetime.now(UTC).timestamp() + RETENTION_SECONDS - 60


def test_a_replay_with_the_same_idempotency_key_answers_200_with_the_same_run_and_no_second_execution(
    api: ApiEnvironment,
) -> None:
    first = api.start(key="invoice-42")
    replay = api.start(key="invoice-42")

    assert (first.status, replay.status) == (201, 200)
    assert replay.body == first.body
    assert [execution["name"] for execution in api.executions()] == [first.body["run_id"]]


def test_the_same_idempotency_key_with_another_input_answers_409(api: ApiEnvironment) -> None:
    api.start(key="invoice-42")

    result = api.start(key="invoice-42", run_input={"document": {"title": "Other", "content": "Different."}})

    assert result.status == 409
    assert result.body == {
        "error": {
            "code": "idempotency_key_reused",
            "message": "this Idempotency-Key was already used with a different input; use a new key for a new run",
            "field": "Idempotency-Key",
        }
    }
    assert len(api.executions()) == 1


def test_the_same_idempotency_key_in_two_tenants_starts_two_runs(api: ApiEnvironment) -> None:
    acme = api.start(tenant="acme", key="k")
    globex = api.start(tenant="globex", key="k")

    assert (acme.status, globex.status) == (201, 201)
    assert acme.body["run_id"] != globex.body["run_id"]


@pytest.mark.parametrize(
    ("run_input", "field", "message"),
    [
        (
            {"document": {"title": "", "content": "x"}},
            "input.document.title",
            "input.document.title must be longer than or equal to 1 characters",
        ),
        ({"document": {"content": "x"}}, "input.document.title", "input.document.title is required"),
        ({"doc": {}}, "input.document", "input.document is required"),
        (
            {"document": {"title": "t", "content": "x", "format": "pdf"}},
            "input.document.format",
            "input.document.format must be one of ['text', 'markdown', 'html']",
        ),
        ({"$artifact": "tenants/globex/artifacts/x.json"}, "input.$artifact", "input.$artifact is reserved"),
    ],
)
def test_invalid_input_answers_400_naming_the_field(
    api: ApiEnvironment, run_input: dict[str, object], field: str, message: str
) -> None:
    result = api.start(run_input=run_input)

    assert result.status == 400
    assert result.body == {"error": {"code": "invalid_input", "message": message, "field": field}}
    assert api.executions() == []


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"inputs": {}}, "inputs", "Extra inputs are not permitted"),
        ({"input": [1, 2]}, "input", "Input should be a valid dictionary"),
        ("{not json", "body", "the body is not valid JSON"),
    ],
)
def test_a_malformed_body_answers_400(api: ApiEnvironment, body: object, field: str, message: str) -> None:
    result = api.call("POST", f"/workflows/{WORKFLOW}/runs", body=body)

    assert result.status == 400
    assert result.body == {"error": {"code": "invalid_request", "message": message, "field": field}}


DEEP = '{"input": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code", "field", "message"),
    [
        ('{"input": {}}', "text/plain", 415, "unsupported_media_type", "Content-Type", "not text/plain"),
        (b'{"input": {}}', "application/octet-stream", 415, "unsupported_media_type", "Content-Type", "octet-stream"),
        ('{"input": {}}', "application/json; charset=latin-1", 415, "unsupported_media_type", "Content-Type", "UTF-8"),
        (b'{"input": {"t": "\xff"}}', "application/json", 400, "invalid_request", "body", "not valid UTF-8 (byte 17)"),
        ("[" * 10_000 + "]" * 10_000, "application/json", 400, "invalid_request", "body", "deeper than 32 levels"),
        (
            DEEP,
            "application/json",
            400,
            "invalid_request",
            "input.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a",
            "deeper than 32",
        ),
        (
            '{"input": {"t": "\\ud800"}}',
            "application/json",
            400,
            "invalid_request",
            "input.t",
            "lone surrogate (\\ud800)",
        ),
        ('{"input": {"\\udfff": 1}}', "application/json", 400, "invalid_request", "input", "lone surrogate (\\udfff)"),
        (
            '{"input": {"t": "' + "x" * (5 * 1024 * 1024) + '"}}',
            "application/json",
            413,
            "body_too_large",
            "body",
            "at most 5242880",
        ),
    ],
)
def test_a_body_no_route_may_read_answers_4xx_saying_what_and_where_and_starts_nothing(
    api: ApiEnvironment, body: str | bytes, content_type: str, status: int, code: str, field: str, message: str
) -> None:
    result = api.call("POST", f"/workflows/{WORKFLOW}/runs", body=body, headers={"Content-Type": content_type})

    assert (result.status, result.body["error"]["code"], result.body["error"]["field"]) == (status, code, field)
    assert message in result.body["error"]["message"]
    assert api.executions() == [] and api.table.scan()["Items"] == []


def test_the_decision_route_refuses_a_text_body_with_415(api: ApiEnvironment) -> None:
    result = call_api(
        "POST",
        "/approvals/ap-x/decision",
        claims=claims_for("acme", groups="approvers"),
        body='{"decision": "approve"}',
        headers={"Content-Type": "text/plain"},
    )
    assert result.status == 415 and result.body["error"]["code"] == "unsupported_media_type"


def test_a_method_a_path_does_not_have_answers_405_naming_the_ones_it_has(api: ApiEnvironment) -> None:
    result = api.call("DELETE", "/runs/r-00000000000000000000000000")

    assert result.status == 405 and result.headers["Allow"] == ["GET"]
    assert result.body == {"error": {"code": "method_not_allowed", "message": "DELETE is not allowed here; use GET"}}


def test_an_unknown_workflow_answers_404(api: ApiEnvironment) -> None:
    for name in ("no-such-workflow", "..%2F..%2Fetc"):
        result = api.call("POST", f"/workflows/{name}/runs", body={"input": VALID_INPUT})

        assert result.status == 404
        assert result.body["error"]["code"] == "workflow_not_found"


def test_a_failed_start_answers_503_and_leaves_no_run_so_a_retry_with_the_key_starts_it(
    api: ApiEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing_arn = api.state_machine_arn.replace("sutram-document-analysis", "deleted")
    monkeypatch.setenv("SUTRAM_STATE_MACHINES", json.dumps({WORKFLOW: missing_arn}))
    wiring.reset()

    failed = api.start(key="retry-me")

    assert failed.status == 503
    assert failed.body == {
        "error": {
            "code": "start_failed",
            "message": "the run could not be started; retry (with the same Idempotency-Key)",
        }
    }
    assert api.table.scan()["Items"] == []

    monkeypatch.setenv("SUTRAM_STATE_MACHINES", json.dumps({WORKFLOW: api.state_machine_arn}))
    wiring.reset()
    retried = api.start(key="retry-me")

    assert retried.status == 201
    assert [execution["name"] for execution in api.executions()] == [retried.body["run_id"]]


def test_a_replay_finishes_a_start_that_crashed_before_start_execution(
    api: ApiEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    class CrashingStepFunctions:
        describe_state_machine_alias = api.stepfunctions.describe_state_machine_alias

        def start_execution(self, **_: object) -> None:
            raise RuntimeError("the sandbox died here")

    real_backend = wiring.runs_backend
    monkeypatch.setitem(
        app.dependency_overrides,
        runs_routes.backend,
        lambda: dataclasses.replace(real_backend(), executions=CrashingStepFunctions()),
    )
    crashed = api.start(key="crash")
    assert crashed.status == 500
    assert crashed.body == {"error": {"code": "internal_error", "message": "an internal error occurred"}}
    (item,) = api.table.scan()["Items"]
    assert "execution_arn" not in item

    monkeypatch.setitem(app.dependency_overrides, runs_routes.backend, real_backend)
    replay = api.start(key="crash")

    assert replay.status == 200
    assert replay.body["run_id"] == item["run_id"]
    (execution,) = api.executions()
    assert execution["name"] == item["run_id"]
    assert api.table.scan()["Items"][0]["execution_arn"] == execution["executionArn"]


def test_a_run_id_whose_execution_already_ended_answers_409_and_leaves_no_run(api: ApiEnvironment) -> None:
    run_id = api.start(key="reused").body["run_id"]
    api.stepfunctions.stop_execution(executionArn=api.executions()[0]["executionArn"])
    api.table.delete_item(Key={"pk": f"TENANT#acme#RUN#{run_id}", "sk": "RUN"})  # e.g. expired by TTL

    result = api.start(key="reused")

    assert result.status == 409
    assert result.body["error"]["code"] == "run_id_taken"
    assert api.table.scan()["Items"] == []


def test_a_large_input_travels_as_an_artifact_and_the_run_links_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with api_environment(monkeypatch, offload_threshold_bytes=256) as api:
        large = {"document": {"title": "Long", "content": "word " * 200}}

        run_id = api.start(run_input=large).body["run_id"]

        execution_input = json.loads(
            api.stepfunctions.describe_execution(executionArn=api.executions()[0]["executionArn"])["input"]
        )
        reference = execution_input["input"]
        assert reference["$artifact"].startswith("tenants/acme/artifacts/sha256/")
        run = api.call("GET", f"/runs/{run_id}").body
        assert run["input"] is None
        assert run["input_artifact"]["key"] == reference["$artifact"]
        assert run["input_artifact"]["bytes"] == reference["$bytes"]
        assert reference["$artifact"] in run["input_artifact"]["url"]
        stored = api.s3.get_object(Bucket=wiring.get_settings().bucket_name, Key=reference["$artifact"])["Body"].read()
        assert json.loads(stored) == large


# --- reading a run ------------------------------------------------------------------------------


def test_get_run_answers_the_run_with_its_input_and_zero_usage(api: ApiEnvironment) -> None:
    started = api.start().body

    result = api.call("GET", f"/runs/{started['run_id']}")

    assert result.status == 200
    assert result.body == {
        **started,
        "input": VALID_INPUT,
        "input_artifact": None,
        "output": None,
        "output_artifact": None,
        "usage": {"input_tokens": 0, "output_tokens": 0, "cached_tokens": 0, "model_calls": 0},
        "steps_completed": 0,
        "forks": [],
        "aborted_by": None,
        "compensation": None,
        "paused_step": None,
    }


def test_another_tenants_run_answers_404_exactly_like_an_unknown_one(api: ApiEnvironment) -> None:
    run_id = api.start(tenant="acme").body["run_id"]
    unknown_id = "r-" + "0" * 26

    for path in (f"/runs/{run_id}", f"/runs/{run_id}/steps"):
        foreign = api.call("GET", path, tenant="globex")
        unknown = api.call("GET", path.replace(run_id, unknown_id), tenant="globex")

        assert (foreign.status, foreign.body) == (404, RUN_NOT_FOUND)
        assert (unknown.status, unknown.body) == (404, RUN_NOT_FOUND)


def test_a_malformed_run_id_answers_404(api: ApiEnvironment) -> None:
    result = api.call("GET", "/runs/TENANT%23x")

    assert (result.status, result.body) == (404, RUN_NOT_FOUND)


def test_a_caller_without_a_tenant_claim_gets_401(api: ApiEnvironment) -> None:
    for method, path, body in (
        ("GET", "/runs", None),
        ("GET", "/runs/r-00000000000000000000000000", None),
        ("POST", f"/workflows/{WORKFLOW}/runs", {"input": VALID_INPUT}),
    ):
        result = api.call(method, path, tenant=None, body=body)

        assert result.status == 401
        assert result.body == {
            "error": {
                "code": "unauthorized",
                "message": "the caller's token has no valid custom:tenant claim",
            }
        }
    assert api.executions() == []


def test_a_tenant_claim_that_is_not_a_tenant_id_gets_401(api: ApiEnvironment) -> None:
    assert api.call("GET", "/runs", tenant="ACME#RUN").status == 401


# --- steps --------------------------------------------------------------------------------------


def test_steps_come_in_order_with_usage_and_a_link_to_a_large_output(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ticks = count(1000)
    monkeypatch.setattr("sutram.store.checkpoints._now", lambda: float(next(ticks)))
    with api_environment(monkeypatch, offload_threshold_bytes=256) as api:
        run_id = api.start().body["run_id"]
        store, artifacts = wiring.checkpoint_store(), wiring.artifact_store()

        def record(step_id: str, output: object, usage: dict[str, object] | None = None) -> None:
            key = StepKey("acme", run_id, step_id)
            claim = store.claim(key, step_type="llm" if usage else "tool", lease_seconds=60, at_most_once=False)
            store.complete(claim, artifacts.offload_if_large("acme", output), usage)  # type: ignore[arg-type]

        record("extract", {"title": "Q3", "text": "x" * 400})
        record(
            "summarise",
            "Revenue grew.",
            {
                "provider": "scripted",
                "model_id": "m",
                "input_tokens": 120,
                "output_tokens": 30,
                "cached_tokens": 10,
                "latency_ms": 5,
            },
        )
        failing = StepKey("acme", run_id, "entities")
        attempt = store.claim(failing, step_type="llm", lease_seconds=60, at_most_once=False)
        store.release(attempt, "StepFailed: the model did not return JSON")  # type: ignore[arg-type]

        steps = api.call("GET", f"/runs/{run_id}/steps")
        run = api.call("GET", f"/runs/{run_id}").body

    assert steps.status == 200
    extract, summarise, entities = steps.body["steps"]
    assert [extract["id"], summarise["id"], entities["id"]] == ["extract", "summarise", "entities"]
    assert extract["status"] == "SUCCEEDED"
    assert extract["type"] == "tool"
    assert extract["attempts"] == 1
    assert extract["duration_ms"] == 1000
    assert extract["output"] is None
    assert extract["output_artifact"]["key"].startswith("tenants/acme/artifacts/sha256/")
    assert extract["output_artifact"]["bytes"] > 256
    assert extract["output_artifact"]["key"] in extract["output_artifact"]["url"]
    assert summarise["output"] == "Revenue grew."
    assert summarise["output_artifact"] is None
    assert summarise["usage"] == {
        "provider": "scripted",
        "model_id": "m",
        "input_tokens": 120,
        "output_tokens": 30,
        "cached_tokens": 10,
        "latency_ms": 5,
    }
    assert entities["status"] == "FAILED"
    assert entities["error"] == "StepFailed: the model did not return JSON"
    assert entities["finished_at"] is None
    assert run["usage"] == {"input_tokens": 120, "output_tokens": 30, "cached_tokens": 10, "model_calls": 1}
    assert run["steps_completed"] == 2


def test_a_value_that_only_looks_like_another_tenants_artifact_is_never_linked(api: ApiEnvironment) -> None:
    run_id = api.start().body["run_id"]
    lookalike = {"$artifact": "tenants/globex/artifacts/sha256/secret.json", "$bytes": 10}
    api.finish(run_id, status="SUCCEEDED", output=lookalike)

    run = api.call("GET", f"/runs/{run_id}").body

    assert run["output"] == lookalike
    assert run["output_artifact"] is None


# --- listing ------------------------------------------------------------------------------------


def _all_pages(api: ApiEnvironment, query: str) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        result = api.call("GET", f"/runs?{query}" + (f"&cursor={cursor}" if cursor else ""))
        assert result.status == 200
        pages.append([run["run_id"] for run in result.body["runs"]])
        cursor = result.body["next_cursor"]
        if cursor is None:
            return pages


@pytest.mark.usefixtures("ticking_clock")
def test_listing_pages_newest_first_and_fills_pages_when_filters_drop_runs(
    api: ApiEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = [api.start().body["run_id"] for _ in range(7)]
    succeeded = started[::2]  # runs 0, 2, 4, 6
    for run_id in succeeded:
        api.finish(run_id, status="SUCCEEDED", output="done")
    newest_first = list(reversed(started))
    monkeypatch.setattr(run_store, "FILTERED_READ_SIZE", 1)  # filtered queries read 2 items at a time

    assert _all_pages(api, "limit=3") == [newest_first[0:3], newest_first[3:6], newest_first[6:]]
    assert _all_pages(api, "limit=2&status=SUCCEEDED") == [
        [succeeded[3], succeeded[2]],
        [succeeded[1], succeeded[0]],
    ]
    assert _all_pages(api, f"limit=100&status=RUNNING&workflow={WORKFLOW}") == [started[5::-2]]
    assert _all_pages(api, "workflow=other-workflow") == [[]]


@pytest.mark.usefixtures("ticking_clock")
def test_a_filtered_page_stops_after_a_bounded_number_of_reads_and_the_cursor_goes_on(
    api: ApiEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = [api.start().body["run_id"] for _ in range(5)]
    api.finish(started[0], status="FAILED", error={"Error": "StepFailed", "Cause": "boom"})
    monkeypatch.setattr(run_store, "FILTERED_READ_SIZE", 1)
    monkeypatch.setattr(run_store, "MAX_QUERIES_PER_PAGE", 2)

    pages = _all_pages(api, "limit=1&status=FAILED")

    assert pages[:2] == [[], []]  # 2 reads of 1 run each, none FAILED: an empty page with a cursor
    assert [run for page in pages for run in page] == [started[0]]


def test_the_listing_shows_only_the_callers_runs(api: ApiEnvironment) -> None:
    mine = api.start(tenant="acme").body["run_id"]
    api.start(tenant="globex")

    assert _all_pages(api, "limit=10") == [[mine]]


def test_a_cursor_of_another_tenant_or_tampered_answers_400(api: ApiEnvironment) -> None:
    for _ in range(2):
        api.start(tenant="acme")
    cursor = api.call("GET", "/runs?limit=1").body["next_cursor"]
    position = from_b64url_json(cursor)
    forged = dict(position, gsi1pk="TENANT#globex")
    cross_tenant_pk = dict(position, pk="TENANT#globex#RUN#r-00000000000000000000000000")

    for tenant, bad_cursor in (
        ("globex", cursor),
        ("acme", b64url_json(forged)),
        ("acme", b64url_json(cross_tenant_pk)),
        ("acme", b64url_json({**position, "extra": "x"})),
        ("acme", "not-base64-json!"),
        ("acme", b64url_json(["a list"])),
    ):
        result = api.call("GET", f"/runs?cursor={bad_cursor}", tenant=tenant)

        assert result.status == 400, bad_cursor
        assert result.body == {
            "error": {
                "code": "invalid_cursor",
                "message": "the cursor is not one this API returned to you",
                "field": "cursor",
            }
        }
    assert api.call("GET", f"/runs?cursor={cursor}").status == 200


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("limit=0", "limit", "Input should be greater than or equal to 1"),
        ("limit=101", "limit", "Input should be less than or equal to 100"),
        ("limit=ten", "limit", "Input should be a valid integer, unable to parse string as an integer"),
        (
            "status=DONE",
            "status",
            "Input should be 'RUNNING', 'PAUSED', 'SUCCEEDED', 'FAILED', 'COMPENSATED' or 'ABORTED'",
        ),
        ("workflow=Bad_Name", "workflow", "String should match pattern '^[a-z][a-z0-9-]{0,47}$'"),
        # A typo is refused, not ignored (which would list every run).
        (
            "stauts=FAILED",
            "stauts",
            "unknown query parameter 'stauts'; it takes cursor, forked_from, limit, status, workflow",
        ),
    ],
)
def test_invalid_listing_parameters_answer_400(api: ApiEnvironment, query: str, field: str, message: str) -> None:
    result = api.call("GET", f"/runs?{query}")

    assert result.status == 400
    assert result.body == {"error": {"code": "invalid_request", "message": message, "field": field}}


# --- the rest -----------------------------------------------------------------------------------


def test_openapi_json_documents_the_routes_and_the_cognito_scheme(api: ApiEnvironment) -> None:
    result = api.call("GET", "/openapi.json", tenant=None)

    assert result.status == 200
    document = result.body
    assert {"/workflows/{name}/runs", "/runs", "/runs/{run_id}", "/runs/{run_id}/steps"} <= set(document["paths"])
    assert document["components"]["securitySchemes"]["cognito"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "A Cognito user pool ID token, as is (API Gateway's Cognito authorizer).",
    }
    assert document["security"] == [{"cognito": []}]
    assert document["servers"][0]["url"] == "/v1" == f"/{infra_constants.API_STAGE_NAME}"


def test_every_reference_in_the_openapi_document_resolves(api: ApiEnvironment) -> None:
    document = api.call("GET", "/openapi.json", tenant=None).body
    references = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(document)))
    assert references and references <= set(document["components"]["schemas"])
    start = document["paths"]["/workflows/{name}/runs"]["post"]
    assert set(start["responses"]) == {"200", "201", "400", "401", "404", "409", "413", "415", "429", "500", "503"}
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_an_unknown_route_answers_404(api: ApiEnvironment) -> None:
    result = api.call("GET", "/jobs")

    assert result.status == 404
    assert result.body == {"error": {"code": "not_found", "message": "no such resource"}}


def test_a_route_without_query_parameters_refuses_any(api: ApiEnvironment) -> None:
    run_id = api.start().body["run_id"]

    answer = api.call("GET", f"/runs/{run_id}?verbose=1")

    assert answer.status == 400
    assert answer.body["error"] == {
        "code": "invalid_request",
        "message": "unknown query parameter 'verbose'; it takes none",
        "field": "verbose",
    }
