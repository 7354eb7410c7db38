"""Agent steps on the local cloud: the compiled loop, checkpoints per turn and per tool call,
crash recovery mid-conversation, and a long loop continuing in fresh executions."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3

from sutram import wiring
from tests.integration.support import FinishedRun, checkpoints, decide, start, wait_for_approval, wait_for_end
from tests.support import execution_history, lambda_failures

COMPLAINT = {"customer": "Ada", "order_id": "A-1001", "message": "My desk has not arrived."}
FIRST_PROMPT_LINE = 'Customer Ada wrote about order A-1001: "My desk has not arrived."'
REFUND_CALL = "investigate/turn-0002/call-000"  # the refund the agent proposes, gated on an approval


def entered(history: list[dict[str, Any]]) -> list[str]:
    """The states an execution entered, in order."""
    return [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]


def support_run() -> FinishedRun:
    """A customer-support run whose refund is approved as proposed."""
    run_id, execution_arn = start("customer-support", COMPLAINT)
    decide(wait_for_approval(run_id, REFUND_CALL), "approve")
    return wait_for_end(run_id, execution_arn)


def test_the_support_agent_calls_its_tools_turn_by_turn_and_hands_its_answer_on(cloud, model_calls):
    run = support_run()

    assert run.status == "SUCCEEDED"
    steps = checkpoints(run.run_id)
    assert list(steps) == [
        "investigate/turn-0000",
        "investigate/turn-0000/call-000",
        "investigate/turn-0001",
        "investigate/turn-0001/call-000",
        "investigate/turn-0002",
        "investigate/turn-0002/call-000",
        "investigate/turn-0003",
        "reply",
    ]
    order = json.loads(json.loads(steps["investigate/turn-0000/call-000"]["output"])["content"])
    assert order == {
        "order_id": "A-1001",
        "item": "standing desk",
        "status": "delayed",
        "carrier": "DHL",
        "days_late": 4,
        "paid": 640,
    }
    assert model_calls.counts[FIRST_PROMPT_LINE] == 4  # four turns, one model call each
    assert model_calls.counts["Write a short, kind reply to Ada."] == 1


def test_procurement_researches_in_parallel_waits_for_finance_and_orders_the_edited_quantity(cloud):
    run_id, execution_arn = start("procurement", {"item": "laptop", "needed": 10})
    approval = wait_for_approval(run_id, "finance")
    assert approval.proposal == {"item": "laptop", "quantity": 7, "supplier": "Contoso", "unit_price_cents": 124500}
    assert approval.summary.startswith("Purchase order for 7 x laptop from Contoso. Buyer's note: 3 laptops in stock")

    edited = approval.proposal | {"quantity": 5}
    decide(approval, "approve", comment="5 for now", proposal=edited)
    run = wait_for_end(run_id, execution_arn)

    assert run.status == "SUCCEEDED"
    steps = checkpoints(run_id)
    # The agent's two tool calls of its first turn ran as two checkpoints.
    assert {"buyer/turn-0000/call-000", "buyer/turn-0000/call-001"} <= set(steps)
    placed = json.loads(steps["place"]["output"])
    assert placed["status"] == "sent" and placed["total_cents"] == 5 * 124500
    assert "hold" not in entered(run.history)  # no `order_on`: the order is placed once approved


def test_procurement_given_an_order_on_date_holds_the_approved_order_in_a_wait_before_placing_it(cloud):
    # A date already past, so the wait ends at once: the choice routes through it all the same.
    run_id, execution_arn = start("procurement", {"item": "laptop", "needed": 10, "order_on": "2020-01-01T00:00:00Z"})
    decide(wait_for_approval(run_id, "finance"), "approve")
    run = wait_for_end(run_id, execution_arn)

    assert run.status == "SUCCEEDED"
    states = entered(run.history)
    assert states.index("finance") < states.index("hold") < states.index("released") < states.index("place")
    assert json.loads(checkpoints(run_id)["place"]["output"])["status"] == "sent"


def test_a_crash_in_the_middle_of_a_turn_resumes_without_calling_completed_turns_again(
    cloud, model_calls, inject_faults
):
    inject_faults("investigate/turn-0001@after_model_call")

    run = support_run()

    assert run.status == "SUCCEEDED"
    assert model_calls.counts[FIRST_PROMPT_LINE] == 4
    failures = lambda_failures(run.history)
    assert failures == ["Runtime.ExitError"]
    assert all(item["attempt"] == 1 for item in checkpoints(run.run_id).values())


def test_a_long_loop_continues_in_fresh_executions_with_its_checkpoints_intact(cloud, model_calls):
    run_id, _ = start("agent-long", {"text": "a b a"})
    deadline = time.monotonic() + 120
    while (record := wiring.runs_backend().runs.get("acme", run_id)) is not None and record.status == "RUNNING":
        assert time.monotonic() < deadline, "the run did not finish"
        time.sleep(0.1)

    assert record is not None and record.status == "SUCCEEDED"
    assert json.loads(record.output or "null")["answer"] == "done after 40 tool turns"
    sfn = boto3.client("stepfunctions")
    machine = record.execution_arn.rsplit(":", 1)[0].replace(":execution:", ":stateMachine:")
    executions = [e for e in sfn.list_executions(stateMachineArn=machine)["executions"] if e["name"].startswith(run_id)]
    assert len(executions) >= 3  # 41 turns do not fit in one execution's budget of 200 events
    for execution in executions:
        events = execution_history(execution["executionArn"])
        assert len(events) <= 200 + 40  # the budget plus the non-agent states of an execution
    steps = checkpoints(run_id)
    turns = [path for path in steps if path.startswith("long/turn-") and "/call-" not in path]
    assert len(turns) == 41
    assert model_calls.counts["Count words a b a"] == 41  # every turn paid once, across executions
    assert steps["warmup"]["attempt"] == 1  # replayed from its checkpoint by each continuation
