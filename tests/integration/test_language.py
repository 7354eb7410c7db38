"""The workflow language on the local cloud: map, choice, parallel, wait and transform, compiled
by CDK and executed by moto, invoking the real step handlers."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from sutram import wiring
from sutram.runs import service as runs
from tests.integration.support import FinishedRun, output_of, run_workflow
from tests.integration.support import checkpoints as run_checkpoints

DOCUMENTS = [
    {"title": "Supplier audit", "content": "Maria Okafor visited the Porto plant. Defects fell sharply."},
    {"title": "Board memo", "content": "The board chaired by Daniel Reyes met in Lisbon. Costs are up."},
    {"title": "Field notes", "content": "Ada Lovelace met Charles Babbage in London. They talked engines."},
]


def checkpoints(run: FinishedRun) -> dict[str, dict[str, Any]]:
    return run_checkpoints(run.run_id)


def entered(run: FinishedRun) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in run.history if e["type"].endswith("StateEntered")]


def test_a_map_over_100_items_checkpoints_every_iteration_under_its_index(cloud):
    texts = [f"item {index} " + "word " * (index % 7) for index in range(100)]

    run = run_workflow("language-map", {"texts": texts, "top": 1, "not_before": "2020-01-01T00:00:00Z"}, timeout=120)

    assert run.status == "SUCCEEDED"
    assert entered(run)[0] == "not_before"  # a timestamp in the past: the wait ends at once
    steps = checkpoints(run)
    assert set(steps) == {f"count[{index}]/words" for index in range(100)}
    assert all(step["status"] == "succeeded" and step["attempt"] == 1 for step in steps.values())
    output = output_of(run)
    assert len(output) == 100
    assert output[3] == {"total_words": 4, "distinct_words": 2, "top": [{"word": "word", "count": 3}]}
    assert output == [json.loads(steps[f"count[{index}]/words"]["output"]) for index in range(100)]


def test_a_crash_inside_map_iterations_is_retried_without_calling_any_model_twice(cloud, model_calls, inject_faults):
    inject_faults("summarise@after_model_call")

    run = run_workflow("document-batch", {"documents": DOCUMENTS})

    assert run.status == "SUCCEEDED"
    steps = checkpoints(run)
    assert set(steps) == {
        f"analyse[{i}]/{step}" for i in range(3) for step in ("extract", "summarise", "entities", "report")
    }
    assert all(step["attempt"] == 1 for step in steps.values())  # every retry returned the checkpoint
    failures = [e for e in run.history if e["type"] == "LambdaFunctionFailed"]
    assert [e["lambdaFunctionFailedEventDetails"]["error"] for e in failures] == ["Runtime.ExitError"] * 3
    for document in DOCUMENTS:  # one model call per document and step, although each summary crashed once
        assert model_calls.counts[f'Summarise the document "{document["title"]}" in two sentences.'] == 1
    assert model_calls.counts["List the people, organisations and places named in this text."] == 3
    reports = output_of(run)["reports"]
    assert [report["title"] for report in reports] == [document["title"] for document in DOCUMENTS]
    assert reports[2]["entities"][0]["name"] in {"Ada Lovelace", "Charles Babbage", "London"}


@pytest.mark.parametrize(
    ("ticket", "priority", "routed", "path"),
    [
        ("the invoice total is wrong.", 4, {"team": "general", "tags": ["triage"]}, ["general", "audit"]),
        (
            "Billing Team: the total is wrong.",
            4,
            {"team": "billing", "ticket": "Billing Team: the total is wrong."},
            ["billing", "audit"],
        ),
        (
            "Printer Support: the printer is jammed.",
            5,
            {"team": "oncall", "priority": 5},
            ["page_later", "escalate", "audit", "flag"],
        ),
        (
            "Printer Support: the printer is jammed.",
            1,
            {"team": "named", "named": [{"name": "Printer Support", "mentions": 1}]},
            ["named", "audit"],
        ),
    ],
)
def test_a_choice_branches_on_the_models_json_and_rejoins(cloud, ticket, priority, routed, path):
    started = time.monotonic()
    run = run_workflow("language-choice", {"ticket": ticket, "priority": priority})

    assert run.status == "SUCCEEDED"
    assert output_of(run) == {"routed": routed, "source": "ticket-desk"}
    assert entered(run) == ["classify", "route", *path, "confirm", "RecordSuccess"]
    assert list(checkpoints(run)) == ["classify"]  # choice, wait and transform call no Lambda
    if "page_later" in path:
        assert time.monotonic() - started >= 1  # the wait of one second


def test_parallel_fail_fast_fails_the_run_when_a_branch_fails(cloud):
    run = run_workflow("language-parallel-fail-fast", {"text": "a b b", "documents": [DOCUMENTS[0], {"title": "x"}]})

    assert run.status == "FAILED"
    assert "RecordFailure" in entered(run) and "RecordSuccess" not in entered(run)
    record = runs.get_run(wiring.runs_backend(), "acme", run.run_id)
    assert record.status == "FAILED"


def test_parallel_collect_puts_a_failed_branchs_error_in_its_slot(cloud):
    run = run_workflow("language-parallel-collect", {"text": "a b b", "documents": [DOCUMENTS[0], {"title": "x"}]})

    assert run.status == "SUCCEEDED"
    output = output_of(run)
    assert output["stats"]["top"][0] == {"word": "b", "count": 2}
    assert output["docs"]["error"]["Error"] == "InvalidStepInput"
    assert "content" in output["docs"]["error"]["Cause"]
    steps = checkpoints(run)
    # Scopes compose: the map's iteration inside the parallel's branch.
    assert steps["fanout_collect.stats/stats_collect"]["status"] == "succeeded"
    assert steps["fanout_collect.docs/each_collect[0]/extract_collect"]["status"] == "succeeded"
    assert steps["fanout_collect.docs/each_collect[1]/extract_collect"]["status"] == "failed"


def test_parallel_collect_with_every_branch_succeeding_names_each_output(cloud):
    run = run_workflow("language-parallel-collect", {"text": "a b b", "documents": DOCUMENTS[:2]})

    assert run.status == "SUCCEEDED"
    output = output_of(run)
    assert set(output) == {"stats", "docs"}
    assert [document["title"] for document in output["docs"]] == ["Supplier audit", "Board memo"]


def test_a_distributed_map_runs_and_checkpoints_by_index(cloud):
    run = run_workflow("language-distributed", {"texts": ["a b b", "c"], "top": 1})

    assert run.status == "SUCCEEDED"
    assert set(checkpoints(run)) == {"tally_all[0]/tally", "tally_all[1]/tally"}
    assert [result["top"] for result in output_of(run)] == [[{"word": "b", "count": 2}], [{"word": "c", "count": 1}]]


def test_states_step_functions_evaluates_read_offloaded_values_through_the_parts_kept_in_state(cloud):
    # 40 texts, two of them over the offload threshold on their own; a 30 KB document.
    texts = [f"text {index} " + "alpha beta " * 5 for index in range(40)]
    texts[7] = "gamma " * 2000
    texts[0] = "delta " * 2000
    document = {"title": "Annual report", "content": "word " * 6000}
    run_input = {
        "schedule": {"not_before": "2020-01-01T00:00:00Z"},
        "customer": {"name": "Acme Ltd", "notes": "n" * 500},
        "document": document,
        "texts": texts,
        "top": 1,
    }

    run = run_workflow("language-large", run_input, timeout=120)

    assert run.status == "SUCCEEDED", run.history[-1]
    output = output_of(run)
    # The choice compared the kept word count; the transforms copied kept parts (the first text is
    # itself offloaded, so its reference is copied, and read back whole when the run's output is read).
    assert output["route"] == {"title": "Annual report", "customer": "Acme Ltd", "first": texts[0]}
    assert output["words"] == 6000
    counts = output["counts"]
    assert len(counts) == 40
    assert counts[7]["top"] == [{"word": "gamma", "count": 2000}]
    assert counts[3]["top"] == [{"word": "alpha", "count": 5}]
    # The input in state is a reference that keeps only what the states read.
    started = json.loads(run.history[0]["executionStartedEventDetails"]["input"])
    kept = started["input"]
    assert set(kept) == {"$artifact", "$bytes", "schedule", "customer", "texts"}
    assert kept["customer"] == {"name": "Acme Ltd", "notes": "n" * 500}  # small: kept whole
    assert "$artifact" in kept["texts"][7] and kept["texts"][3] == texts[3]
    assert len(json.dumps(kept)) < 8192 < len(json.dumps(run_input))


def test_a_distributed_map_reads_a_list_larger_than_a_state_from_s3(cloud):
    # 30 texts of 10 KB: 300 KB, more than Step Functions carries in a state (256 KiB).
    texts = [f"t{index} " + "word " * 2000 for index in range(30)]

    run = run_workflow("language-distributed", {"texts": texts, "top": 1}, timeout=120)

    assert run.status == "SUCCEEDED", run.history[-1]
    assert len(json.dumps(texts)) > 256 * 1024
    assert set(checkpoints(run)) == {f"tally_all[{index}]/tally" for index in range(30)}
    assert [result["top"] for result in output_of(run)] == [[{"word": "word", "count": 2000}]] * 30
    # The list went through S3: the map's state read only the staged object's location.
    exits = [e["stateExitedEventDetails"] for e in run.history if e["type"] == "TaskStateExited"]
    staged = next(details for details in exits if details["name"] == "tally_all:items")
    assert len(staged["output"]) < 8192
