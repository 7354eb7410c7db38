"""Per-turn cost of an agent loop on the local cloud, and how many turns one execution holds.

    python -m benchmarks.agent [--turns 200]

A scripted agent makes one tool call per turn for N turns, then answers. Printed for turns 1, 50
and 200: the bytes of the DynamoDB write requests for that turn's checkpoints (the turn and its
tool call), and the Step Functions history events the turn cost (from one turn task's entry to
the next). Then: the turns one execution holds under the default budget of history events, and
the same measured with a small budget that forces continuation into fresh executions.
"""

from __future__ import annotations

import argparse
import itertools
import time
import uuid
from typing import Any

import boto3

from benchmarks.cloud import Traffic, local_cloud
from benchmarks.steps import history
from sutram.definition import AgentLimits
from sutram.engine.agent import EVENTS_PER_CALL, EVENTS_PER_TURN

AGENT = "worker"


def agent_definition(name: str, turns: int, history_events: int) -> dict[str, Any]:
    script: list[Any] = [
        {"call": "word_frequencies", "arguments": {"text": f"turn {i} of the loop"}} for i in range(turns)
    ]
    return {
        "name": name,
        "steps": [
            {
                "id": AGENT,
                "type": "agent",
                "prompt": "Count the words, turn after turn.",
                "tools": ["word_frequencies"],
                "limits": {"max_turns": turns + 1, "max_tokens": 10_000_000, "history_events": history_events},
                "script": [*script, {"answer": f"done after {turns} turns"}],
                "timeout_seconds": 60,
            }
        ],
    }


def run(workflow: str, timeout: float = 600) -> str:
    from sutram import wiring
    from sutram.runs import service as runs
    from sutram.runs.models import StartRunRequest

    backend = wiring.runs_backend()
    run_id = runs.start_run(backend, "bench", workflow, StartRunRequest(input={}), uuid.uuid4().hex).run.run_id
    deadline = time.monotonic() + timeout
    while (record := backend.runs.get("bench", run_id)) is not None and record.status == "RUNNING":
        if time.monotonic() > deadline:
            raise TimeoutError(run_id)
        time.sleep(0.1)
    assert record is not None and record.status == "SUCCEEDED", record
    return run_id


def events_per_turn(events: list[dict[str, Any]]) -> list[int]:
    """Events from each entry of the turn task to the next one."""
    entries = [
        index
        for index, event in enumerate(events)
        if event["type"] == "TaskStateEntered" and event["stateEnteredEventDetails"]["name"] == AGENT
    ]
    return [later - earlier for earlier, later in itertools.pairwise(entries)]


def executions_of(run_id: str) -> list[dict[str, Any]]:
    sfn = boto3.client("stepfunctions")
    found = []
    for machine in sfn.list_state_machines()["stateMachines"]:
        found += [
            e
            for e in sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
            if e["name"].startswith(run_id)
        ]
    return sorted(found, key=lambda execution: execution["startDate"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--small-budget", type=int, default=400, help="history events, to force continuation")
    options = parser.parse_args()

    default_budget = AgentLimits().history_events
    definitions = [
        agent_definition(name, options.turns, budget)
        for name, budget in (("agent-long", default_budget), ("agent-continued", options.small_budget))
    ]
    cloud = local_cloud(definitions, prefix="sutram-bench-agent-")
    traffic = Traffic(cloud)
    started = time.perf_counter()
    run_id = run("agent-long")
    seconds = time.perf_counter() - started
    [execution] = executions_of(run_id)
    per_turn = events_per_turn(history(boto3.client("stepfunctions"), execution["executionArn"]))

    per_turn_ms = seconds / options.turns * 1000
    print(f"\n{options.turns} turns, one tool call each, in {seconds:.1f} s ({per_turn_ms:.0f} ms a turn)")
    print(f"{'turn':>6}{'bytes written, turn':>22}{'bytes written, call':>22}{'history events':>17}")
    for turn in (1, 50, options.turns):
        index = turn - 1
        turn_bytes = traffic.item_bytes.get(f"{AGENT}/turn-{index:04d}", 0)
        call_bytes = traffic.item_bytes.get(f"{AGENT}/turn-{index:04d}/call-000", 0)
        events = per_turn[min(index, len(per_turn) - 1)]
        print(f"{turn:>6}{turn_bytes:>22}{call_bytes:>22}{events:>17}")
    capacity = (default_budget - EVENTS_PER_TURN - EVENTS_PER_CALL) // (EVENTS_PER_TURN + EVENTS_PER_CALL) + 1
    print(f"\nturns one execution holds (budget {default_budget} events, 1 call a turn): {capacity}")

    continued = run("agent-continued")
    executions = executions_of(continued)
    sfn = boto3.client("stepfunctions")
    counts = [len(events_per_turn(history(sfn, e["executionArn"]))) + 1 for e in executions]
    sizes = [len(history(sfn, e["executionArn"])) for e in executions]
    print(
        f"with a budget of {options.small_budget} events: {len(executions)} executions, turns per execution "
        f"{counts}, history events per execution {sizes}"
    )
    cloud.stop()


if __name__ == "__main__":
    main()
