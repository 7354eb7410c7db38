"""Per-step cost of Sutram's checkpointed steps on the local cloud.

    python -m benchmarks.steps [--steps 100 400] [--runs 3]

For a sequential workflow of N trivial tool steps (each reads the previous step's output), it
prints per step: DynamoDB write requests (split into step and run items), bytes sent to DynamoDB
in write requests and to S3, Lambda invocations, Step Functions state transitions (StateEntered
events in the execution history), and the median wall time of a step (TaskStateEntered to
TaskStateExited), next to the same median for a bare baseline measured in the same run: an ASL
chain of Lambda tasks, run in the same local sandboxes, that each do one GetItem and one
conditional PutItem.
Counts are exact and reproducible; times are medians over all steps of all runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import boto3

from benchmarks import tools  # noqa: F401  (registers bench_echo, which the definitions name)
from benchmarks.baseline import definition as baseline_definition
from benchmarks.cloud import Traffic, local_cloud

TENANT = "bench"

# List prices, us-east-1 (USD), used to turn the counts into a cost per 1,000 runs.
PRICE_TRANSITION = 0.025 / 1000  # Step Functions Standard, per state transition
PRICE_LAMBDA_REQUEST = 0.20 / 1_000_000  # per invocation
PRICE_LAMBDA_GB_SECOND = 0.0000166667  # x86_64, per GB-second
PRICE_DDB_WRITE_UNIT = 0.625 / 1_000_000  # on-demand, per write request unit (1 KB)
PRICE_DDB_READ_UNIT = 0.125 / 1_000_000  # on-demand, per read request unit (4 KB, strongly consistent)
PRICE_S3_PUT = 0.005 / 1000  # per PUT


def chain_definition(steps: int) -> dict[str, Any]:
    return {
        "name": f"bench-{steps}",
        "description": f"{steps} trivial steps, each reading the previous one's output",
        "steps": [
            {
                "id": f"s{i}",
                "type": "tool",
                "tool": "bench_echo",
                "input": {"value": f"$.steps.s{i - 1}" if i > 1 else "$.input.seed"},
            }
            for i in range(1, steps + 1)
        ],
    }


def wait(sfn: Any, execution_arn: str, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        description = sfn.describe_execution(executionArn=execution_arn)
        if description["status"] != "RUNNING":
            return description
        time.sleep(0.02)
    raise TimeoutError(execution_arn)


def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events, query = [], {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**query)
        events.extend(page["events"])
        if "nextToken" not in page:
            return events
        query["nextToken"] = page["nextToken"]


def step_times(events: list[dict[str, Any]]) -> list[float]:
    """Seconds from each TaskStateEntered to its TaskStateExited."""
    entered: dict[str, Any] = {}
    times = []
    for event in events:
        if event["type"] == "TaskStateEntered":
            entered[event["stateEnteredEventDetails"]["name"]] = event["timestamp"]
        elif event["type"] == "TaskStateExited":
            name = event["stateExitedEventDetails"]["name"]
            times.append((event["timestamp"] - entered[name]).total_seconds())
    return times


def transitions(events: list[dict[str, Any]]) -> int:
    return sum(1 for event in events if event["type"].endswith("StateEntered"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 400])
    parser.add_argument("--runs", type=int, default=3, help="runs per workflow (times are medians over all)")
    options = parser.parse_args()

    cloud = local_cloud([chain_definition(steps) for steps in options.steps], prefix="sutram-bench-")
    traffic = Traffic(cloud)
    from sutram import wiring
    from sutram.runs import service as runs
    from sutram.runs.models import StartRunRequest

    step_function = cloud.function_named("sutram.handlers.step.handler")
    baseline = cloud.add_function(
        "Baseline", "benchmarks.baseline.handler", step_function.environment, timeout_seconds=30
    )
    sfn = boto3.client("stepfunctions")
    results = []
    for steps in options.steps:
        baseline_arn = sfn.create_state_machine(
            name=f"baseline-{steps}",
            roleArn=cloud.role_arn,
            definition=json.dumps(baseline_definition(baseline.arn, steps)),
        )["stateMachineArn"]
        sutram_times, baseline_times, per_run = [], [], []
        for run_number in range(options.runs):
            started = runs.start_run(
                wiring.runs_backend(),
                TENANT,
                f"bench-{steps}",
                StartRunRequest(input={"seed": {"step": "seed"}}),
                None,
            )
            record = wiring.runs_backend().runs.get(TENANT, started.run.run_id)
            assert record is not None and record.execution_arn is not None
            arn = record.execution_arn
            traffic.reset()
            invocations_before = sum(cloud.invocations.values())
            description = wait(sfn, arn)
            assert description["status"] == "SUCCEEDED", description
            events = history(sfn, arn)
            sutram_times.extend(step_times(events)[:steps])  # RecordSuccess is not a step
            per_run.append(
                {
                    "step_writes": traffic.write_units["step"],
                    "run_writes": traffic.write_units["run"],
                    "step_bytes": traffic.write_bytes["step"],
                    "s3_bytes": traffic.s3_put_bytes,
                    "invocations": sum(cloud.invocations.values()) - invocations_before,
                    "transitions": transitions(events),
                    "reads": sum(
                        count for name, count in traffic.requests.items() if name.split(".")[1] in ("GetItem", "Query")
                    ),
                    "state_bytes_last_step": len(
                        next(
                            e["stateEnteredEventDetails"]["input"]
                            for e in reversed(events)
                            if e["type"] == "TaskStateEntered" and e["stateEnteredEventDetails"]["name"] == f"s{steps}"
                        )
                    ),
                }
            )
            execution = sfn.start_execution(
                stateMachineArn=baseline_arn, name=f"baseline-{steps}-{run_number}", input="{}"
            )
            assert wait(sfn, execution["executionArn"])["status"] == "SUCCEEDED"
            baseline_times.extend(step_times(history(sfn, execution["executionArn"])))
        first = per_run[0]
        counts = ("step_writes", "run_writes", "reads", "invocations", "transitions")
        assert all(all(run[c] == first[c] for c in counts) for run in per_run), f"counts differ: {per_run}"
        results.append((steps, first, statistics.median(sutram_times), statistics.median(baseline_times)))
    cloud.stop()
    report(results)


def report(results: list[tuple[int, dict[str, Any], float, float]]) -> None:
    print()
    header = f"{'per step':<44}" + "".join(f"{f'N = {steps}':>14}" for steps, *_ in results)
    print(header)
    print("-" * len(header))

    def row(label: str, values: list[str]) -> None:
        print(f"{label:<44}" + "".join(f"{value:>14}" for value in values))

    row("DynamoDB write requests, step items", [f"{m['step_writes'] / n:.2f}" for n, m, *_ in results])
    row("DynamoDB write requests, run item (total)", [f"{m['run_writes']}" for n, m, *_ in results])
    row("DynamoDB read requests", [f"{m['reads'] / n:.2f}" for n, m, *_ in results])
    row("bytes in DynamoDB write requests", [f"{m['step_bytes'] / n:.0f}" for n, m, *_ in results])
    row("bytes written to S3", [f"{m['s3_bytes'] / n:.0f}" for n, m, *_ in results])
    row("Lambda invocations", [f"{m['invocations'] / n:.2f}" for n, m, *_ in results])
    row("state transitions", [f"{m['transitions'] / n:.2f}" for n, m, *_ in results])
    row("state size entering the last step (bytes)", [f"{m['state_bytes_last_step']}" for n, m, *_ in results])
    row("median step time, Sutram (ms)", [f"{s * 1000:.1f}" for n, m, s, b in results])
    row("median step time, bare baseline (ms)", [f"{b * 1000:.1f}" for n, m, s, b in results])
    row("ratio Sutram / baseline", [f"{s / b:.2f}" for n, m, s, b in results])
    print()
    print("AWS cost per 1,000 runs at list prices (us-east-1), step overhead only, 128 ms x 512 MB per invocation:")
    for steps, m, *_ in results:
        transitions_cost = m["transitions"] * PRICE_TRANSITION
        lambda_cost = m["invocations"] * (PRICE_LAMBDA_REQUEST + 0.128 * 0.5 * PRICE_LAMBDA_GB_SECOND)
        writes_cost = (m["step_writes"] + m["run_writes"]) * PRICE_DDB_WRITE_UNIT
        reads_cost = m["reads"] * PRICE_DDB_READ_UNIT
        s3_cost = (m["s3_bytes"] > 0) * PRICE_S3_PUT
        total = transitions_cost + lambda_cost + writes_cost + reads_cost + s3_cost
        print(
            f"  N = {steps:>3}: ${total * 1000:8.3f}  (transitions ${transitions_cost * 1000:.3f}, "
            f"Lambda ${lambda_cost * 1000:.3f}, DynamoDB ${(writes_cost + reads_cost) * 1000:.3f})"
        )


if __name__ == "__main__":
    main()
