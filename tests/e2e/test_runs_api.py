"""Starting and reading runs through the HTTP API of a local Sutram, as a client does."""

from __future__ import annotations

import json
import re

import pytest
import requests

# The step and finish Lambdas publish no metric locally; Powertools warns about it.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

DOCUMENT = {
    "title": "Supplier audit",
    "format": "markdown",
    "content": "# Audit\n\nMaria Okafor visited the Porto plant. Defects fell sharply. Delivery is late.\n\n"
    "The board chaired by Daniel Reyes will decide.",
}
SUMMARY = "Maria Okafor visited the Porto plant. Defects fell sharply."
ENTITIES = [
    {"name": "Daniel Reyes", "mentions": 1},
    {"name": "Maria Okafor", "mentions": 1},
    {"name": "Porto", "mentions": 1},
]
REPORT = {
    "title": "Supplier audit",
    "word_count": 21,
    "summary": SUMMARY,
    "entities": ENTITIES,
    "top_entity": "Daniel Reyes",
    "markdown": "# Supplier audit\n\n21 words.\n\n## Summary\n\n" + SUMMARY + "\n\n## Entities\n\n"
    "- **Daniel Reyes**: 1 mention\n- **Maria Okafor**: 1 mention\n- **Porto**: 1 mention\n",
}
# The scripted model counts 4 characters per token, so these are exact and stable.
SUMMARISE_USAGE = {"input_tokens": 61, "output_tokens": 15}
ENTITIES_USAGE = {"input_tokens": 64, "output_tokens": 33}
SUMMARISE_PROMPT = 'Summarise the document "Supplier audit" in two sentences.'
# The two model calls run in the parallel branches of `study`: their checkpoints are scoped by branch.
SUMMARISE, ENTITIES = "study.summary/summarise", "study.entities/entities"
ENTITIES_PROMPT = "List the people, organisations and places named in this text."
RUN_ID = re.compile(r"^r-[0-9a-z]{26}$")


def _scripted_usage(tokens: dict[str, int]) -> dict[str, object]:
    return {"provider": "scripted", "model_id": "sutram.scripted-v1", **tokens, "cached_tokens": 0}


def _timed(usage: dict[str, object]) -> dict[str, object]:
    """A step's usage less its latency, which is measured (the scripted model's is a few ms at most)."""
    latency = usage.pop("latency_ms")
    assert isinstance(latency, int) and 0 <= latency < 1000
    return usage


# --- a run, start to finish ------------------------------------------------------------------------


def test_a_started_run_answers_201_and_its_links_lead_to_the_run_and_its_steps(api):
    # When
    response = api.start({"document": DOCUMENT})

    # Then
    assert response.status_code == 201
    assert response.headers["Content-Type"] == "application/json"
    started = response.json()
    run_id = started["run_id"]
    assert RUN_ID.match(run_id)
    assert started == {
        "run_id": run_id,
        "workflow": "document-analysis",
        "status": "RUNNING",
        "version": 1,
        "execution": 0,
        "forked_from": None,
        "replay_of": None,
        "created_at": started["created_at"],
        "updated_at": started["created_at"],
        "finished_at": None,
        "error": None,
        "links": {"run": f"/runs/{run_id}", "steps": f"/runs/{run_id}/steps"},
    }
    api.wait(run_id)
    assert api.get(started["links"]["run"]).json()["run_id"] == run_id
    assert len(api.get(started["links"]["steps"]).json()["steps"]) == 4


def test_a_document_run_succeeds_with_its_report_and_token_totals(api):
    # Given
    run_id = api.start({"document": DOCUMENT}).json()["run_id"]

    # When
    run = api.wait(run_id)

    # Then
    assert run["status"] == "SUCCEEDED"
    assert run["error"] is None
    assert run["finished_at"] == run["updated_at"] and run["finished_at"] >= run["created_at"]
    assert run["input"] == {"document": DOCUMENT} and run["input_artifact"] is None
    assert run["output"] == REPORT and run["output_artifact"] is None
    assert run["usage"] == {"input_tokens": 125, "output_tokens": 48, "cached_tokens": 0, "model_calls": 2}
    assert run["steps_completed"] == 4


def test_a_runs_steps_are_listed_in_order_with_attempts_usage_and_outputs(api):
    # Given
    run_id = api.run_to_end({"document": DOCUMENT})["run_id"]

    # When
    response = api.get(f"/runs/{run_id}/steps")

    # Then
    assert response.status_code == 200
    steps = response.json()["steps"]
    rows = [(s["id"], s["type"], s["status"], s["attempts"]) for s in steps]
    assert rows[0] == ("extract", "tool", "SUCCEEDED", 1)
    assert sorted(rows[1:3]) == [(ENTITIES, "llm", "SUCCEEDED", 1), (SUMMARISE, "llm", "SUCCEEDED", 1)]  # in parallel
    assert rows[3:] == [("report", "tool", "SUCCEEDED", 1)]
    by_id = {step["id"]: step for step in steps}
    assert by_id["extract"]["usage"] is None and by_id["report"]["usage"] is None
    assert _timed(by_id[SUMMARISE]["usage"]) == _scripted_usage(SUMMARISE_USAGE)
    assert _timed(by_id[ENTITIES]["usage"]) == _scripted_usage(ENTITIES_USAGE)
    assert by_id["extract"]["output"] == {
        "title": "Supplier audit",
        "text": "Audit\n\nMaria Okafor visited the Porto plant. Defects fell sharply. Delivery is late.\n\n"
        "The board chaired by Daniel Reyes will decide.",
        "word_count": 21,
        "characters": 132,
    }
    assert by_id[SUMMARISE]["output"] == SUMMARY
    assert by_id["report"]["output"] == REPORT
    assert all(step["error"] is None and step["output_artifact"] is None for step in steps)
    assert all(step["duration_ms"] >= 0 and step["started_at"] <= step["finished_at"] for step in steps)
    assert [step["started_at"] for step in steps] == sorted(step["started_at"] for step in steps)


# --- durability: a crash after the model answered --------------------------------------------------


def test_a_crash_right_after_the_model_call_is_retried_and_the_model_is_paid_once(
    api, cloud, model_calls, inject_faults
):
    # Given: summarise's Lambda dies right after its model answered, on its first attempt
    inject_faults("summarise@after_model_call")

    # When
    run = api.run_to_end({"document": DOCUMENT})

    # Then: Step Functions saw the crash and retried; the retry returned the recorded answer
    assert run["status"] == "SUCCEEDED"
    assert run["output"] == REPORT
    assert cloud.lambda_invocations(run["run_id"], "summarise") == 2
    assert cloud.lambda_failures(run["run_id"]) == ["Runtime.ExitError"]
    assert model_calls.counts == {SUMMARISE_PROMPT: 1, ENTITIES_PROMPT: 1}
    assert run["usage"] == {"input_tokens": 125, "output_tokens": 48, "cached_tokens": 0, "model_calls": 2}
    summarise = next(s for s in api.get(f"/runs/{run['run_id']}/steps").json()["steps"] if s["id"] == SUMMARISE)
    assert (summarise["status"], summarise["attempts"], summarise["output"]) == ("SUCCEEDED", 1, SUMMARY)
    assert _timed(summarise["usage"]) == _scripted_usage(SUMMARISE_USAGE)


# --- Idempotency-Key --------------------------------------------------------------------------------


def test_the_same_request_with_the_same_idempotency_key_starts_one_run(api, cloud):
    # Given
    executions_before = len(cloud.executions())

    # When
    first = api.start({"document": DOCUMENT}, idempotency_key="e2e-same-request")
    replay = api.start({"document": DOCUMENT}, idempotency_key="e2e-same-request")

    # Then
    assert (first.status_code, replay.status_code) == (201, 200)
    run_id = first.json()["run_id"]
    assert replay.json()["run_id"] == run_id
    assert replay.json()["created_at"] == first.json()["created_at"]
    assert [e["name"] for e in cloud.executions()].count(run_id) == 1
    assert len(cloud.executions()) == executions_before + 1
    assert api.wait(run_id)["status"] == "SUCCEEDED"


def test_a_replay_after_the_run_ended_answers_200_with_the_finished_run(api):
    # Given
    first = api.start({"document": DOCUMENT}, idempotency_key="e2e-replay-after-the-end")
    finished = api.wait(first.json()["run_id"])

    # When
    replay = api.start({"document": DOCUMENT}, idempotency_key="e2e-replay-after-the-end")

    # Then
    assert replay.status_code == 200
    assert replay.json() == {key: finished[key] for key in replay.json()}
    assert replay.json()["status"] == "SUCCEEDED"


def test_the_same_input_with_its_keys_in_another_order_is_the_same_request(api):
    # Given
    first = api.start({"document": DOCUMENT}, idempotency_key="e2e-key-order")

    # When
    reordered = {"document": dict(reversed(list(DOCUMENT.items())))}
    replay = api.start(reordered, idempotency_key="e2e-key-order")

    # Then
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json()["run_id"] == first.json()["run_id"]


def test_an_idempotency_key_reused_with_another_input_answers_409_and_starts_nothing(api, cloud):
    # Given
    first = api.start({"document": DOCUMENT}, idempotency_key="e2e-reused-key")
    executions_before = len(cloud.executions())

    # When
    response = api.start({"document": {**DOCUMENT, "title": "Another audit"}}, idempotency_key="e2e-reused-key")

    # Then
    assert response.status_code == 409
    assert response.json() == {
        "error": {
            "code": "idempotency_key_reused",
            "message": "this Idempotency-Key was already used with a different input; use a new key for a new run",
            "field": "Idempotency-Key",
        }
    }
    assert len(cloud.executions()) == executions_before
    assert api.wait(first.json()["run_id"])["input"] == {"document": DOCUMENT}


@pytest.mark.parametrize(
    ("key", "message"),
    [("", "String should have at least 1 character"), ("k" * 256, "String should have at most 255 characters")],
    ids=["empty", "256-characters"],
)
def test_an_unusable_idempotency_key_answers_400_naming_the_header_as_clients_send_it(api, cloud, key, message):
    # Given
    executions_before = len(cloud.executions())

    # When
    response = api.start({"document": DOCUMENT}, idempotency_key=key)

    # Then: the same field name as the 409 for a reused key
    assert response.status_code == 400
    assert response.json() == {"error": {"code": "invalid_request", "message": message, "field": "Idempotency-Key"}}
    assert len(cloud.executions()) == executions_before


# --- rejected requests ------------------------------------------------------------------------------


def test_a_document_without_a_title_answers_400_naming_the_missing_field(api, cloud):
    # Given
    executions_before = len(cloud.executions())

    # When
    response = api.start({"document": {"content": "Only content."}})

    # Then
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid_input",
            "message": "input.document.title is required",
            "field": "input.document.title",
        }
    }
    assert len(cloud.executions()) == executions_before


def test_a_document_with_an_unknown_format_answers_400_naming_the_field(api):
    response = api.start({"document": {**DOCUMENT, "format": "pdf"}})

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid_input",
            "message": "input.document.format must be one of ['text', 'markdown', 'html']",
            "field": "input.document.format",
        }
    }


def test_a_body_that_is_not_json_answers_400_invalid_request(api, cloud):
    # Given
    executions_before = len(cloud.executions())

    # When
    response = api.request(
        "POST",
        "/workflows/document-analysis/runs",
        data=b'{"input": {"document": ',
        headers={"Content-Type": "application/json"},
    )

    # Then
    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "invalid_request", "message": "the body is not valid JSON", "field": "body"}
    }
    assert len(cloud.executions()) == executions_before


def test_a_body_with_an_unknown_field_answers_400_naming_it(api):
    response = api.request(
        "POST", "/workflows/document-analysis/runs", json={"input": {"document": DOCUMENT}, "priority": "high"}
    )

    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "invalid_request", "message": "Extra inputs are not permitted", "field": "priority"}
    }


def test_an_unknown_workflow_answers_404_workflow_not_found(api):
    response = api.start({"document": DOCUMENT}, workflow="no-such-workflow")

    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "workflow_not_found", "message": "no workflow named 'no-such-workflow'"}
    }


def test_an_unknown_route_answers_404_not_found(api):
    response = api.get("/workflows")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "no such resource"}}


# --- large documents travel through S3 --------------------------------------------------------------


def test_a_100_kb_document_round_trips_through_artifacts_with_presigned_links(api, cloud):
    # Given: about 100 KB of input, far over the offload threshold
    two_sentences = "Kerry Logistics runs cold storage in Singapore. Energy costs are rising fast."
    paragraph = f"{two_sentences} " * 20
    document = {"title": "Market brief", "content": "\n\n".join([paragraph] * 64)}
    threshold = cloud.offload_threshold_bytes
    assert len(json.dumps(document)) > 100_000 > threshold

    # When
    run = api.run_to_end({"document": document})

    # Then: the run's input is a link, and the link serves exactly the input
    assert run["status"] == "SUCCEEDED"
    assert run["input"] is None
    link = run["input_artifact"]
    assert re.fullmatch(r"tenants/acme/artifacts/sha256/[0-9a-f]{64}\.json", link["key"])
    assert link["bytes"] > 100_000
    assert link["key"] in link["url"] and "Signature=" in link["url"] and "Expires=" in link["url"]
    download = requests.get(link["url"], timeout=10)
    assert download.status_code == 200
    assert len(download.content) == link["bytes"]
    assert download.json() == {"document": document}

    # And the extract step's output (the whole text) is a link too, while the report is inline
    steps = {step["id"]: step for step in api.get(f"/runs/{run['run_id']}/steps").json()["steps"]}
    assert [step["status"] for step in steps.values()] == ["SUCCEEDED"] * 4
    extract = steps["extract"]
    assert extract["output"] is None
    assert extract["output_artifact"]["key"].startswith("tenants/acme/artifacts/sha256/")
    assert extract["output_artifact"]["bytes"] > threshold
    extracted = requests.get(extract["output_artifact"]["url"], timeout=10).json()
    assert (extracted["title"], extracted["word_count"]) == ("Market brief", 12 * 20 * 64)
    assert steps[SUMMARISE]["output"] == two_sentences
    assert run["output_artifact"] is None
    assert run["output"]["word_count"] == 12 * 20 * 64
    assert run["output"]["entities"] == [
        {"name": "Kerry Logistics", "mentions": 1280},
        {"name": "Singapore", "mentions": 1280},
    ]


# --- the API describes itself -----------------------------------------------------------------------


def test_the_openapi_document_describes_every_route(api):
    response = api.get("/openapi.json")

    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Sutram API"
    assert set(document["paths"]) == {
        "/workflows/{name}/runs",
        "/runs",
        "/runs/{run_id}",
        "/runs/{run_id}/steps",
        "/runs/{run_id}/resume",
        "/runs/{run_id}/abort",
        "/runs/{run_id}/fork",
        "/runs/{run_id}/resolve",
        "/runs/{run_id}/replay",
        "/approvals",
        "/approvals/{approval_id}",
        "/approvals/{approval_id}/decision",
        "/callbacks/approvals/{token}",
    }
    assert set(document["paths"]["/workflows/{name}/runs"]) == {"post"}
    assert set(document["paths"]["/runs/{run_id}/steps"]) == {"get"}
