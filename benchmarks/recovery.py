"""What resuming a failed run costs on the local cloud.

    python -m benchmarks.recovery [--steps 100] [--fail-at 50] [--runs 3]

A chain of `--steps` model steps (the scripted model; each step reads the one before) fails at
step `--fail-at`: that step crashes before its model call and is not retried. The run is then
resumed (sutram.recovery). It prints, for the resumed execution: the model calls and tokens spent
again on the completed steps (target 0), the AWS requests each completed step made to return its
checkpoint, and the wall time from the resume to the failed step's start, against the time the
same prefix took in the first execution. Then it replays the finished run against its recorded
results and counts the replay's model calls (target 0) and AWS requests. Counts are exact; times
are medians over `--runs` runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import boto3

from benchmarks.cloud import Traffic, local_cloud

TENANT = "bench"


def chain_definition(steps: int, fail_at: int) -> dict[str, Any]:
    def step(index: int) -> dict[str, Any]:
        previous = f"$.steps.s{index - 1}" if index > 1 else "$.input.topic"
        spec: dict[str, Any] = {"id": f"s{index}", "type": "llm", "prompt": "Go on: {{x}}", "input": {"x": previous}}
        return spec | ({"retry": {"max_attempts": 0}} if index == fail_at else {})

    return {"name": f"resume-{steps}", "steps": [step(index) for index in range(1, steps + 1)]}


def wait(sfn: Any, execution_arn: str, timeout: float = 900) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = str(sfn.describe_execution(executionArn=execution_arn)["status"])
        if status != "RUNNING":
            return status
        time.sleep(0.05)
    raise TimeoutError(execution_arn)


def entered(sfn: Any, execution_arn: str, state: str) -> float:
    """Seconds from the execution's start until it entered `state`."""
    events, query = [], {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**query)
        events.extend(page["events"])
        if "nextToken" not in page:
            break
        query["nextToken"] = page["nextToken"]
    at = next(
        e["timestamp"]
        for e in events
        if e["type"] == "TaskStateEntered" and e["stateEnteredEventDetails"]["name"] == state
    )
    return float((at - events[0]["timestamp"]).total_seconds())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--fail-at", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    failing = f"s{options.fail_at}"

    cloud = local_cloud([chain_definition(options.steps, options.fail_at)], prefix="sutram-bench-resume-")
    from sutram import wiring
    from sutram.recovery import service as recovery
    from sutram.recovery.models import ReplayRequest, ResumeRequest
    from sutram.runs import service as runs
    from sutram.runs.models import StartRunRequest

    cloud.inject_faults(f"{failing}@before_call")
    traffic, sfn, backend = Traffic(cloud), boto3.client("stepfunctions"), wiring.runs_backend()
    results = []
    for run_number in range(options.runs):
        request = StartRunRequest(input={"topic": f"tides {run_number}"})
        started = runs.start_run(backend, TENANT, f"resume-{options.steps}", request, None)
        first = backend.runs.get(TENANT, started.run.run_id)
        assert first is not None and first.execution_arn is not None
        assert wait(sfn, first.execution_arn) == "FAILED"
        prefix_seconds = entered(sfn, first.execution_arn, failing)

        traffic.reset()
        model_calls, tokens = cloud.tally("model_calls"), cloud.tally("model_tokens")
        asked = time.perf_counter()
        recovery.resume_run(backend, TENANT, started.run.run_id, ResumeRequest())
        answered = time.perf_counter() - asked
        resumed = backend.runs.get(TENANT, started.run.run_id)
        assert resumed is not None and resumed.execution_arn is not None
        assert wait(sfn, resumed.execution_arn) == "SUCCEEDED"
        completed = options.fail_at - 1
        new_steps = options.steps - completed
        requests = traffic.requests
        resume_figures = {
            "writes": traffic.write_units["step"],
            "reads": requests["dynamodb.GetItem"] + requests["dynamodb.Query"],
        }

        # Then replay the whole run (its own version) against what it recorded.
        traffic.reset()
        replay_calls = cloud.tally("model_calls")
        replay = recovery.replay_run(backend, TENANT, started.run.run_id, ReplayRequest())
        replayed = backend.runs.get(TENANT, replay.run_id)
        assert replayed is not None and replayed.execution_arn is not None
        assert wait(sfn, replayed.execution_arn) == "SUCCEEDED"
        replay_requests = traffic.requests
        results.append(
            {
                # The resumed execution calls the model once per step from the failed one on.
                "calls_again": sum(model_calls.counts.values()) - new_steps,
                "tokens": sum(tokens.counts.values()),
                # A completed step's claim is one conditional put that returns the checkpoint; a new
                # step writes its lease and its result.
                "writes_per_completed": (resume_figures["writes"] - 2 * new_steps) / completed,
                "reads": resume_figures["reads"],
                "replay_calls": sum(replay_calls.counts.values()),
                "replay_requests": sum(replay_requests.values()),
                "replay_writes": traffic.write_units["step"],
                "answered": answered,
                "prefix": prefix_seconds,
                "resume": entered(sfn, resumed.execution_arn, failing),
            }
        )
    cloud.stop()
    completed = options.fail_at - 1
    prefix = statistics.median(r["prefix"] for r in results)
    resume = statistics.median(r["resume"] for r in results)
    rows = [
        (f"model calls made again for the {completed} completed steps", max(r["calls_again"] for r in results)),
        ("tokens spent by the resumed execution (its new steps only)", statistics.median(r["tokens"] for r in results)),
        ("DynamoDB write requests per completed step", results[0]["writes_per_completed"]),
        ("DynamoDB read requests, whole resumed execution", results[0]["reads"]),
        ("POST /runs/{id}/resume answered in (ms, median)", statistics.median(r["answered"] for r in results) * 1000),
        (f"first execution, start to step {options.fail_at} (s, median)", prefix),
        (f"resumed execution, start to step {options.fail_at} (s, median)", resume),
        ("ratio resumed / first", resume / prefix),
        (f"replay of the {options.steps} steps: model calls", max(r["replay_calls"] for r in results)),
        (f"replay of the {options.steps} steps: AWS requests by its steps", results[0]["replay_requests"]),
        (f"replay of the {options.steps} steps: DynamoDB write requests", results[0]["replay_writes"]),
    ]
    print(f"\nchain of {options.steps} model steps, failing at step {options.fail_at}, resumed; {options.runs} runs")
    print("-" * 80)
    for name, value in rows:
        print(f"{name:<66}{value:>14,}" if isinstance(value, int) else f"{name:<66}{value:>14,.2f}")


if __name__ == "__main__":
    main()
