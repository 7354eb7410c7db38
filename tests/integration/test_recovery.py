"""Recovery on the local cloud: a failed run resumed from its checkpoints, and a run forked at a
step, without paying again for any model call that completed."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest

from sutram import wiring
from sutram.approvals import decisions
from sutram.recovery import service as recovery
from sutram.recovery.models import AbortRequest, ForkRequest, ReplayRequest, ResolveRequest, ResumeRequest
from sutram.runs import service as runs
from tests.integration.support import (
    TENANT,
    output_of,
    run_workflow,
    start,
    wait_for,
    wait_for_approval,
    wait_for_end,
)

PROMPTS = ["First", "Second", "Third", "Fourth"]


def calls_by_step(counts: Any) -> dict[str, int]:
    """Model calls by the step whose prompt starts with each word."""
    return {prompt: sum(n for first_line, n in counts.items() if first_line.startswith(prompt)) for prompt in PROMPTS}


def resume(run_id: str) -> Any:
    return resume_with(run_id, ResumeRequest())


def resume_with(run_id: str, request: ResumeRequest) -> Any:
    resumed = recovery.resume_run(wiring.runs_backend(), TENANT, run_id, request)
    record = wiring.runs_backend().runs.get(TENANT, run_id)
    assert record is not None and record.execution_arn is not None
    return resumed, wait_for_end(run_id, record.execution_arn, tenant=TENANT, timeout=60)


@pytest.mark.parametrize("point", ["before_call", "after_model_call"])
def test_a_run_failed_by_a_crash_resumes_from_its_checkpoints_calling_each_model_once(
    cloud, model_calls, inject_faults, point
):
    inject_faults(f"third@{point}")
    failed = run_workflow("recovery-chain", {"topic": "tides"})
    assert failed.status == "FAILED"
    before = sum(model_calls.counts.values())

    resumed, run = resume(failed.run_id)

    assert resumed.execution == 1 and run.status == "SUCCEEDED"
    assert calls_by_step(model_calls.counts) == dict.fromkeys(PROMPTS, 1)
    # Crashed before the call: the resumed execution makes it (taking over the dead execution's
    # lease at once). Crashed after it: the recorded answer is returned.
    assert sum(model_calls.counts.values()) - before == (2 if point == "before_call" else 1)
    inject_faults("")
    fault_free = run_workflow("recovery-chain", {"topic": "tides"})
    assert output_of(run) == output_of(fault_free)


def test_a_fork_reuses_the_steps_before_the_fork_point_and_runs_the_rest_again(cloud):
    parent = run_workflow("recovery-chain", {"topic": "reefs"})
    assert parent.status == "SUCCEEDED"
    model_calls = cloud.tally("model_calls")

    fork = recovery.fork_run(
        wiring.runs_backend(),
        TENANT,
        parent.run_id,
        ForkRequest(step="third", outputs={"second": "Second, corrected."}),
    )
    record = wiring.runs_backend().runs.get(TENANT, fork.run_id)
    assert record is not None and record.execution_arn is not None
    run = wait_for_end(fork.run_id, record.execution_arn, tenant=TENANT, timeout=60)

    assert run.status == "SUCCEEDED"
    assert calls_by_step(model_calls.counts) == {"First": 0, "Second": 0, "Third": 1, "Fourth": 1}
    assert output_of(run) != output_of(parent)  # `third` read the corrected `second`


def test_an_order_whose_outcome_is_unknown_is_recorded_by_an_operator_and_never_sent_again(
    cloud, model_calls, inject_faults
):
    inject_faults("order@before_record")  # the order is sent; the process dies before recording it
    failed = run_workflow("recovery-order", {"item": "desk"})
    assert failed.status == "FAILED"
    backend = wiring.runs_backend()
    order = next(step for step in runs.list_steps(backend, TENANT, failed.run_id).steps if step.id == "order")
    assert (order.delivery, order.outcome_unknown) == ("at_most_once", True)

    sent = {"po_number": "PO-FROM-SUPPLIER", "status": "sent"}
    recovery.resolve_outcome(
        backend, TENANT, failed.run_id, ResolveRequest(step="order", action="record", output=sent), by="ops"
    )
    _, run = resume(failed.run_id)

    assert run.status == "SUCCEEDED"
    assert "PO-FROM-SUPPLIER" in output_of(run)  # the confirmation read the recorded order
    steps = {step.id: step for step in runs.list_steps(backend, TENANT, failed.run_id).steps}
    assert (steps["order"].attempts, steps["order"].resolved_by) == (1, "ops")  # sent once, by the first attempt
    assert sum(model_calls.counts.values()) == 2  # quote and confirm, once each


def test_a_run_aborted_while_it_waits_for_an_approval_resumes_waiting_for_the_same_approval(cloud):
    run_id, execution_arn = start("approval-refund", {"amount": 80, "order": 7})
    asked = wait_for_approval(run_id, "approve_refund")
    backend, store = wiring.runs_backend(), wiring.approval_store()
    first_token = store.token_for(TENANT, asked.approval_id)

    aborted = recovery.abort_run(backend, TENANT, run_id, AbortRequest(reason="wrong order"), by="ops")
    assert aborted.status == "ABORTED"
    # (moto applies StopExecution at the waiting task's next transition, AWS at once; either way the
    # resumed execution is a new one.)
    recovery.resume_run(backend, TENANT, run_id, ResumeRequest())
    record = backend.runs.get(TENANT, run_id)
    assert record is not None and record.execution_arn is not None and record.execution_arn != execution_arn

    # The resumed execution waits on the same approval (its new task token replaced the dead one).
    wait_for(
        lambda: store.token_for(TENANT, asked.approval_id) != first_token or None,
        timeout=30,
        interval=0.1,
        failure="the resumed execution never asked for the approval",
    )
    decided, token = store.decide(TENANT, asked.approval_id, "approve", "ana", "", None)
    decisions.complete(decided, token, boto3.client("stepfunctions"))
    run = wait_for_end(run_id, record.execution_arn)

    assert run.status == "SUCCEEDED"
    assert output_of(run)["decision"]["outcome"] == "approve"
    approval = store.get(TENANT, asked.approval_id)
    assert approval is not None and approval.status == "approved"


def test_a_declared_error_pauses_the_run_at_zero_compute_until_an_operator_resumes_it(cloud, inject_faults):
    inject_faults("second@before_call")
    run_id, execution_arn = start("recovery-pause", {"topic": "kelp"})
    backend = wiring.runs_backend()

    def paused_run() -> Any:
        detail = runs.get_run(backend, TENANT, run_id)
        return detail if detail.status == "PAUSED" else None

    paused = wait_for(
        paused_run,
        timeout=60,
        interval=0.2,
        failure="the run never paused",
    )
    assert paused.paused_step == "second" and paused.error is not None
    assert paused.error.error == "Runtime.ExitError"
    invocations = sum(cloud.invocations.values())
    time.sleep(1)
    assert sum(cloud.invocations.values()) == invocations  # paused: nothing runs
    model_calls = cloud.tally("model_calls")

    resumed = recovery.resume_run(backend, TENANT, run_id, ResumeRequest())
    run = wait_for_end(run_id, execution_arn)  # the same execution goes on

    assert resumed.status == "RUNNING" and resumed.execution == 0
    assert run.status == "SUCCEEDED"
    assert calls_by_step(model_calls.counts) == {"First": 0, "Second": 1, "Third": 1, "Fourth": 0}
    assert runs.get_run(backend, TENANT, run_id).paused_step is None


def test_a_replay_runs_the_workflow_again_on_recorded_results_calling_no_model(cloud):
    recorded = run_workflow("recovery-chain", {"topic": "currents"})
    assert recorded.status == "SUCCEEDED"
    model_calls = cloud.tally("model_calls")

    replay = recovery.replay_run(wiring.runs_backend(), TENANT, recorded.run_id, ReplayRequest())
    record = wiring.runs_backend().runs.get(TENANT, replay.run_id)
    assert record is not None and record.execution_arn is not None
    run = wait_for_end(replay.run_id, record.execution_arn)

    assert replay.replay_of == recorded.run_id and run.status == "SUCCEEDED"
    assert sum(model_calls.counts.values()) == 0
    assert output_of(run) == output_of(recorded)


def test_a_failed_run_undoes_its_completed_side_effects_once_and_ends_compensated(cloud):
    run = run_workflow("recovery-saga", {"item": "lamp"})

    assert run.status == "FAILED"  # the execution; the run records what was undone
    backend = wiring.runs_backend()
    detail = runs.get_run(backend, TENANT, run.run_id)
    assert detail.status == "COMPENSATED"
    assert detail.compensation == {"undone": ["order"], "not_undone": []}
    steps = {step.id: step for step in runs.list_steps(backend, TENANT, run.run_id).steps}
    cancelled = steps["order/compensate"]
    assert cancelled.status == "SUCCEEDED" and cancelled.attempts == 1
    assert cancelled.output == {
        "po_number": steps["order"].output["po_number"],
        "status": "cancelled",
        "reason": "the run failed after the order",
    }


def test_a_run_resumes_with_the_arguments_an_operator_corrected_for_the_step_that_stopped_it(cloud):
    failed = run_workflow("recovery-input", {"topic": "dunes"})
    assert failed.status == "FAILED"
    model_calls = cloud.tally("model_calls")

    document = {"title": "Field notes", "content": "Dunes move a few metres a year."}
    request = ResumeRequest(inputs={"extract": {"document": document}})
    _, run = resume_with(failed.run_id, request)

    assert run.status == "SUCCEEDED"
    assert output_of(run)["title"] == "Field notes" and output_of(run)["word_count"] == 7
    assert sum(model_calls.counts.values()) == 0  # `first` returned its checkpoint
