"""The document-analysis workflow on the local cloud: the synthesized ASL, executed by moto,
invoking the real step handlers."""

from __future__ import annotations

import json
import uuid

import boto3

from sutram import wiring
from sutram.runs.service import idempotent_run_id
from tests.integration.support import TENANT, checkpoints, run_workflow, start, wait_for_end
from tests.support import lambda_failures

# `study` runs the two model calls in parallel branches, so their checkpoints are scoped by branch.
SUMMARISE, ENTITIES = "study.summary/summarise", "study.entities/entities"

DOCUMENT = {
    "title": "Supplier audit",
    "format": "markdown",
    "content": "# Audit\n\nMaria Okafor visited the Porto plant. Defects fell sharply. Delivery is late.\n\n"
    "The board chaired by Daniel Reyes will decide.",
}


def test_a_document_is_extracted_summarised_and_reported(cloud, model_calls):
    run = run_workflow("document-analysis", {"document": DOCUMENT})

    assert run.status == "SUCCEEDED"
    steps = checkpoints(run.run_id)
    # The two branches start in either order; the report waits for both.
    assert list(steps) in (["extract", SUMMARISE, ENTITIES, "report"], ["extract", ENTITIES, SUMMARISE, "report"])
    assert all(step["status"] == "succeeded" and step["attempt"] == 1 for step in steps.values())
    report = json.loads(steps["report"]["output"])
    assert report["title"] == "Supplier audit"
    assert [entity["name"] for entity in report["entities"]] == ["Daniel Reyes", "Maria Okafor", "Porto"]
    assert sum(model_calls.counts.values()) == 2
    assert steps[SUMMARISE]["usage"]["provider"] == "scripted"


def test_a_crash_right_after_an_llm_call_is_retried_and_the_model_is_called_once(cloud, model_calls, inject_faults):
    inject_faults("summarise@after_model_call")

    run = run_workflow("document-analysis", {"document": DOCUMENT})

    assert run.status == "SUCCEEDED"
    assert run.lambda_invocations("summarise") == 2  # the crashed attempt and its retry
    assert model_calls.counts['Summarise the document "Supplier audit" in two sentences.'] == 1
    failures = [e for e in run.history if e["type"] == "LambdaFunctionFailed"]
    assert [e["lambdaFunctionFailedEventDetails"]["error"] for e in failures] == ["Runtime.ExitError"]
    summarise = checkpoints(run.run_id)[SUMMARISE]
    assert summarise["attempt"] == 1  # the retry read the checkpoint; it did not run the step again


def test_faults_injected_for_one_run_crash_that_run_alone_while_another_runs_beside_it(cloud, model_calls):
    key = uuid.uuid4().hex
    cloud.inject_faults("summarise@after_model_call", run_id=idempotent_run_id(TENANT, "document-analysis", key))
    try:
        drilled = start("document-analysis", {"document": DOCUMENT}, idempotency_key=key)
        calm = start("document-analysis", {"document": DOCUMENT | {"title": "Calm audit"}})
        drilled_run, calm_run = wait_for_end(*drilled), wait_for_end(*calm)
    finally:
        cloud.inject_faults("", run_id=idempotent_run_id(TENANT, "document-analysis", key))

    assert (drilled_run.status, calm_run.status) == ("SUCCEEDED", "SUCCEEDED")
    assert (drilled_run.lambda_invocations("summarise"), calm_run.lambda_invocations("summarise")) == (2, 1)
    assert lambda_failures(drilled_run.history) == ["Runtime.ExitError"] and lambda_failures(calm_run.history) == []
    assert model_calls.counts['Summarise the document "Supplier audit" in two sentences.'] == 1


def test_a_document_over_the_threshold_round_trips_through_s3(cloud, model_calls):
    paragraph = "Kerry Logistics runs cold storage in Singapore. Energy costs are rising fast. " * 20
    document = {"title": "Market brief", "content": "\n\n".join([paragraph] * 8)}  # ~ 100 KB of input

    run = run_workflow("document-analysis", {"document": document})

    assert run.status == "SUCCEEDED"
    steps = checkpoints(run.run_id)
    extract_output = json.loads(steps["extract"]["output"])
    key = extract_output["$artifact"]
    assert key.startswith("tenants/acme/artifacts/sha256/")
    stored = json.loads(boto3.client("s3").get_object(Bucket=wiring.get_settings().bucket_name, Key=key)["Body"].read())
    assert stored["title"] == "Market brief" and stored["word_count"] == 12 * 20 * 8
    # Step Functions state carried the reference, never the document.
    assert all(len(e.get("stateEnteredEventDetails", {}).get("input", "")) < 4096 for e in run.history)
    summary = json.loads(steps[SUMMARISE]["output"])
    assert summary.startswith("Kerry Logistics runs cold storage in Singapore.")


def test_a_crash_before_the_model_answers_is_retried_at_once_and_the_model_is_called_once(
    cloud, model_calls, inject_faults
):
    inject_faults("summarise@before_call")

    run = run_workflow("document-analysis", {"document": DOCUMENT})

    assert run.status == "SUCCEEDED"
    assert run.lambda_invocations("summarise") == 2
    assert model_calls.counts['Summarise the document "Supplier audit" in two sentences.'] == 1
    summarise = checkpoints(run.run_id)[SUMMARISE]
    assert summarise["attempt"] == 2  # the retry took over the crashed attempt's lease without waiting for it
