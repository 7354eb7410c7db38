"""What a human approval costs on the local cloud: to ask, to wait and to decide, for an `approval`
step and for a gated agent tool call (next to the same agent with the tool ungated).

    python -m benchmarks.approvals [--runs 5] [--wait 2]

Each run is started as the API starts it, waits for its approval, is left waiting `--wait`
seconds, then is approved (with an edit) as `POST /approvals/{id}/decision` approves it, and runs
to its end. Printed per phase: Lambda invocations, DynamoDB write and read requests, bytes in
approval-item writes, EventBridge events, Step Functions API calls, and the run's history events;
then the median time from the decision to the end of the run. Counts are exact and the same in
every run; times are medians over the runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3

from benchmarks.cloud import Traffic, local_cloud
from benchmarks.steps import TENANT, history, wait

READS = {"GetItem", "Query", "BatchGetItem"}
WRITES = {"PutItem", "UpdateItem", "DeleteItem"}
REFUND = {"order_id": "A-1001", "amount_cents": 6400, "reason": "late"}


def definitions() -> list[dict[str, Any]]:
    def agent(gated: bool) -> dict[str, Any]:
        tool: Any = {"name": "issue_refund", "approval": {"group": "finance"}} if gated else "issue_refund"
        return {
            "id": "clerk",
            "type": "agent",
            "prompt": "Refund the late order.",
            "tools": [tool],
            "script": [{"call": "issue_refund", "arguments": REFUND}, {"answer": "refunded"}],
        }

    approval_step = {
        "id": "approve",
        "type": "approval",
        "summary": "Refund order A-1001",
        "proposal": REFUND,
        "proposal_schema": {"type": "object", "required": ["amount_cents"]},
        "group": "finance",
    }
    return [
        {"name": "bench-approval-step", "steps": [approval_step]},
        {"name": "bench-gated-call", "steps": [agent(gated=True)]},
        {"name": "bench-ungated-call", "steps": [agent(gated=False)]},
    ]


class Requests:
    """AWS requests a run makes, by service and operation, and the bytes of approval writes: the
    sandboxes' (benchmarks/sandbox.py counts them) and this process's decisions, made as the API
    makes them."""

    def __init__(self, cloud: Any) -> None:
        self.sandboxes = Traffic(cloud)
        self.calls: Counter[str] = Counter()  # this process's
        self.approval_bytes = 0
        self.polling: int | None = None  # the thread whose requests are the benchmark's own

    @contextmanager
    def unobserved(self) -> Iterator[None]:
        """This thread's polling is not what a run costs (the handlers run on other threads)."""
        self.polling = threading.get_ident()
        try:
            yield
        finally:
            self.polling = None

    def observe(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if threading.get_ident() == self.polling:
            return
        self.calls[f"{model.service_model.service_name}.{model.name}"] += 1
        body = params.get("body") or b""
        if model.name in WRITES and b"#APPROVAL#" in (body if isinstance(body, bytes) else body.encode()):
            self.approval_bytes += len(body)

    def take(self, invocations: int) -> dict[str, int]:
        calls = self.calls + self.sandboxes.requests
        taken = {
            "Lambda invocations": invocations,
            "DynamoDB writes": sum(n for op, n in calls.items() if op.split(".")[-1] in WRITES),
            "DynamoDB reads": sum(n for op, n in calls.items() if op.split(".")[-1] in READS),
            "approval bytes written": self.approval_bytes + self.sandboxes.approval_bytes,
            "EventBridge events": calls["events.PutEvents"],
            "Step Functions calls": sum(n for op, n in calls.items() if op.startswith("stepfunctions.")),
        }
        self.calls.clear()
        self.approval_bytes = 0
        self.sandboxes.reset()
        return taken


def measure(
    workflow: str, step_path: str | None, wait_seconds: float, cloud: Any, requests: Requests
) -> dict[str, Any]:
    from sutram import wiring
    from sutram.approvals import decisions
    from sutram.approvals.models import DecisionRequest
    from sutram.rest.auth import Caller
    from sutram.runs import service as runs
    from sutram.runs.models import StartRunRequest
    from sutram.store.approvals import approval_id_for

    invoked = lambda: sum(cloud.invocations.values())  # noqa: E731
    backend = wiring.runs_backend()
    requests.take(0)
    before = invoked()
    run_id = runs.start_run(backend, TENANT, workflow, StartRunRequest(input={}), uuid.uuid4().hex).run.run_id
    phases: dict[str, dict[str, int]] = {}
    decided_at = time.perf_counter()
    if step_path is not None:
        approval_id = approval_id_for(TENANT, run_id, step_path)
        with requests.unobserved():
            while (record := wiring.approval_store().get(TENANT, approval_id)) is None or record.status != "pending":
                time.sleep(0.01)
        time.sleep(0.2)  # let the request task settle into its wait
        phases["start and ask"] = requests.take(invoked() - before)
        before = invoked()
        time.sleep(wait_seconds)
        phases[f"wait {wait_seconds:g} s"] = requests.take(invoked() - before)
        before = invoked()
        decided_at = time.perf_counter()
        caller = Caller(tenant=TENANT, user="bench", groups=("finance",))
        edited = dict(record.proposal) | {"amount_cents": 3200}
        decisions.decide(
            wiring.approvals_backend(), caller, approval_id, DecisionRequest(decision="approve", proposal=edited)
        )
    with requests.unobserved():
        while (run := backend.runs.get(TENANT, run_id)) is not None and run.status == "RUNNING":
            time.sleep(0.005)
    finished_at = time.perf_counter()
    assert run is not None and run.status == "SUCCEEDED" and run.execution_arn, run
    sfn = boto3.client("stepfunctions")
    with requests.unobserved():
        # The run is recorded as finished a few events before its execution ends, and the last
        # invocation's requests are counted when it returns: take the counts once the execution ended.
        wait(sfn, run.execution_arn)
        events = history(sfn, run.execution_arn)
    phases["decide and finish" if step_path else "whole run"] = requests.take(invoked() - before)
    return {"phases": phases, "events": len(events), "resume_ms": (finished_at - decided_at) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--wait", type=float, default=2.0, help="seconds each run is left waiting")
    options = parser.parse_args()

    cloud = local_cloud(definitions(), prefix="sutram-bench-approvals-")
    requests = Requests(cloud)
    boto3._get_default_session().events.register("before-call", requests.observe)
    from sutram import wiring

    wiring.reset()  # this process's clients are created again, now with the observer attached
    cases = {
        "approval step": ("bench-approval-step", "approve"),
        "gated agent call": ("bench-gated-call", "clerk/turn-0000/call-000"),
        "same call, ungated": ("bench-ungated-call", None),
    }
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in cases}
    for _ in range(options.runs):
        for name, (workflow, step_path) in cases.items():
            results[name].append(measure(workflow, step_path, options.wait, cloud, requests))
    cloud.stop()

    for name, measured in results.items():
        first = measured[0]
        same = all(
            json.dumps([m["phases"], m["events"]]) == json.dumps([first["phases"], first["events"]]) for m in measured
        )
        print(f"\n{name}: {options.runs} runs, counts {'identical in every run' if same else 'DIFFER between runs'}")
        phases = list(first["phases"])
        print(f"{'':<24}" + "".join(f"{phase:>20}" for phase in phases))
        for metric in first["phases"][phases[0]]:
            print(f"{metric:<24}" + "".join(f"{first['phases'][phase][metric]:>20}" for phase in phases))
        print(f"{'history events (run)':<24}{first['events']:>20}")
        if "decide and finish" in phases:
            median = statistics.median(m["resume_ms"] for m in measured)
            print(f"{'decision to run end':<24}{median:>18.0f}ms")


if __name__ == "__main__":
    main()
